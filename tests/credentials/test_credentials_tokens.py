"""Issuing, sealing and validating session credentials: formats, tampering, rotation, expiry."""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import time
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.config import KeyRingSettings
from gateway.credentials import (
    CredentialService,
    IssuedCredentials,
    KeyRing,
    Revocations,
    SessionClaims,
    role_id_for,
)
from gateway.credentials.keyring import MAX_TOKEN_CHARS
from gateway.errors import (
    ConfigError,
    ExpiredRequestToken,
    InvalidClientTokenId,
    PackedPolicyTooLarge,
)

ROLE = "arn:aws:iam::123456789012:role/deploy/ci-deployer"
ISSUER = "token.actions.githubusercontent.com"
NOW = 1_700_000_000.25
INVALID = "The security token included in the request is invalid."


def issue(service: CredentialService, **overrides: object) -> IssuedCredentials:
    args: dict[str, object] = {
        "role_arn": ROLE,
        "session_name": "gha-run-42",
        "duration_seconds": 3600,
        "provider_arn": f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}",
        "subject": "repo:org/repo:ref:refs/heads/main",
        "audience": "sts.amazonaws.com",
        "session_policy": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}],
        },
        "policy_arns": ["arn:aws:iam::123456789012:policy/ReadOnly"],
        "tags": {"team": "platform", "env": "prod"},
        "transitive_tag_keys": ["team"],
        "source_identity": "alice",
        "mfa_authenticated": True,
        "identity_claims": {
            f"{ISSUER}:sub": "repo:org/repo:ref:refs/heads/main",
            f"{ISSUER}:amr": ["pwd", "mfa"],
        },
        "now": NOW,
    }
    args.update(overrides)
    return service.issue(**args)  # type: ignore[arg-type]


def raw_bytes(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def assert_invalid(service: CredentialService, access_key_id: str, token: str) -> None:
    with pytest.raises(InvalidClientTokenId) as caught:
        await service.validate(access_key_id, token, now=NOW + 10)
    assert caught.value.code == "InvalidClientTokenId"
    assert caught.value.status == 403
    assert caught.value.message == INVALID


# -- issuing and round trip --------------------------------------------------------------------


async def test_round_trip_returns_every_claim(service: CredentialService) -> None:
    issued = issue(service)
    claims = await service.validate(issued.access_key_id, issued.session_token, now=NOW + 10)
    assert claims == issued.claims
    assert claims.account_id == "123456789012"
    assert claims.role_name == "ci-deployer"
    assert claims.role_id == role_id_for(ROLE)
    assert claims.session_name == "gha-run-42"
    assert claims.access_key_id == issued.access_key_id
    assert claims.secret_access_key == issued.secret_access_key
    assert claims.issued_at == 1_700_000_000.25
    assert claims.expires_at == 1_700_003_600
    assert claims.session_policy is not None
    assert json.loads(claims.session_policy)["Statement"][0]["Action"] == "s3:GetObject"
    assert " " not in claims.session_policy  # minified
    assert claims.policy_arns == ("arn:aws:iam::123456789012:policy/ReadOnly",)
    assert dict(claims.tags) == {"team": "platform", "env": "prod"}
    assert claims.transitive_tag_keys == ("team",)
    assert claims.provider_arn.endswith(ISSUER)
    assert claims.subject == "repo:org/repo:ref:refs/heads/main"
    assert claims.audience == "sts.amazonaws.com"
    assert claims.source_identity == "alice"
    assert claims.mfa_authenticated is True
    assert dict(claims.identity_claims) == {
        f"{ISSUER}:sub": "repo:org/repo:ref:refs/heads/main",
        f"{ISSUER}:amr": ("pwd", "mfa"),
    }
    assert claims.version == 3
    assert claims.principal == "role"
    assert claims.mfa_at is None  # the provider did not say when: aws:MultiFactorAuthAge counts from issue
    assert claims.assumed_role_arn == "arn:aws:sts::123456789012:assumed-role/ci-deployer/gha-run-42"
    assert claims.assumed_role_id == f"{claims.role_id}:gha-run-42"


async def test_the_time_of_mfa_round_trips(service: CredentialService) -> None:
    issued = issue(service, mfa_at=NOW - 120.5)
    claims = await service.validate(issued.access_key_id, issued.session_token, now=NOW + 10)
    assert claims.mfa_at == NOW - 120.5
    # Without MFA there is no time of it.
    assert issue(service, mfa_authenticated=False, mfa_at=NOW).claims.mfa_at is None


async def test_version_1_tokens_are_still_read(keyring: KeyRing) -> None:
    service = CredentialService(keyring, Revocations.local())
    fields = {
        "r": ROLE,
        "s": "old",
        "k": "ASIAAAAAAAAAAAAAAAAA",
        "x": "secret",
        "ia": NOW,
        "ea": NOW + 900,
        "m": True,
    }
    old = keyring.seal(b"\x00" + json.dumps({"v": 1, **fields}).encode())
    claims = await service.validate("ASIAAAAAAAAAAAAAAAAA", old, now=NOW + 10)
    assert (claims.version, claims.mfa_authenticated, claims.mfa_at) == (1, True, None)
    # A version 1 token cannot carry what came later, nor can an unknown version be read.
    for body in ({"v": 1, **fields, "mf": NOW}, {"v": 4, **fields}, {"v": True, **fields}):
        await assert_invalid(
            service, "ASIAAAAAAAAAAAAAAAAA", keyring.seal(b"\x00" + json.dumps(body).encode())
        )


async def test_version_2_role_tokens_are_still_read_and_cannot_name_a_user(keyring: KeyRing) -> None:
    service = CredentialService(keyring, Revocations.local())
    fields = {"r": ROLE, "s": "old", "k": "ASIAAAAAAAAAAAAAAAAA", "x": "secret", "ia": NOW, "ea": NOW + 900}
    old = keyring.seal(b"\x00" + json.dumps({"v": 2, **fields, "mf": NOW}).encode())
    claims = await service.validate("ASIAAAAAAAAAAAAAAAAA", old, now=NOW + 10)
    assert (claims.version, claims.principal, claims.role_arn) == (2, "role", ROLE)
    # What version 3 added (the principal kinds, the user, the key that asked) a v2 token cannot carry.
    user = {"pk": "user", "u": USER_ARN, "ui": "AIDAEXAMPLEEXAMPLE1", "sk": "AKIAEXAMPLEEXAMPLE12"}
    for extra in (user, {"sk": "AKIAEXAMPLEEXAMPLE12"}):
        body = {"v": 2, **fields, **extra}
        await assert_invalid(
            service, "ASIAAAAAAAAAAAAAAAAA", keyring.seal(b"\x00" + json.dumps(body).encode())
        )


USER_ARN = "arn:aws:iam::123456789012:user/ops/alice"


def issue_user(service: CredentialService, principal: str = "user", **overrides: Any) -> IssuedCredentials:
    values: dict[str, Any] = {
        "principal": principal,
        "user_arn": USER_ARN,
        "user_id": "AIDAEXAMPLEEXAMPLE1",
        "source_key_id": "AKIAEXAMPLEEXAMPLE12",
        "name": "alice" if principal == "user" else "bob-fed",
        "duration_seconds": 43200,
        "now": NOW,
    }
    values.update(overrides)
    return service.issue_user_session(**values)


async def test_a_users_own_session_round_trips_as_the_user(service: CredentialService) -> None:
    issued = issue_user(service, mfa_at=NOW - 1)
    claims = await service.validate(issued.access_key_id, issued.session_token, now=NOW + 10)
    assert claims == issued.claims
    assert (claims.version, claims.principal, claims.role_arn, claims.role_id) == (3, "user", "", "")
    assert (claims.principal_arn, claims.principal_id) == (USER_ARN, "AIDAEXAMPLEEXAMPLE1")
    assert (claims.account_id, claims.session_name, claims.source_key_id) == (
        "123456789012",
        "alice",
        "AKIAEXAMPLEEXAMPLE12",
    )
    assert (claims.mfa_authenticated, claims.mfa_at) == (True, NOW - 1)
    assert claims.expires_at == 1_700_043_200  # whole seconds, as role sessions


async def test_a_federated_user_round_trips_with_its_name_and_session_policy(
    service: CredentialService,
) -> None:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    issued = issue_user(service, "federated-user", session_policy=policy, tags={"team": "a"})
    claims = await service.validate(issued.access_key_id, issued.session_token, now=NOW + 10)
    assert claims == issued.claims
    assert claims.principal_arn == "arn:aws:sts::123456789012:federated-user/bob-fed"
    assert claims.principal_id == "123456789012:bob-fed"
    assert claims.session_policy is not None and dict(claims.tags) == {"team": "a"}
    assert not claims.mfa_authenticated


def test_a_user_session_needs_its_user_and_key(service: CredentialService) -> None:
    for bad in ({"user_arn": ROLE}, {"user_id": ""}, {"source_key_id": ""}, {"principal": "role"}):
        with pytest.raises(ValueError):
            issue_user(service, **bad)


@pytest.mark.parametrize(
    "body",
    [
        # A user kind has no role, and names its user, the user's id and the key that asked.
        {"pk": "user", "r": ROLE, "u": USER_ARN, "ui": "AIDA1", "sk": "AKIA1"},
        {"pk": "user", "u": USER_ARN, "sk": "AKIA1"},
        {"pk": "user", "u": USER_ARN, "ui": "AIDA1"},
        {"pk": "user", "u": ROLE, "ui": "AIDA1", "sk": "AKIA1"},
        {"pk": "admin", "u": USER_ARN, "ui": "AIDA1", "sk": "AKIA1"},
        # A role session spells its kind by leaving it out, and has no user id.
        {"pk": "role", "r": ROLE},
        {"r": ROLE, "ui": "AIDA1"},
        {"u": USER_ARN, "ui": "AIDA1", "sk": "AKIA1"},
    ],
)
async def test_malformed_principal_kinds_are_refused(keyring: KeyRing, body: dict[str, Any]) -> None:
    service = CredentialService(keyring, Revocations.local())
    fields = {"v": 3, "s": "x", "k": "ASIAAAAAAAAAAAAAAAAA", "x": "secret", "ia": NOW, "ea": NOW + 900}
    token = keyring.seal(b"\x00" + json.dumps({**fields, **body}).encode())
    await assert_invalid(service, "ASIAAAAAAAAAAAAAAAAA", token)


async def test_minimal_session_round_trip(service: CredentialService) -> None:
    issued = service.issue(
        role_arn="arn:aws:iam::123456789012:role/r", session_name="s", duration_seconds=900
    )
    claims = await service.validate(issued.access_key_id, issued.session_token, now=time.time())
    assert claims == issued.claims
    assert claims.session_policy is None
    assert claims.tags == {}
    assert claims.source_identity is None


def test_expiration_is_utc_datetime(service: CredentialService) -> None:
    issued = issue(service, duration_seconds=900)
    assert issued.expiration == datetime(2023, 11, 14, 22, 28, 20, tzinfo=UTC)
    assert issued.expiration.timestamp() == issued.claims.expires_at


def test_access_key_and_secret_formats(service: CredentialService) -> None:
    issued = [issue(service) for _ in range(20)]
    for creds in issued:
        assert re.fullmatch(r"ASIA[A-Z2-7]{16}", creds.access_key_id)
        assert re.fullmatch(r"[A-Za-z0-9+/]{40}", creds.secret_access_key)
        assert re.fullmatch(r"[A-Za-z0-9_-]+", creds.session_token)
    assert len({c.access_key_id for c in issued}) == 20
    assert len({c.secret_access_key for c in issued}) == 20
    assert len({c.session_token for c in issued}) == 20


def test_typical_token_is_compact(service: CredentialService) -> None:
    assert len(issue(service).session_token) < 1500


def test_role_id_is_deterministic_per_arn() -> None:
    first = role_id_for(ROLE)
    assert re.fullmatch(r"AROA[A-Z2-7]{17}", first)
    assert role_id_for(ROLE) == first
    assert role_id_for("arn:aws:iam::123456789012:role/other") != first


def test_repr_hides_secrets(service: CredentialService) -> None:
    issued = issue(service)
    for shown in (repr(issued), str(issued), repr(issued.claims), str(issued.claims)):
        assert issued.secret_access_key not in shown
        assert issued.session_token not in shown
    assert issued.access_key_id in repr(issued)
    assert "ci-deployer" in repr(issued.claims)


def test_claims_are_immutable(service: CredentialService) -> None:
    claims = issue(service).claims
    with pytest.raises(AttributeError):
        claims.role_arn = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        claims.tags["team"] = "other"  # type: ignore[index]


def test_issue_refuses_bad_arguments(service: CredentialService) -> None:
    with pytest.raises(ValueError, match="role ARN"):
        issue(service, role_arn="arn:aws:iam::123456789012:user/bob")
    with pytest.raises(ValueError, match="match the role ARN"):
        issue(service, account_id="999999999999")
    with pytest.raises(ValueError, match="match the role ARN"):
        issue(service, role_name="other")
    with pytest.raises(ValueError, match="duration"):
        issue(service, duration_seconds=0)
    assert (
        issue(service, account_id="123456789012", role_name="ci-deployer").claims.role_name == "ci-deployer"
    )


def test_issue_refuses_what_cannot_fit_in_a_token(service: CredentialService) -> None:
    huge = {f"tag{i}": secrets.token_urlsafe(190) for i in range(50)}
    with pytest.raises(PackedPolicyTooLarge):
        issue(service, tags=huge)


# -- tampering ---------------------------------------------------------------------------------


async def test_every_flipped_byte_is_refused(service: CredentialService) -> None:
    issued = issue(service)
    raw = raw_bytes(issued.session_token)
    for i in range(len(raw)):
        tampered = bytearray(raw)
        tampered[i] ^= 0x01
        await assert_invalid(service, issued.access_key_id, text(bytes(tampered)))


async def test_every_changed_character_is_refused(service: CredentialService) -> None:
    issued = issue(service)
    token = issued.session_token
    for i in range(0, len(token), 7):
        replacement = "A" if token[i] != "A" else "B"
        await assert_invalid(service, issued.access_key_id, token[:i] + replacement + token[i + 1 :])


async def test_truncated_and_extended_tokens_are_refused(service: CredentialService) -> None:
    issued = issue(service)
    token = issued.session_token
    for cut in (0, 1, 2, 10, 40, len(token) // 2, len(token) - 2, len(token) - 1):
        await assert_invalid(service, issued.access_key_id, token[:cut])
    await assert_invalid(service, issued.access_key_id, token + "AAAA")
    await assert_invalid(service, issued.access_key_id, text(raw_bytes(token) + b"\x00"))


async def test_non_canonical_and_non_base64_tokens_are_refused(service: CredentialService) -> None:
    issued = issue(service)
    token = issued.session_token
    padded = base64.urlsafe_b64encode(raw_bytes(token)).decode()
    candidates = [
        "!!!!",
        "not a token",
        token + "=" * (-len(token) % 4 or 4),
        padded if padded != token else token + "==",
        token.replace("-", "+").replace("_", "/") if ("-" in token or "_" in token) else token + "+",
        " " + token,
        token + "\n",
        token[:10] + "." + token[11:],
        token[:10] + "\u00e9" + token[11:],
    ]
    for candidate in candidates:
        await assert_invalid(service, issued.access_key_id, candidate)


def test_non_canonical_trailing_bits_are_refused(keyring: KeyRing) -> None:
    # 34 sealed bytes (2 + 2-byte key id + 12 nonce + 2 + 16 tag) leave 4 unused bits in the text.
    token = keyring.seal(b"xy")
    assert len(token) % 4 == 2
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    aliases = [
        token[:-1] + c for c in alphabet if c != token[-1] and raw_bytes(token[:-1] + c) == raw_bytes(token)
    ]
    assert len(aliases) == 15
    for alias in aliases:
        with pytest.raises(InvalidClientTokenId):
            keyring.unseal(alias)
    assert keyring.unseal(token) == b"xy"


async def test_oversized_token_refused(service: CredentialService) -> None:
    issued = issue(service)
    await assert_invalid(service, issued.access_key_id, "A" * (MAX_TOKEN_CHARS + 1))
    await assert_invalid(service, issued.access_key_id, issued.session_token + "A" * MAX_TOKEN_CHARS)


async def test_swapped_key_id_refused() -> None:
    # Same secret under two ids: HKDF binds each derived key to its id, and the header is
    # authenticated, so relabelling a token never opens it.
    secret = secrets.token_bytes(32)
    ring = KeyRing({"k1": secret, "k2": secret}, "k1")
    service = CredentialService(ring, Revocations.local())
    issued = issue(service)
    raw = raw_bytes(issued.session_token)
    assert raw[2:4] == b"k1"
    await assert_invalid(service, issued.access_key_id, text(raw[:2] + b"k2" + raw[4:]))
    await assert_invalid(service, issued.access_key_id, text(raw[:2] + b"k9" + raw[4:]))
    await assert_invalid(service, issued.access_key_id, text(raw[:1] + b"\x03k1x" + raw[4:]))
    await assert_invalid(service, issued.access_key_id, text(b"\x02" + raw[1:]))


async def test_other_key_ring_refused(service: CredentialService) -> None:
    issued = issue(service)
    same_id_other_secret = CredentialService(
        KeyRing({"k1": secrets.token_bytes(32)}, "k1"), Revocations.local()
    )
    await assert_invalid(same_id_other_secret, issued.access_key_id, issued.session_token)


async def test_wrong_access_key_refused(service: CredentialService) -> None:
    issued = issue(service)
    other = issue(service)
    await assert_invalid(service, other.access_key_id, issued.session_token)
    await assert_invalid(service, "", issued.session_token)
    await assert_invalid(service, issued.access_key_id.lower(), issued.session_token)
    await assert_invalid(service, issued.access_key_id + "X", issued.session_token)
    await assert_invalid(service, "ASIA\u00e9\ud800", issued.session_token)


async def test_authentic_but_garbled_payloads_refused(keyring: KeyRing) -> None:
    # Only a key holder can seal these; the service still refuses rather than trusting them.
    service = CredentialService(keyring, Revocations.local())
    bomb = b"\x01" + zlib.compress(b'{"v":1,' + b" " * 1_000_000 + b"}")
    for plaintext in (b"", b"\x07{}", b"\x00not json", b"\x00[]", b'\x00{"v":1}', b"\x00{}", bomb, b"\x01xx"):
        await assert_invalid(service, "ASIAAAAAAAAAAAAAAAAA", keyring.seal(plaintext))


async def test_error_messages_carry_no_token(service: CredentialService) -> None:
    issued = issue(service)
    with pytest.raises(InvalidClientTokenId) as caught:
        await service.validate("ASIAAAAAAAAAAAAAAAAA", issued.session_token, now=NOW)
    assert issued.session_token not in repr(caught.value)
    assert issued.session_token[:20] not in str(caught.value)


# -- expiry ------------------------------------------------------------------------------------


async def test_expiry(service: CredentialService) -> None:
    issued = issue(service, duration_seconds=900)
    expires = issued.claims.expires_at
    assert (
        await service.validate(issued.access_key_id, issued.session_token, now=expires - 0.001)
    ).expires_at
    for later in (expires, expires + 1, expires + 86_400):
        with pytest.raises(ExpiredRequestToken) as caught:
            await service.validate(issued.access_key_id, issued.session_token, now=later)
        assert caught.value.code == "ExpiredToken"
        assert caught.value.status == 400


async def test_tampering_is_reported_before_expiry(service: CredentialService) -> None:
    issued = issue(service, duration_seconds=900)
    with pytest.raises(InvalidClientTokenId):
        await service.validate("ASIAAAAAAAAAAAAAAAAA", issued.session_token, now=NOW + 100_000)


# -- key rings and rotation --------------------------------------------------------------------


async def test_rotation_with_overlap() -> None:
    k1, k2 = secrets.token_bytes(32), secrets.token_bytes(32)
    revocations = Revocations.local()
    old = CredentialService(KeyRing({"k1": k1}, "k1"), revocations)
    sealed_with_k1 = issue(old)
    assert raw_bytes(sealed_with_k1.session_token)[2:4] == b"k1"

    both = CredentialService(KeyRing({"k1": k1, "k2": k2}, "k2"), revocations)
    sealed_with_k2 = issue(both)
    assert raw_bytes(sealed_with_k2.session_token)[2:4] == b"k2"
    for creds in (sealed_with_k1, sealed_with_k2):
        assert await both.validate(creds.access_key_id, creds.session_token, now=NOW) == creds.claims

    only_k2 = CredentialService(KeyRing({"k2": k2}, "k2"), revocations)
    await assert_invalid(only_k2, sealed_with_k1.access_key_id, sealed_with_k1.session_token)
    assert (
        await only_k2.validate(sealed_with_k2.access_key_id, sealed_with_k2.session_token, now=NOW)
    ).role_arn


def test_keyring_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDGATE_TEST_KEY_B", "b" * 40)
    settings = KeyRingSettings.model_validate(
        {
            "active": "b",
            "keys": [
                {"id": "a", "secret": {"value": "a" * 32}},
                {"id": "b", "secret": {"env": "FEDGATE_TEST_KEY_B"}},
            ],
        }
    )
    ring = KeyRing.from_settings(settings)
    assert ring.active_id == "b"
    assert ring.key_ids == {"a", "b"}
    assert "a" * 32 not in repr(ring)
    assert ring.unseal(ring.seal(b"payload")) == b"payload"


def test_keyring_refuses_short_or_missing_secret() -> None:
    short = KeyRingSettings.model_validate(
        {
            "active": "a",
            "keys": [{"id": "a", "secret": {"value": "a" * 32}}, {"id": "b", "secret": {"value": "x" * 31}}],
        }
    )
    with pytest.raises(ConfigError, match=r"^keyring\.keys\[1\]\.secret: must be at least 32 bytes$"):
        KeyRing.from_settings(short)
    missing = KeyRingSettings.model_validate(
        {"active": "a", "keys": [{"id": "a", "secret": {"env": "FEDGATE_TEST_SURELY_UNSET_KEY"}}]}
    )
    with pytest.raises(ConfigError, match=r"^keyring\.keys\[0\]\.secret: environment variable"):
        KeyRing.from_settings(missing)


def test_keyring_secret_length_counts_bytes() -> None:
    # 11 three-byte characters: 33 bytes, though only 11 characters.
    settings = KeyRingSettings.model_validate(
        {"active": "a", "keys": [{"id": "a", "secret": {"value": "\u20ac" * 11}}]}
    )
    assert KeyRing.from_settings(settings).active_id == "a"


def test_ephemeral_keyring_warns_and_is_unique(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.credentials.keyring"):
        first = KeyRing.from_settings(None)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "restart" in warnings[0].getMessage() and "replicas" in warnings[0].getMessage()
    second = KeyRing.ephemeral()
    token = first.seal(b"x")
    assert first.unseal(token) == b"x"
    with pytest.raises(InvalidClientTokenId):
        second.unseal(token)


def test_keyring_constructor_checks() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        KeyRing({"a": b"short"}, "a")
    with pytest.raises(ValueError, match="active"):
        KeyRing({"a": b"x" * 32}, "b")
    with pytest.raises(ValueError, match="key ids"):
        KeyRing({"a b": b"x" * 32}, "a b")


def test_session_claims_direct_construction_freezes_inputs() -> None:
    tags = {"a": "1"}
    claims = SessionClaims(
        account_id="123456789012",
        role_arn=ROLE,
        role_name="ci-deployer",
        role_id=role_id_for(ROLE),
        session_name="s",
        access_key_id="ASIAAAAAAAAAAAAAAAAA",
        secret_access_key="x" * 40,
        issued_at=1.0,
        expires_at=2.0,
        tags=tags,
        identity_claims={"k": ["a", "b"]},  # type: ignore[dict-item]
    )
    tags["a"] = "2"
    assert claims.tags == {"a": "1"}
    assert claims.identity_claims == {"k": ("a", "b")}
