"""Opened session tokens are remembered, but every check that depends on the request still runs."""

from __future__ import annotations

import secrets

import pytest

from gateway.credentials import CredentialService, KeyRing, Revocations
from gateway.credentials.service import OPENED_TOKEN_CACHE
from gateway.errors import ExpiredRequestToken, InvalidClientTokenId

ROLE = "arn:aws:iam::123456789012:role/app"
T0 = 1_800_000_000.0


class CountingRing(KeyRing):
    """A real key ring that counts how often it opens a token."""

    opened = 0

    def unseal(self, token: str) -> bytes:
        type(self).opened += 1
        return super().unseal(token)


@pytest.fixture()
def service() -> CredentialService:
    CountingRing.opened = 0
    return CredentialService(
        CountingRing({"k1": secrets.token_bytes(32)}, "k1"), Revocations.local(), clock=lambda: T0
    )


async def test_a_token_is_opened_once_and_still_checked_every_time(service: CredentialService) -> None:
    creds = service.issue(role_arn=ROLE, session_name="s", duration_seconds=900, now=T0)
    for _ in range(3):
        claims = await service.validate(creds.access_key_id, creds.session_token, now=T0 + 1)
        assert claims.role_arn == ROLE
    assert CountingRing.opened == 1
    # A cached token presented with another access key id is still refused ...
    with pytest.raises(InvalidClientTokenId):
        await service.validate("ASIA" + "A" * 16, creds.session_token, now=T0 + 1)
    # ... it still expires ...
    with pytest.raises(ExpiredRequestToken):
        await service.validate(creds.access_key_id, creds.session_token, now=T0 + 901)
    # ... and revocation still applies.
    await service.revoke_role_sessions(ROLE, before=T0 + 2)
    with pytest.raises(InvalidClientTokenId):
        await service.validate(creds.access_key_id, creds.session_token, now=T0 + 3)


async def test_refused_tokens_are_not_remembered(service: CredentialService) -> None:
    creds = service.issue(role_arn=ROLE, session_name="s", duration_seconds=900, now=T0)
    tampered = creds.session_token[:-4] + ("AAAA" if not creds.session_token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(InvalidClientTokenId):
            await service.validate(creds.access_key_id, tampered, now=T0 + 1)
    assert CountingRing.opened == 2


async def test_the_cache_is_bounded(service: CredentialService) -> None:
    first = service.issue(role_arn=ROLE, session_name="s0", duration_seconds=900, now=T0)
    await service.validate(first.access_key_id, first.session_token, now=T0)
    for i in range(OPENED_TOKEN_CACHE):
        creds = service.issue(role_arn=ROLE, session_name=f"s{i + 1}", duration_seconds=900, now=T0)
        await service.validate(creds.access_key_id, creds.session_token, now=T0)
    opened = CountingRing.opened
    await service.validate(first.access_key_id, first.session_token, now=T0)
    assert CountingRing.opened == opened + 1  # the oldest entry was evicted and opened again
