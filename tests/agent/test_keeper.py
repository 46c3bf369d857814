"""The renewal schedule: renew before expiry with jitter, back off on failure, never serve past the
expiry margin, recover, and survive a broken source. Time is driven by the test."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from gateway.agent.errors import CredentialsUnavailable
from gateway.agent.keeper import RefreshPolicy, RoleKeeper
from tests.agent.conftest import ROLE_ARN, FakeTime, ScriptedSource, credentials, refused

POLICY = RefreshPolicy(renew_before=900, jitter=120, expiry_margin=60, retry_initial=1, retry_max=60)


def keeper(
    time: FakeTime, source: ScriptedSource, policy: RefreshPolicy = POLICY, seed: int = 7
) -> RoleKeeper:
    return RoleKeeper(
        name="app",
        role_arn=ROLE_ARN,
        source=source,
        policy=policy,
        clock=time.clock,
        sleep=time.sleep,
        rng=random.Random(seed),
    )


def test_renewal_is_before_expiry_with_jitter() -> None:
    delays = [POLICY.renew_in(3600, random.Random(seed)) for seed in range(200)]
    assert all(3600 - 900 - 120 <= d <= 3600 - 900 for d in delays)
    assert max(delays) - min(delays) > 60  # spread out, not one moment for every agent


def test_short_lived_credentials_renew_half_way_not_at_once() -> None:
    assert POLICY.renew_in(600, random.Random(1)) == 300


def test_retries_back_off_exponentially_up_to_the_cap() -> None:
    rng = random.Random(3)
    for failures in range(1, 12):
        ceiling = min(60, 2 ** (failures - 1))
        assert ceiling / 2 <= POLICY.retry_in(failures, rng) <= ceiling
    assert POLICY.retry_in(10_000, rng) <= 60


async def test_renews_on_schedule_and_serves_the_newest() -> None:
    time = FakeTime(limit=3)
    source = ScriptedSource(time, 3600.0)
    k = keeper(time, source)
    with pytest.raises(asyncio.CancelledError):
        await k.run()
    assert source.fetches == 4  # one before each of the three sleeps, and one after
    for delay in time.sleeps:
        assert 3600 - 1020 - 1 <= delay <= 3600 - 900  # less up to 1 s: Expiration is in whole seconds
    current = k.current()
    assert current is not None and current == source.issued[-1]
    status = k.status()
    assert status.valid and status.renewals == 4 and status.failures == 0


async def test_outage_serves_cache_until_margin_then_refuses_then_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.agent")
    time = FakeTime(limit=1000)
    start = time.now
    outage = refused()
    source = ScriptedSource(time, 900.0, *([outage] * 60), 900.0)
    k = keeper(
        time,
        source,
        RefreshPolicy(renew_before=300, jitter=0, expiry_margin=60, retry_initial=1, retry_max=8),
    )
    first = credentials(0)  # replaced below by what the source issued
    seen: list[tuple[float, bool]] = []

    def observe(now: float) -> None:
        seen.append((now - start, k.current() is not None))

    time.on_sleep = observe
    task = asyncio.get_running_loop().create_task(k.run())
    while source.fetches < 62:  # noqa: ASYNC110 - the fake clock has no event to wait on
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    first = source.issued[0]
    # Renewal starts at 600 s; served until 840 s (900 - 60), never after, until the recovery.
    served_after_margin = [t for t, valid in seen if valid and t >= 840 and t < seen[-1][0]]
    assert not served_after_margin
    assert any(valid for t, valid in seen if 600 < t < 840)
    retries = [d for d in time.sleeps if d < 100]  # the rest are renewal delays (600 s)
    assert len(retries) >= 60 and max(retries) <= 8 and max(retries) > 4  # backed off up to the cap

    assert k.current() is not None and k.current() != first  # recovered
    messages = [r.getMessage() for r in caplog.records]
    assert any("serving the cached credentials until" in m for m in messages)
    assert sum("no valid credentials left" in m for m in messages) == 1  # said once, not per retry
    assert any("(after 60 failed attempt(s))" in m for m in messages)
    assert not any(r.exc_info for r in caplog.records)


async def test_nothing_valid_names_the_last_error() -> None:
    time = FakeTime()
    source = ScriptedSource(
        time, 900.0, refused("the gateway refused AssumeRoleWithWebIdentity (AccessDenied): no")
    )
    k = keeper(time, source, RefreshPolicy(renew_before=300, jitter=0, expiry_margin=60))
    await k.refresh()
    assert (await k.get(1)).access_key_id == source.issued[0].access_key_id
    time.now += 700
    await k.refresh()
    assert k.current() is not None  # 200 s left: still served
    time.now += 150
    with pytest.raises(CredentialsUnavailable) as info:
        await k.get(1)
    message = str(info.value)
    assert message.startswith(f"fedgate agent: no valid credentials for role app ({ROLE_ARN}): ")
    assert "the cached credentials expire at" in message and "(AccessDenied)" in message
    status = k.status()
    assert not status.valid and status.unavailable == 1 and status.served == 1
    assert "NO VALID CREDENTIALS" in status.line()


async def test_first_request_waits_for_the_first_fetch() -> None:
    time = FakeTime()
    gate = asyncio.Event()

    async def slow() -> object:
        await gate.wait()
        return credentials(time.now + 900)

    k = keeper(time, ScriptedSource(time, slow), RefreshPolicy(renew_before=300, jitter=0))  # type: ignore[arg-type]
    task = asyncio.get_running_loop().create_task(k.refresh())
    waiting = asyncio.get_running_loop().create_task(k.get(5))
    await asyncio.sleep(0)
    assert not waiting.done()
    gate.set()
    assert (await waiting).expires_at() == int(time.now + 900)
    await task


async def test_first_fetch_failing_answers_at_once_with_its_error() -> None:
    time = FakeTime()
    k = keeper(time, ScriptedSource(time, refused("token file /t does not exist")))
    await k.refresh()
    with pytest.raises(CredentialsUnavailable, match="token file /t does not exist"):
        await k.get(30)


async def test_credentials_too_short_to_serve_are_a_failure() -> None:
    time = FakeTime()
    k = keeper(time, ScriptedSource(time, 30.0))  # less than the 60 s margin
    delay = await k.refresh()
    assert delay <= 1 and k.current() is None
    assert "too soon to serve" in (k.status().last_error or "")


async def test_a_broken_source_does_not_stop_renewals(caplog: pytest.LogCaptureFixture) -> None:
    time = FakeTime(limit=2)
    source = ScriptedSource(time, RuntimeError("bug"), 3600.0)
    k = keeper(time, source)
    with pytest.raises(asyncio.CancelledError):
        await k.run()
    assert source.fetches == 3 and k.current() is not None
    bug = [r for r in caplog.records if r.exc_info]
    assert len(bug) == 1 and "unexpected error" in bug[0].getMessage()


def test_credentials_repr_hides_secrets() -> None:
    creds = credentials(2_000_000_000)
    assert "s" * 40 not in repr(creds) and "t" * 200 not in repr(creds)
    assert creds.account_id() == "123456789012"
