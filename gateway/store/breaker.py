"""A circuit breaker for the store, so a dead or hung server costs milliseconds, not seconds.

The Redis store bounds every operation with a short deadline; the breaker counts consecutive
failures. After ``failures`` of them it *opens*: operations fail at once with
:class:`~gateway.errors.ServiceUnavailable` without touching the server. After ``cooldown`` seconds
it *half-opens*: one operation at a time goes through as a probe (the others still fail at once);
a probe that succeeds closes the breaker, one that fails opens it for another cool-down.

::

    closed --(failures in a row)--> open --(cooldown)--> half-open --(probe ok)--> closed
                                     ^                        |
                                     +-----(probe fails)------+

An outage is logged as one warning line, at most once per ``log_interval`` (with how many
operations were refused since the last line), and its end as one info line: never a traceback per
request, and never more than the failure's type name (a Redis error's text can carry addresses).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal, final

from gateway.errors import ServiceUnavailable

__all__ = ["CircuitBreaker"]

log = logging.getLogger(__name__)

State = Literal["closed", "open", "half-open"]


@final
class CircuitBreaker:
    """Counts consecutive store failures and refuses operations while the store is known down.

    ``monotonic`` is injectable so tests can move time. Not thread-safe: one per event loop (one per
    store), like the store itself.
    """

    def __init__(
        self,
        *,
        failures: int = 3,
        cooldown: float = 1.0,
        log_interval: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or cooldown <= 0 or log_interval <= 0:
            raise ValueError("failures must be at least 1, cooldown and log_interval positive")
        self._threshold = failures
        self._cooldown = cooldown
        self._log_interval = log_interval
        self._monotonic = monotonic
        self._failures = 0
        self._opened_at = 0.0
        self._open = False
        self._probing = False
        self._outage_since: float | None = None
        self._logged_at: float | None = None
        self._refused = 0

    @property
    def state(self) -> State:
        """``closed``, ``open`` or ``half-open`` (the cool-down is over: the next call probes)."""
        if not self._open:
            return "closed"
        return "half-open" if self._monotonic() - self._opened_at >= self._cooldown else "open"

    def before(self, operation: str) -> None:
        """Call before an operation; raises :class:`ServiceUnavailable` when it must not be tried.

        When this returns, the caller must report the outcome with :meth:`succeeded` or
        :meth:`failed`.
        """
        if not self._open:
            return
        if self._probing or self._monotonic() - self._opened_at < self._cooldown:
            self._refuse(operation, "circuit open")
            raise ServiceUnavailable(f"The store is unavailable ({operation}: circuit open).")
        self._probing = True

    def succeeded(self) -> None:
        """The operation reached the store and got an answer."""
        self._failures = 0
        self._probing = False
        if self._open or self._outage_since is not None:
            down = self._monotonic() - (self._outage_since or self._monotonic())
            log.info(
                "the store is available again",
                extra={"store_outage_seconds": round(down, 3), "store_refused": self._refused},
            )
        self._open = False
        self._outage_since = None
        self._logged_at = None
        self._refused = 0

    def failed(self, operation: str, cause: BaseException) -> None:
        """The operation failed for want of the store (timeout, connection refused or lost)."""
        self._probing = False
        self._failures += 1
        if self._failures >= self._threshold or self._open:
            self._open = True
            self._opened_at = self._monotonic()
        self._refuse(operation, type(cause).__name__)

    def abandoned(self) -> None:
        """The operation was cancelled before it had an outcome: release the probe, count nothing."""
        self._probing = False

    def _refuse(self, operation: str, cause: str) -> None:
        now = self._monotonic()
        if self._outage_since is None:
            self._outage_since = now
        self._refused += 1
        if self._logged_at is not None and now - self._logged_at < self._log_interval:
            return
        log.warning(
            "the store is unavailable: requests that need it are refused (503)",
            extra={
                "store_operation": operation,
                "store_cause": cause,
                "store_refused": self._refused,
                "store_breaker": self.state,
            },
        )
        self._logged_at = now
        self._refused = 0
