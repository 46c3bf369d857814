"""Audit events: one builder per userIdentity shape, and every shape matches docs/audit.md.

The suite-wide observer in tests/conftest.py checks every event real calls emit; these tests pin
the spelling of each shape and prove the schema refuses what it should.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from gateway.audit.events import assumed_role_elements, build_event, user_identity
from gateway.calls import CallRecord
from gateway.context import Transport
from gateway.credentials import IssuedCredentials, SessionClaims, role_id_for
from gateway.errors import AccessDenied
from gateway.identity import Identity
from gateway.sts.service import AssumedRole, RoleSession
from tests.conftest import audit_validator

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
OIDC = f"arn:aws:iam::{ACCOUNT}:oidc-provider/idp.example"
SAML = f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"
WEB = Identity(
    provider_arn=OIDC,
    provider_id="idp.example",
    kind="oidc",
    subject="alice",
    audience="app",
    issuer="https://idp.example",
)
SAML_ID = Identity(
    provider_arn=SAML,
    provider_id="corp",
    kind="saml",
    subject="alice@example.com",
    audience="https://signin.aws.amazon.com/saml",
    issuer="https://idp.example/saml",
    name_qualifier="Qm9ndXNOYW1lUXVhbGlmaWVy",
    subject_type="persistent",
)
CLAIMS = SessionClaims(
    account_id=ACCOUNT,
    role_arn=ROLE,
    role_name="app",
    role_id=role_id_for(ROLE),
    session_name="alice",
    access_key_id="ASIAABCDEFGHIJKLMNOP",
    secret_access_key="s" * 40,
    issued_at=1_800_000_000.5,
    expires_at=1_800_003_600.0,
    source_identity="alice",
)


def record(**facts: Any) -> CallRecord:
    transport = Transport(
        source_ip="192.0.2.7", secure=True, user_agent="ua", referer=None, now=1_800_000_000
    )
    return CallRecord(request_id="req-1", transport=transport, **facts)


def event(call: CallRecord, **kw: Any) -> dict[str, Any]:
    built = build_event("AssumeRoleWithWebIdentity", call, None, account_id=ACCOUNT, region="us-east-1", **kw)
    errors = [e.message for e in audit_validator().iter_errors(built)]
    assert not errors, errors
    return built


def test_an_assumed_role_session_is_spelled_once() -> None:
    shape = user_identity(record(session=CLAIMS))
    assert shape == {
        "type": "AssumedRole",
        "principalId": f"{CLAIMS.role_id}:alice",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/app/alice",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAABCDEFGHIJKLMNOP",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": CLAIMS.role_id,
                "arn": ROLE,
                "accountId": ACCOUNT,
                "userName": "app",
            },
            "attributes": {"creationDate": "2027-01-15T08:00:00Z", "mfaAuthenticated": "false"},
            "sourceIdentity": "alice",
        },
    }
    event(record(session=CLAIMS))


def test_federated_users_use_cloudtrails_principal_ids_wherever_they_sign_in() -> None:
    web = user_identity(record(identity=WEB))
    assert web == {
        "type": "WebIdentityUser",
        "principalId": f"{OIDC}:app:alice",
        "userName": "alice",
        "identityProvider": OIDC,
    }
    saml = user_identity(record(identity=SAML_ID))
    assert saml["type"] == "SAMLUser" and saml["principalId"] == "Qm9ndXNOYW1lUXVhbGlmaWVy:alice@example.com"
    # A browser sign-in is the same principal, spelled the same, plus how it arrived.
    assert user_identity(record(identity=WEB, sign_in_via="web")) == {**web, "signInVia": "fedgate-web"}
    assert user_identity(record(identity=SAML_ID, sign_in_via="cli")) == {**saml, "signInVia": "fedgate-cli"}
    for facts in ({"identity": WEB, "sign_in_via": "device"}, {"identity": SAML_ID}, {}):
        event(record(**facts))
    assert user_identity(record()) == {"type": "Unknown"}


def test_response_elements_name_the_key_never_the_secret() -> None:
    issued = IssuedCredentials(
        access_key_id=CLAIMS.access_key_id,
        secret_access_key=CLAIMS.secret_access_key,
        session_token="token-" + "t" * 40,
        expiration=datetime.fromtimestamp(CLAIMS.expires_at, UTC),
        claims=CLAIMS,
    )
    names = {
        "credentials": issued,
        "assumed_role_arn": CLAIMS.assumed_role_arn,
        "assumed_role_id": CLAIMS.assumed_role_id,
        "packed_policy_size": None,
        "source_identity": None,
    }
    for identity in (WEB, SAML_ID):
        assumed = AssumedRole(**names, identity=identity)
        call = record(identity=identity, response_elements=assumed_role_elements(assumed))
        text = str(event(call))
        assert CLAIMS.access_key_id in text and "s" * 40 not in text and "token-" not in text
    # AssumeRole: a signed caller, no federated identity.
    chained = RoleSession(**{**names, "source_identity": "alice"})
    elements = assumed_role_elements(chained)
    assert elements["sourceIdentity"] == "alice" and "provider" not in elements
    text = str(event(record(session=CLAIMS, response_elements=elements)))
    assert "s" * 40 not in text and "token-" not in text


def test_proxied_events_carry_the_decision_and_failures_their_code() -> None:
    call = record(session=CLAIMS, resources=[("s3:GetObject", "arn:aws:s3:::b/k")])
    built = build_event(
        "GetObject",
        call,
        AccessDenied("no"),
        account_id=ACCOUNT,
        region="us-east-1",
        source="s3.amazonaws.com",
        read_only=True,
        additional={"upstream": "minio", "decision": "implicitDeny", "deniedBy": "identity"},
    )
    assert not list(audit_validator().iter_errors(built))
    assert built["resources"] == [{"type": "s3:GetObject", "ARN": "arn:aws:s3:::b/k"}]
    assert (built["errorCode"], built["responseElements"]) == ("AccessDenied", None)


def test_the_schema_refuses_what_the_builders_never_write() -> None:
    good = event(record(identity=WEB))
    bad = [
        {**good, "extra": 1},
        {**good, "userIdentity": {**good["userIdentity"], "type": "IAMUser"}},
        {**good, "userIdentity": {**good["userIdentity"], "signInVia": "elsewhere"}},
        {**good, "requestParameters": {"webIdentityToken": "eyJ..."}},
        {**good, "errorCode": "AccessDenied"},  # without its message
        {k: v for k, v in good.items() if k != "requestID"},
    ]
    for candidate in bad:
        assert list(audit_validator().iter_errors(candidate)), candidate
    # A real session's event, with a secret smuggled into its session context, is refused too.
    session = event(record(session=replace(CLAIMS, source_identity=None)))
    smuggled = {
        **session["userIdentity"],
        "sessionContext": {**session["userIdentity"]["sessionContext"], "token": "x"},
    }
    assert list(audit_validator().iter_errors({**session, "userIdentity": smuggled}))
