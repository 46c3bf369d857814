"""The store's circuit breaker, on a clock the tests move: states, probes and its log lines."""

from __future__ import annotations

import logging

import pytest

from gateway.errors import ServiceUnavailable
from gateway.store import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.before("get")
        breaker.failed("get", TimeoutError())


def test_opens_after_consecutive_failures_only(clock: Clock) -> None:
    breaker = CircuitBreaker(failures=3, cooldown=1.0, monotonic=clock)
    fail(breaker, 2)
    breaker.before("get")
    breaker.succeeded()  # a success in between: the count starts again
    fail(breaker, 2)
    assert breaker.state == "closed"
    fail(breaker)
    assert breaker.state == "open"
    with pytest.raises(ServiceUnavailable, match=r"\(set: circuit open\)") as caught:
        breaker.before("set")
    assert caught.value.status == 503


def test_half_open_lets_one_probe_through(clock: Clock) -> None:
    breaker = CircuitBreaker(failures=1, cooldown=1.0, monotonic=clock)
    fail(breaker)
    clock.now += 0.999
    with pytest.raises(ServiceUnavailable):
        breaker.before("get")
    clock.now += 0.001
    assert breaker.state == "half-open"
    breaker.before("get")  # the probe
    with pytest.raises(ServiceUnavailable):
        breaker.before("get")  # everyone else waits for its outcome
    breaker.succeeded()
    assert breaker.state == "closed"
    breaker.before("get")


def test_failed_probe_opens_for_another_cooldown(clock: Clock) -> None:
    breaker = CircuitBreaker(failures=2, cooldown=1.0, monotonic=clock)
    fail(breaker, 2)
    clock.now += 1.0
    fail(breaker)  # the probe fails: open again at once, not after another two failures
    assert breaker.state == "open"
    clock.now += 0.5
    with pytest.raises(ServiceUnavailable):
        breaker.before("get")
    clock.now += 0.5
    assert breaker.state == "half-open"


def test_abandoned_probe_frees_the_slot(clock: Clock) -> None:
    breaker = CircuitBreaker(failures=1, cooldown=1.0, monotonic=clock)
    fail(breaker)
    clock.now += 1.0
    breaker.before("get")
    breaker.abandoned()  # the request was cancelled mid-probe
    breaker.before("get")  # the next one may probe
    breaker.succeeded()
    assert breaker.state == "closed"


def test_an_outage_logs_one_line_per_interval_and_one_at_its_end(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = CircuitBreaker(failures=3, cooldown=1.0, log_interval=60.0, monotonic=clock)
    with caplog.at_level(logging.INFO, logger="gateway.store.breaker"):
        fail(breaker, 3)
        for _ in range(500):
            with pytest.raises(ServiceUnavailable):
                breaker.before("get")
        lines = list(caplog.records)
        assert len(lines) == 1
        first = lines[0]
        assert first.levelno == logging.WARNING and first.exc_info is None
        assert first.getMessage().startswith("the store is unavailable")
        assert (first.store_operation, first.store_cause) == ("get", "TimeoutError")  # type: ignore[attr-defined]
        clock.now += 60.0
        fail(breaker)  # a probe, a minute on, that fails too: the next line
        assert len(caplog.records) == 2
        # Since the first line: two more failures, 500 refusals and the failed probe.
        assert caplog.records[1].store_refused == 503  # type: ignore[attr-defined]
        clock.now += 1.0
        breaker.before("get")
        breaker.succeeded()
    end = caplog.records[-1]
    assert end.levelno == logging.INFO and end.getMessage() == "the store is available again"
    assert end.store_outage_seconds == 61.0  # type: ignore[attr-defined]
    assert len(caplog.records) == 3


@pytest.mark.parametrize(
    "kwargs", [{"failures": 0}, {"cooldown": 0}, {"cooldown": -1.0}, {"log_interval": 0}]
)
def test_settings_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="failures"):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]
