"""The session-permission engine: what a signed call's session may do, from one snapshot."""

from __future__ import annotations

import pytest

from gateway.context import Transport
from gateway.credentials import SessionClaims, role_id_for
from gateway.iam import permissions
from gateway.iam.catalog import build_snapshot
from gateway.iam.permissions import Check
from gateway.iam.records import CatalogRecords, InlinePolicyRecord, RoleRecord

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/idp.example"},
            "Action": "sts:AssumeRoleWithWebIdentity",
        }
    ],
}
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::data/${aws:PrincipalTag/team}/*",
        },
        {
            "Effect": "Deny",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ],
}
SNAPSHOT = build_snapshot(
    CatalogRecords(
        ACCOUNT,
        roles=(
            RoleRecord(
                "app", TRUST, inline_policies=(InlinePolicyRecord("read", POLICY),), tags={"team": "blue"}
            ),
        ),
    )
)


def claims(**kw: object) -> SessionClaims:
    values: dict[str, object] = {
        "account_id": ACCOUNT,
        "role_arn": ROLE,
        "role_name": "app",
        "role_id": role_id_for(ROLE),
        "session_name": "alice",
        "access_key_id": "ASIAEXAMPLEEXAMPLE12",
        "secret_access_key": "x" * 40,
        "issued_at": 1_800_000_000.0,
        "expires_at": 1_800_003_600.0,
    }
    values.update(kw)
    return SessionClaims(**values)  # type: ignore[arg-type]


def transport(secure: bool = True) -> Transport:
    return Transport(source_ip="192.0.2.1", secure=secure, user_agent=None, referer=None, now=1_800_000_100)


def test_role_tags_policies_and_the_request_decide_together() -> None:
    session = claims()
    context = permissions.session_context(SNAPSHOT, session, transport(), region="us-east-1")
    assert context["aws:PrincipalTag/team"] == "blue"
    assert permissions.principal(session) == {"AWS": [session.assumed_role_arn, ROLE]}
    allowed = permissions.decide(
        SNAPSHOT, session, [Check("s3:GetObject", "arn:aws:s3:::data/blue/k")], context
    )
    assert allowed.allowed
    other = permissions.decide(SNAPSHOT, session, [Check("s3:GetObject", "arn:aws:s3:::data/red/k")], context)
    assert not other.allowed and other.kind == "implicitDeny"
    # Session tags override role tags of the same key.
    red = claims(tags={"team": "red"})
    red_context = permissions.session_context(SNAPSHOT, red, transport(), region="us-east-1")
    assert permissions.decide(
        SNAPSHOT, red, [Check("s3:GetObject", "arn:aws:s3:::data/red/k")], red_context
    ).allowed


def test_every_check_must_be_allowed_and_the_first_denial_is_returned() -> None:
    session = claims()
    context = permissions.session_context(SNAPSHOT, session, transport(secure=False), region="us-east-1")
    decision = permissions.decide(
        SNAPSHOT,
        session,
        [
            Check("s3:GetObject", "arn:aws:s3:::data/blue/k"),
            Check("s3:PutObject", "arn:aws:s3:::data/blue/k"),
        ],
        context,
    )
    assert not decision.allowed and decision.kind == "explicitDeny" and decision.action == "s3:GetObject"
    with pytest.raises(ValueError, match="no checks"):
        permissions.decide(SNAPSHOT, session, [], context)


def test_a_session_of_a_role_that_is_gone_may_do_nothing() -> None:
    gone = claims(role_arn=f"arn:aws:iam::{ACCOUNT}:role/gone", role_name="gone")
    assert permissions.role_tags(SNAPSHOT, gone) == {}
    context = permissions.session_context(SNAPSHOT, gone, transport(), region="us-east-1")
    assert not permissions.decide(SNAPSHOT, gone, [Check("s3:GetObject", "*")], context).allowed
