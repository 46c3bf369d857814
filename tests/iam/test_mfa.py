"""MFA codes on both store backends: accepted once across replicas, consecutive pairs, wrong codes
throttled per device, and a store that cannot answer accepts nothing."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from gateway.db.records import MfaDeviceRecord
from gateway.errors import ServiceUnavailable
from gateway.iam import totp
from gateway.iam.mfa import MAX_FAILURES, MfaCodeRefused, MfaCodes
from gateway.store import MemoryStore, ReplayGuard, Store
from tests.store.test_store_conformance import StoreFactory

SEED = b"0123456789abcdef0123456789abcdef01234567"


def _device(
    serial: str = "arn:aws:iam::123456789012:mfa/phone", *, created: float | None = None
) -> MfaDeviceRecord:
    when = datetime.now(UTC) - timedelta(hours=2) if created is None else datetime.fromtimestamp(created, UTC)
    return MfaDeviceRecord(
        serial=serial,
        name="phone",
        path="/",
        user_id="AIDAEXAMPLE",
        enabled_at=None,
        created_at=when,
        sealed_seed="x",
    )


async def _replicas(store_factory: StoreFactory) -> tuple[MfaCodes, MfaCodes]:
    def replica(store: Store) -> MfaCodes:
        return MfaCodes(store, ReplayGuard(store), lambda _: SEED)

    return replica(await store_factory()), replica(await store_factory())


def _code(now: float, offset: int = 0) -> str:
    return totp.code_at(SEED, totp.step_of(now) + offset)


async def test_a_code_is_accepted_once_on_any_replica(store_factory: StoreFactory) -> None:
    first, second = await _replicas(store_factory)
    device, now = _device(), time.time()
    await first.accept(device, _code(now), now=now)
    for replica in (second, first):
        with pytest.raises(MfaCodeRefused) as refused:
            await replica.accept(device, _code(now), now=now)
        assert not refused.value.throttled
    # The next step's code is another code; another device's steps are its own.
    await second.accept(device, _code(now, 1), now=now)
    await second.accept(_device("arn:aws:iam::123456789012:mfa/other"), _code(now), now=now)


async def test_consecutive_codes(store_factory: StoreFactory) -> None:
    codes, _ = await _replicas(store_factory)
    now = time.time()
    device = _device()
    with pytest.raises(MfaCodeRefused):
        await codes.accept_consecutive(device, _code(now), _code(now, -1), now=now)  # wrong order
    with pytest.raises(MfaCodeRefused):
        await codes.accept_consecutive(device, _code(now, -2), _code(now), now=now)  # not consecutive
    await codes.accept_consecutive(device, _code(now, -1), _code(now), now=now)
    with pytest.raises(MfaCodeRefused):  # both steps are spent now
        await codes.accept(device, _code(now), now=now)


async def test_wrong_codes_lock_the_device_on_every_replica(store_factory: StoreFactory) -> None:
    first, second = await _replicas(store_factory)
    device, now = _device(), time.time()
    wrong = f"{(int(_code(now)) + 1) % 1_000_000:06d}"
    for n in range(MAX_FAILURES):
        with pytest.raises(MfaCodeRefused) as refused:
            await (first if n % 2 else second).accept(device, wrong, now=now)
        assert not refused.value.throttled
    # Locked: even the right code is refused, on either replica, and not spent by the refusal.
    for replica in (first, second):
        with pytest.raises(MfaCodeRefused) as refused:
            await replica.accept(device, _code(now), now=now)
        assert refused.value.throttled and "Too many invalid codes" in refused.value.message
    # Other devices are not affected.
    await first.accept(_device("arn:aws:iam::123456789012:mfa/other"), _code(now), now=now)


async def test_parallel_codes_get_no_more_checks_than_in_sequence(store_factory: StoreFactory) -> None:
    """A burst of guesses across two replicas, all in flight at once, must not each find the device
    unlocked: only MAX_FAILURES of them are checked, the rest are refused as throttled, and then
    the right code too."""
    first, second = await _replicas(store_factory)
    device, now = _device(), time.time()
    right = _code(now)
    near = {_code(now, offset) for offset in (-1, 0, 1)}
    guesses = [g for n in range(1, 44) if (g := f"{(int(right) + n) % 1_000_000:06d}") not in near][:40]
    results = await asyncio.gather(
        *((first if n % 2 else second).accept(device, g, now=now) for n, g in enumerate(guesses)),
        return_exceptions=True,
    )
    assert all(isinstance(r, MfaCodeRefused) for r in results)
    checked = [r for r in results if isinstance(r, MfaCodeRefused) and not r.throttled]
    assert len(checked) == MAX_FAILURES
    with pytest.raises(MfaCodeRefused) as refused:
        await first.accept(device, right, now=now)
    assert refused.value.throttled


async def test_an_accepted_code_clears_the_count_of_attempts(store_factory: StoreFactory) -> None:
    codes, _ = await _replicas(store_factory)
    device, now = _device(), time.time()
    wrong = f"{(int(_code(now)) + 1) % 1_000_000:06d}"
    for offset in (-1, 0, 1):  # three right codes, each after MAX_FAILURES - 1 wrong ones
        for _ in range(MAX_FAILURES - 1):
            with pytest.raises(MfaCodeRefused):
                await codes.accept(device, wrong, now=now)
        await codes.accept(device, _code(now, offset), now=now)


async def test_codes_of_steps_before_the_device_existed_are_refused_after_a_store_reset() -> None:
    # A store that began just now (a reset): a code whose step may have been spent before it
    # is refused, unless the device itself is younger than the store.
    now = time.time()
    store = MemoryStore(clock=time.monotonic, started=now)
    codes = MfaCodes(store, ReplayGuard(store), lambda _: SEED)
    with pytest.raises(MfaCodeRefused):
        await codes.accept(_device(), _code(now), now=now)
    await codes.accept(_device("arn:aws:iam::123456789012:mfa/new", created=now + 1), _code(now, 1), now=now)


async def test_a_store_that_cannot_answer_accepts_nothing() -> None:
    store = MemoryStore()
    codes = MfaCodes(store, ReplayGuard(store), lambda _: SEED)
    await store.close()
    now = time.time()
    with pytest.raises(ServiceUnavailable):
        await codes.accept(_device(), _code(now), now=now)


async def test_an_unreadable_seed_is_refused() -> None:
    store = MemoryStore()

    def unreadable(_: MfaDeviceRecord) -> bytes:
        raise ValueError("no key opens it")

    codes = MfaCodes(store, ReplayGuard(store), unreadable)
    now = time.time()
    with pytest.raises(MfaCodeRefused, match="cannot be read"):
        await codes.accept(_device(), _code(now), now=now)
