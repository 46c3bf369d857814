"""One served role's credentials: fetched, cached, renewed before expiry, never served expired.

:class:`RoleKeeper` runs one loop per role: fetch from the role's
:class:`~gateway.agent.sources.CredentialSource`, then sleep until ``renew_before`` (plus a random
jitter) before expiry and fetch again. A failed fetch is retried with exponential backoff (full
range jitter, capped at ``retry_max``) while the cached credentials keep being served, until less
than ``expiry_margin`` is left; from then on every request gets
:class:`~gateway.agent.errors.CredentialsUnavailable`, naming the last error, until a fetch succeeds.

No aiohttp here: the HTTP adapters in :mod:`gateway.agent.server` call :meth:`RoleKeeper.get`.
The clock, the sleep and the random source are injectable so the schedule can be tested exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, final

from gateway.agent.config import RefreshSettings
from gateway.agent.credentials import Credentials
from gateway.agent.errors import CredentialsUnavailable, SourceError
from gateway.agent.sources import CredentialSource
from gateway.sts.xml import iso8601

__all__ = ["RefreshPolicy", "RoleKeeper", "RoleStatus"]

log = logging.getLogger("gateway.agent")


@final
@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    """When to renew and retry (seconds); see :class:`~gateway.agent.config.RefreshSettings`."""

    renew_before: float = 900
    jitter: float = 120
    expiry_margin: float = 60
    retry_initial: float = 1
    retry_max: float = 60

    @classmethod
    def from_settings(cls, settings: RefreshSettings) -> RefreshPolicy:
        """The policy the configuration describes."""
        return cls(
            renew_before=settings.renew_before,
            jitter=settings.jitter,
            expiry_margin=settings.expiry_margin,
            retry_initial=settings.retry_initial,
            retry_max=settings.retry_max,
        )

    def renew_in(self, lifetime: float, rng: random.Random) -> float:
        """Seconds until renewing credentials that have ``lifetime`` seconds left now."""
        lead = self.renew_before + rng.uniform(0, self.jitter)
        if lead >= lifetime:
            # Shorter-lived than configured for (the gateway capped them): renew half-way rather
            # than at once, which would call the gateway in a tight loop.
            lead = lifetime / 2
        return lifetime - lead

    def retry_in(self, failures: int, rng: random.Random) -> float:
        """Seconds until the next attempt after ``failures`` consecutive failures (>= 1)."""
        ceiling = min(self.retry_max, self.retry_initial * 2 ** min(failures - 1, 30))
        return rng.uniform(ceiling / 2, ceiling)


@final
@dataclass(frozen=True, slots=True)
class RoleStatus:
    """A secret-free snapshot of one role, for ``/healthz``, ``/status`` and (later) metrics."""

    name: str
    role_arn: str
    source: str
    valid: bool
    expiration: str | None
    last_renewal: str | None
    next_attempt_in: float | None
    renewals: int
    failures: int
    last_error: str | None
    served: int
    unavailable: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "role_arn": self.role_arn,
            "source": self.source,
            "valid": self.valid,
            "expiration": self.expiration,
            "last_renewal": self.last_renewal,
            "next_attempt_in": None if self.next_attempt_in is None else round(self.next_attempt_in, 1),
            "renewals": self.renewals,
            "failures": self.failures,
            "last_error": self.last_error,
            "served": self.served,
            "unavailable": self.unavailable,
        }

    def line(self) -> str:
        """One human line: ``app (ARN): valid until ...; next renewal in 712 s; 3 renewal(s), ...``."""
        if self.valid:
            state = f"valid until {self.expiration}"
        elif self.expiration is not None:
            state = f"NO VALID CREDENTIALS (the last expired {self.expiration})"
        else:
            state = "NO CREDENTIALS YET"
        parts = [f"{self.name} ({self.role_arn}): {state}"]
        if self.next_attempt_in is not None:
            parts.append(f"next {'retry' if self.failures else 'renewal'} in {self.next_attempt_in:.0f} s")
        parts.append(f"{self.renewals} renewal(s), {self.failures} failure(s) in a row")
        if self.last_error and self.failures:
            parts.append(f"last error: {self.last_error}")
        return "; ".join(parts)


@final
class RoleKeeper:
    """Fetches, caches and renews one role's credentials; :meth:`run` is its loop."""

    def __init__(
        self,
        *,
        name: str,
        role_arn: str,
        source: CredentialSource,
        policy: RefreshPolicy,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.role_arn = role_arn
        self._source = source
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - scheduling jitter, not a secret
        self._creds: Credentials | None = None
        self._obtained_at: float | None = None
        self._next_attempt_at: float | None = None
        self._attempted = asyncio.Event()
        self._renewals = 0
        self._failures = 0
        self._last_error: str | None = None
        self._served = 0
        self._unavailable_answers = 0
        self._expiry_logged = False

    # --- serving ---------------------------------------------------------------------------------

    def current(self) -> Credentials | None:
        """The cached credentials if more than ``expiry_margin`` is left on them, else ``None``."""
        creds = self._creds
        if creds is None or creds.expires_at() - self._clock() <= self._policy.expiry_margin:
            return None
        return creds

    def last_updated(self) -> datetime:
        """When the cached credentials were obtained (IMDS's ``LastUpdated``)."""
        return datetime.fromtimestamp(self._obtained_at or self._clock(), UTC)

    async def get(self, wait: float) -> Credentials:
        """Credentials to serve now, waiting up to ``wait`` seconds for the very first fetch.

        Raises :class:`CredentialsUnavailable` (its message says why) when there are none.
        """
        creds = self.current()
        if creds is None and not self._attempted.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._attempted.wait(), wait)
            creds = self.current()
        if creds is None:
            self._unavailable_answers += 1
            raise CredentialsUnavailable(self._unavailable())
        self._served += 1
        return creds

    def _unavailable(self) -> str:
        if self._last_error is not None:
            why = self._last_error
        elif self._creds is None:
            why = "the first request to the gateway has not finished yet"
        else:
            why = "renewal has not succeeded yet"
        if self._creds is not None:
            why = f"the cached credentials expire at {iso8601(self._creds.expiration)}; renewing: {why}"
        return f"fedgate agent: no valid credentials for role {self.name} ({self.role_arn}): {why}"

    def status(self) -> RoleStatus:
        """A snapshot for health checks and the status line."""
        now = self._clock()
        creds = self._creds
        return RoleStatus(
            name=self.name,
            role_arn=self.role_arn,
            source=self._source.describe(),
            valid=self.current() is not None,
            expiration=iso8601(creds.expiration) if creds else None,
            last_renewal=iso8601(self.last_updated()) if self._obtained_at else None,
            next_attempt_in=None if self._next_attempt_at is None else max(0.0, self._next_attempt_at - now),
            renewals=self._renewals,
            failures=self._failures,
            last_error=self._last_error,
            served=self._served,
            unavailable=self._unavailable_answers,
        )

    # --- renewing --------------------------------------------------------------------------------

    async def refresh(self) -> float:
        """Fetch once; return the seconds to wait before the next attempt."""
        started = self._clock()
        try:
            creds = await self._source.fetch()
            lifetime = creds.expires_at() - self._clock()
            if lifetime <= self._policy.expiry_margin:
                raise SourceError(
                    f"the gateway returned credentials that expire at {iso8601(creds.expiration)}, "
                    "too soon to serve (are the clocks of the agent and the gateway in step?)"
                )
        except SourceError as exc:
            return self._failed(str(exc))
        except Exception:  # a bug in a source: keep the loop (and the cached credentials) alive
            log.exception(f"role {self.name}: unexpected error while getting credentials")
            return self._failed("unexpected error in the agent (see its log)")
        self._creds, self._obtained_at = creds, started
        self._renewals += 1
        recovered = f" (after {self._failures} failed attempt(s))" if self._failures else ""
        self._failures = 0
        self._expiry_logged = False
        self._attempted.set()
        delay = self._policy.renew_in(lifetime, self._rng)
        log.info(
            f"role {self.name}: credentials valid until {iso8601(creds.expiration)}{recovered}; "
            f"next renewal in {delay:.0f} s",
            extra={"role": self.name, "expiration": iso8601(creds.expiration), "renew_in": round(delay)},
        )
        return delay

    def _failed(self, error: str) -> float:
        self._failures += 1
        self._last_error = error
        self._attempted.set()
        delay = self._policy.retry_in(self._failures, self._rng)
        self._note_failure(delay)
        return delay

    def _note_failure(self, delay: float) -> None:
        held = self.current()
        if held is not None:
            until = datetime.fromtimestamp(held.expires_at() - self._policy.expiry_margin, UTC)
            serving = (
                f"serving the cached credentials until {iso8601(until)} (they expire at "
                f"{iso8601(held.expiration)})"
            )
        else:
            serving = "no valid credentials to serve"
        log.warning(
            f"role {self.name}: getting credentials failed: {self._last_error}; {serving}; "
            f"retrying in {delay:.1f} s",
            extra={"role": self.name, "failures": self._failures, "retry_in": round(delay, 1)},
        )

    async def run(self) -> None:
        """Keep the role's credentials fresh until cancelled."""
        while True:
            delay = await self.refresh()
            self._next_attempt_at = self._clock() + delay
            while (remaining := self._next_attempt_at - self._clock()) > 0:
                # Wake when the cached credentials stop being servable, to say so once.
                await self._sleep(min(remaining, self._until_unservable()))
                self._check_expiry()
            self._next_attempt_at = None

    def _until_unservable(self) -> float:
        creds = self.current()
        if creds is None:
            return float("inf")
        return max(0.0, creds.expires_at() - self._policy.expiry_margin - self._clock()) + 0.01

    def _check_expiry(self) -> None:
        if self._creds is not None and self.current() is None and not self._expiry_logged:
            self._expiry_logged = True
            log.error(
                f"role {self.name}: no valid credentials left (the cached ones expire at "
                f"{iso8601(self._creds.expiration)}, within the expiry margin) and renewing failed "
                f"({self._last_error or 'no attempt yet'}); SDKs get an error until the gateway answers",
                extra={"role": self.name},
            )
