"""Revoking a role's sessions, through both store backends (Redis for real), across replicas."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

import pytest

from gateway.credentials import CredentialService, IssuedCredentials, KeyRing
from gateway.errors import InvalidClientTokenId, ServiceUnavailable
from gateway.store import MemoryStore, Store

StoreFactory = Callable[[], Awaitable[Store]]  # the store_factory fixture (see conftest.py)

ROLE = "arn:aws:iam::123456789012:role/app"
OTHER_ROLE = "arn:aws:iam::123456789012:role/other"
T0 = 1_700_000_000.0


class Clock:
    """A hand-moved monotonic clock, so cache expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """A real store that counts revocation reads (to show the cache spares the store)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.reads = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def get_number(self, key: str) -> float | None:
        self.reads += 1
        return await self.inner.get_number(key)


def issue(service: CredentialService, role: str = ROLE, at: float = T0) -> IssuedCredentials:
    return service.issue(role_arn=role, session_name="s", duration_seconds=3600, now=at)


async def valid(service: CredentialService, creds: IssuedCredentials, now: float = T0 + 100) -> bool:
    try:
        await service.validate(creds.access_key_id, creds.session_token, now=now)
    except InvalidClientTokenId:
        return False
    return True


async def test_revocation_applies_to_sessions_issued_before(store_factory: StoreFactory) -> None:
    service = CredentialService(KeyRing({"k": secrets.token_bytes(32)}, "k"), await store_factory())
    before = issue(service, at=T0)
    just_before = issue(service, at=T0 + 9.999)
    other_role = issue(service, role=OTHER_ROLE, at=T0)
    assert await valid(service, before)

    await service.revoke_role_sessions(ROLE, before=T0 + 10)
    after = issue(service, at=T0 + 10)
    just_after = issue(service, at=T0 + 10.001)

    assert not await valid(service, before)
    assert not await valid(service, just_before)
    assert await valid(service, after)
    assert await valid(service, just_after)
    assert await valid(service, other_role)


async def test_revoked_error_is_invalid_client_token(store_factory: StoreFactory) -> None:
    service = CredentialService(KeyRing({"k": secrets.token_bytes(32)}, "k"), await store_factory())
    creds = issue(service)
    await service.revoke_role_sessions(ROLE, before=T0 + 1)
    with pytest.raises(InvalidClientTokenId) as caught:
        await service.validate(creds.access_key_id, creds.session_token, now=T0 + 2)
    assert caught.value.message == "The security token included in the request is invalid."


async def test_revocation_cutoff_only_moves_forward(store_factory: StoreFactory) -> None:
    service = CredentialService(KeyRing({"k": secrets.token_bytes(32)}, "k"), await store_factory())
    creds = issue(service, at=T0 + 5)
    await service.revoke_role_sessions(ROLE, before=T0 + 10)
    await service.revoke_role_sessions(ROLE, before=T0)  # an older cutoff changes nothing
    assert not await valid(service, creds)


async def test_second_instance_sees_revocation_after_cache_ttl(store_factory: StoreFactory) -> None:
    keyring = KeyRing({"k": secrets.token_bytes(32)}, "k")
    clock_a, clock_b = Clock(), Clock()
    # Two replicas: the same key ring, each with its own store connection and cache.
    replica_a = CredentialService(keyring, await store_factory(), revocation_cache_ttl=5, monotonic=clock_a)
    replica_b = CredentialService(keyring, await store_factory(), revocation_cache_ttl=5, monotonic=clock_b)
    creds = issue(replica_a)
    assert await valid(replica_b, creds)  # B caches "no revocation" for 5 s

    await replica_a.revoke_role_sessions(ROLE, before=T0 + 1)
    assert not await valid(replica_a, creds)  # at once where it was revoked

    clock_b.now += 4.9
    assert await valid(replica_b, creds)  # B's cache has not expired yet
    clock_b.now += 0.2
    assert not await valid(replica_b, creds)  # after the TTL B reads the store and refuses

    fresh = CredentialService(keyring, await store_factory(), monotonic=Clock())
    assert not await valid(fresh, creds)  # a new replica sees it on first use


async def test_steady_state_validation_does_no_store_io() -> None:
    clock = Clock()
    store = CountingStore(MemoryStore())
    service = CredentialService(
        KeyRing({"k": secrets.token_bytes(32)}, "k"),
        store,  # type: ignore[arg-type]
        revocation_cache_ttl=5,
        monotonic=clock,
    )
    creds = issue(service)
    for _ in range(100):
        assert await valid(service, creds)
    assert store.reads == 1
    clock.now += 5
    assert await valid(service, creds)
    assert store.reads == 2


async def test_store_failure_fails_closed() -> None:
    store = MemoryStore()
    service = CredentialService(KeyRing({"k": secrets.token_bytes(32)}, "k"), store)
    creds = issue(service)
    await store.close()
    with pytest.raises(ServiceUnavailable):
        await service.validate(creds.access_key_id, creds.session_token, now=T0 + 1)


async def test_revoke_refuses_non_role_arn() -> None:
    service = CredentialService(KeyRing({"k": secrets.token_bytes(32)}, "k"), MemoryStore())
    with pytest.raises(ValueError, match="role ARN"):
        await service.revoke_role_sessions("arn:aws:iam::123456789012:user/bob", before=T0)
