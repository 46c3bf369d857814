"""Checking the codes of virtual MFA devices: once each, across every replica, with wrong ones throttled.

:class:`MfaCodes` is the one place a TOTP code (:mod:`gateway.iam.totp`) is accepted, for the IAM
API (``EnableMFADevice``, ``ResyncMFADevice``) and for STS (``AssumeRole``, ``GetSessionToken``
with ``SerialNumber`` and ``TokenCode``). A code is accepted when it is the device's code of the
current time step or of the one before or after it (clocks drift), and only once: the step is spent
in the store's :class:`~gateway.store.replay.ReplayGuard` under ``mfa:code:SERIAL:STEP``, which
replicas sharing the store see at once. Spending the step rather than the code means a code can
never be accepted twice, even by two replicas answering at the same moment.

Attempts are counted per device in the store, *before* the code is checked and in one atomic
increment, so requests sent in parallel (to one replica or several) cannot each find the device
unlocked: at most :data:`MAX_FAILURES` codes are checked within :data:`FAILURE_WINDOW` seconds
unless one of them is right (an accepted code clears the count). The attempt after those locks the
device for :data:`LOCKOUT` seconds, during which even a right code is refused, so six digits cannot
be guessed at request rate. Every check fails closed:
a store that cannot answer raises :class:`~gateway.errors.ServiceUnavailable`, and nothing is
accepted.

A spent mark that a store reset lost would let a code be accepted again; the replay guard refuses
any step that may have been spent before the store's current generation began. A step's code can
be spent from one step before it (the window) but never before the device existed, so the issue
time the guard sees is the later of the two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import final

from gateway.db.records import MfaDeviceRecord
from gateway.iam import totp
from gateway.store.base import Store
from gateway.store.replay import ReplayGuard

__all__ = [
    "FAILURE_WINDOW",
    "LOCKOUT",
    "MAX_FAILURES",
    "MfaCodeRefused",
    "MfaCodes",
    "SeedOpener",
]

#: Wrong codes a device tolerates within :data:`FAILURE_WINDOW` seconds.
MAX_FAILURES = 5
#: Seconds over which wrong codes are counted.
FAILURE_WINDOW = 300.0
#: Seconds a device refuses every code after too many wrong ones.
LOCKOUT = 300.0
# A spent step must stay marked while its code is still acceptable: its own step and the one after.
_SPENT_TTL = 4 * totp.STEP_SECONDS

#: Opens a device's sealed seed (:meth:`gateway.db.IamDatabase.open_mfa_seed`).
SeedOpener = Callable[[MfaDeviceRecord], bytes]


@final
class MfaCodeRefused(Exception):
    """A code was not accepted. ``throttled``: the device is locked after too many wrong codes
    (``message`` says so); otherwise the code is wrong, not current, or spent already."""

    def __init__(self, message: str, *, throttled: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.throttled = throttled


_THROTTLED_MESSAGE = "Too many invalid codes for this MFA device; try again in a few minutes."


@final
class MfaCodes:
    """Accepts MFA codes once each (see the module docstring). One per application."""

    def __init__(self, store: Store, replay: ReplayGuard, open_seed: SeedOpener) -> None:
        self._store = store
        self._replay = replay
        self._open_seed = open_seed

    def __repr__(self) -> str:
        return f"MfaCodes(store={self._store!r})"

    async def accept(self, device: MfaDeviceRecord, code: str, *, now: float) -> None:
        """Accept ``code`` of ``device`` at ``now`` (epoch seconds), spending its step.

        Raises :class:`MfaCodeRefused` when it is not accepted, and
        :class:`~gateway.errors.ServiceUnavailable` when the store cannot answer.
        """
        attempts = await self._admit(device)
        step = totp.matching_step(self._seed(device), code, now)
        if step is None or not await self._spend(device, step):
            raise MfaCodeRefused("The MFA code is not valid, or was used already.")
        await self._store.delete(attempts)

    async def accept_consecutive(
        self, device: MfaDeviceRecord, first: str, second: str, *, now: float
    ) -> None:
        """Accept two codes of consecutive steps, the second current (or one step off): how
        ``EnableMFADevice`` and ``ResyncMFADevice`` prove the device and the server agree."""
        attempts = await self._admit(device)
        seed = self._seed(device)
        later = totp.matching_step(seed, second, now)
        earlier = (
            None
            if later is None
            else totp.matching_step(seed, first, (later - 1) * totp.STEP_SECONDS, behind=0, ahead=0)
        )
        if (
            later is None
            or earlier is None
            or not (await self._spend(device, earlier) and await self._spend(device, later))
        ):
            raise MfaCodeRefused(
                "The two codes are not consecutive codes of this device, or were used already."
            )
        await self._store.delete(attempts)

    def _seed(self, device: MfaDeviceRecord) -> bytes:
        try:
            return self._open_seed(device)
        except ValueError:
            # The seed was sealed under a key the ring no longer holds: no code can be checked.
            raise MfaCodeRefused("The MFA device's seed cannot be read; enable the device again.") from None

    async def _admit(self, device: MfaDeviceRecord) -> str:
        """Count this attempt, refusing it when the device is locked or out of attempts; returns
        the counter's key (cleared when the code is accepted). Never deleted on locking: a request
        racing the lock must find the count still over the limit."""
        locked = f"mfa:locked:{device.serial}"
        if await self._store.get(locked) is not None:
            raise MfaCodeRefused(_THROTTLED_MESSAGE, throttled=True)
        attempts = f"mfa:attempts:{device.serial}"
        if await self._store.incr(attempts, FAILURE_WINDOW) > MAX_FAILURES:
            await self._store.set(locked, b"1", LOCKOUT)
            raise MfaCodeRefused(_THROTTLED_MESSAGE, throttled=True)
        return attempts

    async def _spend(self, device: MfaDeviceRecord, step: int) -> bool:
        earliest = max((step - 1) * totp.STEP_SECONDS, device.created_at.timestamp())
        return await self._replay.spend(f"mfa:code:{device.serial}:{step}", _SPENT_TTL, earliest)
