"""Revoking a role's sessions: monotonic cutoffs held in memory, fail-closed when not current, and
durable in the IAM database (SQLite and PostgreSQL) across replicas and restarts."""

from __future__ import annotations

import secrets

import pytest

from gateway.config import DatabaseSettings
from gateway.credentials import CredentialService, IssuedCredentials, KeyRing, Revocations
from gateway.credentials.revocation import ROLE as ROLE_KIND
from gateway.db import start_database
from gateway.errors import DatabaseUnavailable, InvalidClientTokenId, ServiceUnavailable
from tests.conftest import eventually

ROLE = "arn:aws:iam::123456789012:role/app"
OTHER_ROLE = "arn:aws:iam::123456789012:role/other"
T0 = 1_700_000_000.0


class Clock:
    """A hand-moved monotonic clock, so staleness is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Ledger:
    """A durable record in memory (the database's part), counting writes and able to fail."""

    def __init__(self) -> None:
        self.cutoffs: dict[tuple[str, str], float] = {}
        self.writes = 0
        self.down = False

    async def raise_cutoff(self, kind: str, scope: str, before: float) -> float:
        if self.down:
            raise DatabaseUnavailable("down")
        self.writes += 1
        self.cutoffs[(kind, scope)] = max(before, self.cutoffs.get((kind, scope), before))
        return self.cutoffs[(kind, scope)]


def issue(service: CredentialService, role: str = ROLE, at: float = T0) -> IssuedCredentials:
    return service.issue(role_arn=role, session_name="s", duration_seconds=3600, now=at)


async def valid(service: CredentialService, creds: IssuedCredentials, now: float = T0 + 100) -> bool:
    try:
        await service.validate(creds.access_key_id, creds.session_token, now=now)
    except InvalidClientTokenId:
        return False
    return True


@pytest.fixture()
def ring() -> KeyRing:
    return KeyRing({"k": secrets.token_bytes(32)}, "k")


async def test_revocation_applies_to_sessions_issued_before(ring: KeyRing) -> None:
    service = CredentialService(ring, Revocations.local())
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


async def test_a_chained_session_falls_with_any_session_it_descends_from(ring: KeyRing) -> None:
    service = CredentialService(ring, Revocations.local())
    # A session of OTHER_ROLE assumed (chained) from a session of ROLE issued at T0.
    chained = service.issue(
        role_arn=OTHER_ROLE, session_name="s", duration_seconds=3600, now=T0 + 5, chain=[(ROLE, T0)]
    )
    opened = await service.validate(chained.access_key_id, chained.session_token, now=T0 + 100)
    assert opened.chained and opened.chain == ((ROLE, T0),)
    await service.revoke_role_sessions(ROLE, before=T0 - 1)  # before the ancestor: no effect
    assert await valid(service, chained)
    await service.revoke_role_sessions(ROLE, before=T0 + 1)  # the ancestor, not the chained one
    assert not await valid(service, chained)
    assert await valid(service, issue(service, role=OTHER_ROLE, at=T0 + 2))


async def test_revoked_error_is_invalid_client_token(ring: KeyRing) -> None:
    service = CredentialService(ring, Revocations.local())
    creds = issue(service)
    await service.revoke_role_sessions(ROLE, before=T0 + 1)
    with pytest.raises(InvalidClientTokenId) as caught:
        await service.validate(creds.access_key_id, creds.session_token, now=T0 + 2)
    assert caught.value.message == "The security token included in the request is invalid."


async def test_a_known_cutoff_is_never_lowered(ring: KeyRing) -> None:
    revocations = Revocations(Ledger(), max_staleness=10, monotonic=Clock())
    revocations.confirm(1000.0)
    service = CredentialService(ring, revocations)
    creds = issue(service, at=T0 + 5)
    await service.revoke_role_sessions(ROLE, before=T0 + 10)
    await service.revoke_role_sessions(ROLE, before=T0)  # an older cutoff changes nothing
    revocations.merge([(ROLE_KIND, ROLE, T0)])  # nor does a lower one read from anywhere
    assert not await valid(service, creds)
    assert revocations.cutoff(ROLE_KIND, ROLE) == T0 + 10


async def test_revoking_writes_durably_first_and_a_failed_write_changes_nothing(ring: KeyRing) -> None:
    ledger = Ledger()
    revocations = Revocations(ledger, max_staleness=10, monotonic=Clock())
    revocations.confirm(1000.0)
    service = CredentialService(ring, revocations)
    creds = issue(service)
    ledger.down = True
    with pytest.raises(DatabaseUnavailable):
        await service.revoke_role_sessions(ROLE, before=T0 + 1)
    assert await valid(service, creds)  # not applied here either: the caller knows it failed
    ledger.down = False
    await service.revoke_role_sessions(ROLE, before=T0 + 1)
    assert ledger.cutoffs == {(ROLE_KIND, ROLE): T0 + 1} and not await valid(service, creds)


async def test_state_never_loaded_refuses_every_signed_request(ring: KeyRing) -> None:
    service = CredentialService(ring, Revocations(Ledger(), max_staleness=10, monotonic=Clock()))
    creds = issue(service)
    with pytest.raises(ServiceUnavailable) as caught:
        await service.validate(creds.access_key_id, creds.session_token, now=T0 + 1)
    assert caught.value.status == 503 and caught.value.code == "ServiceUnavailable"


async def test_state_unconfirmed_past_the_bound_fails_closed_and_recovers(
    ring: KeyRing, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    revocations = Revocations(Ledger(), max_staleness=10, monotonic=clock)
    service = CredentialService(ring, revocations)
    creds = issue(service)
    revocations.confirm(clock.now)
    clock.now += 10
    assert await valid(service, creds)  # at the bound: still current
    clock.now += 0.5
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            await service.validate(creds.access_key_id, creds.session_token, now=T0 + 1)
    refusals = [r for r in caplog.records if "refusing signed requests" in r.getMessage()]
    assert len(refusals) == 1  # one line, not one per request
    revocations.confirm(clock.now)
    assert await valid(service, creds)


async def test_revoke_refuses_non_role_arn(ring: KeyRing) -> None:
    service = CredentialService(ring, Revocations.local())
    with pytest.raises(ValueError, match="role ARN"):
        await service.revoke_role_sessions("arn:aws:iam::123456789012:user/bob", before=T0)


async def test_replicas_on_one_database_see_each_others_revocations(
    ring: KeyRing, fresh_database_url: str
) -> None:
    settings = DatabaseSettings(url=fresh_database_url, poll_interval_seconds=0.05)
    first = await start_database(settings, account_id="123456789012", keyring=ring)
    second = await start_database(settings, account_id="123456789012", keyring=ring)
    try:
        replica_a = CredentialService(ring, first.revocations)
        replica_b = CredentialService(ring, second.revocations)
        creds = issue(replica_a, at=T0)
        assert await valid(replica_b, creds)
        await replica_a.revoke_role_sessions(ROLE, before=T0 + 1)
        assert not await valid(replica_a, creds)  # at once where it was revoked
        await eventually(lambda: _refused(replica_b, creds), what="the other replica refuses the session")
    finally:
        await first.close()
        await second.close()
    restarted = await start_database(settings, account_id="123456789012", keyring=ring)
    try:
        assert not await valid(CredentialService(ring, restarted.revocations), creds)  # durable
    finally:
        await restarted.close()


async def _refused(service: CredentialService, creds: IssuedCredentials) -> bool:
    return not await valid(service, creds)


USER = "arn:aws:iam::123456789012:user/alice"
KEY = "AKIAEXAMPLEEXAMPLE12"


def issue_for_user(service: CredentialService, principal: str = "user", at: float = T0) -> IssuedCredentials:
    return service.issue_user_session(
        principal=principal,  # type: ignore[arg-type]
        user_arn=USER,
        user_id="AIDAEXAMPLEEXAMPLE1",
        source_key_id=KEY,
        name="alice" if principal == "user" else "fed",
        duration_seconds=3600,
        now=at,
    )


def chained_from(service: CredentialService, parent: IssuedCredentials, at: float) -> IssuedCredentials:
    """A role session assumed with ``parent``'s credentials, as AssumeRole records its ancestry."""
    claims = parent.claims
    return service.issue(
        role_arn=ROLE,
        session_name="chained",
        duration_seconds=3600,
        now=at,
        chain=[(claims.user_arn or claims.role_arn, claims.issued_at)],
        source_key_id=claims.source_key_id,
    )


@pytest.mark.parametrize(("kind", "scope"), [("user", USER), ("access-key", KEY)])
async def test_a_users_or_keys_cutoff_revokes_both_user_kinds_and_their_chains(
    ring: KeyRing, kind: str, scope: str
) -> None:
    revocations = Revocations.local()
    service = CredentialService(ring, revocations)
    own, federated = issue_for_user(service), issue_for_user(service, "federated-user")
    chained = chained_from(service, own, T0 + 5)
    role_session = issue(service, at=T0)  # the role's own sessions are not the user's
    later = issue_for_user(service, at=T0 + 10)
    await revocations.revoke(kind, scope, T0 + 10)
    assert [await valid(service, c) for c in (own, federated, chained)] == [False] * 3
    assert await valid(service, role_session) and await valid(service, later)


def test_revocation_scopes_name_every_scope_with_the_issue_time_it_covers(ring: KeyRing) -> None:
    from gateway.credentials import revocation_scopes

    service = CredentialService(ring, Revocations.local())
    own = issue_for_user(service)
    chained = chained_from(service, own, T0 + 5)
    assert revocation_scopes(own.claims) == [("user", USER, T0), ("access-key", KEY, T0)]
    # The key covers the user's session the chain starts at, not the chained session's issue.
    assert revocation_scopes(chained.claims) == [
        ("role", ROLE, T0 + 5),
        ("user", USER, T0),
        ("access-key", KEY, T0),
    ]
    assert revocation_scopes(issue(service).claims) == [("role", ROLE, T0)]
