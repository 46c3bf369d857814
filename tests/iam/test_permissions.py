"""The permission engine: what a signed call's caller (a role session, an IAM user) may do, from one
snapshot."""

from __future__ import annotations

import pytest

from gateway.context import Transport
from gateway.credentials import SessionClaims, role_id_for
from gateway.iam import permissions
from gateway.iam.caller import Caller
from gateway.iam.catalog import build_snapshot
from gateway.iam.permissions import Check
from gateway.iam.records import (
    CatalogRecords,
    GroupRecord,
    InlinePolicyRecord,
    PolicyRecord,
    RoleRecord,
    UserRecord,
)

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


def a_session(**kw: object) -> Caller:
    return Caller.of_session(claims(**kw))


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
    session = Caller.of_session(claims())
    context = permissions.session_context(SNAPSHOT, session, transport(), region="us-east-1")
    assert context["aws:PrincipalTag/team"] == "blue"
    assert permissions.principal(session) == {"AWS": [session.arn, ROLE]}
    allowed = permissions.decide(
        SNAPSHOT, session, [Check("s3:GetObject", "arn:aws:s3:::data/blue/k")], context
    )
    assert allowed.allowed
    other = permissions.decide(SNAPSHOT, session, [Check("s3:GetObject", "arn:aws:s3:::data/red/k")], context)
    assert not other.allowed and other.kind == "implicitDeny"
    # Session tags override role tags of the same key.
    red = a_session(tags={"team": "red"})
    red_context = permissions.session_context(SNAPSHOT, red, transport(), region="us-east-1")
    assert permissions.decide(
        SNAPSHOT, red, [Check("s3:GetObject", "arn:aws:s3:::data/red/k")], red_context
    ).allowed


def test_every_check_must_be_allowed_and_the_first_denial_is_returned() -> None:
    session = Caller.of_session(claims())
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
    gone = a_session(role_arn=f"arn:aws:iam::{ACCOUNT}:role/gone", role_name="gone")
    assert permissions.principal_tags(SNAPSHOT, gone) == {}
    context = permissions.session_context(SNAPSHOT, gone, transport(), region="us-east-1")
    assert not permissions.decide(SNAPSHOT, gone, [Check("s3:GetObject", "*")], context).allowed


def _allow(action: str, resource: str = "*") -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
    }


USERS = build_snapshot(
    CatalogRecords(
        ACCOUNT,
        policies=(
            PolicyRecord("s3-read", _allow("s3:GetObject")),
            PolicyRecord("bound", _allow("s3:*")),
            PolicyRecord("sqs", _allow("sqs:*")),
        ),
        groups=(
            GroupRecord(
                "readers",
                inline_policies=(InlinePolicyRecord("list", _allow("s3:ListBucket")),),
                managed_policy_arns=(f"arn:aws:iam::{ACCOUNT}:policy/sqs",),
            ),
        ),
        users=(
            UserRecord(
                "alice",
                path="/eng/",
                groups=("readers",),
                inline_policies=(
                    InlinePolicyRecord("own", _allow("s3:PutObject", "arn:aws:s3:::data/${aws:username}/*")),
                ),
                managed_policy_arns=(f"arn:aws:iam::{ACCOUNT}:policy/s3-read",),
                tags={"team": "blue"},
            ),
            UserRecord(
                "bob",
                groups=("readers",),
                permissions_boundary_arn=f"arn:aws:iam::{ACCOUNT}:policy/bound",
                source="api",
            ),
            UserRecord(
                "carol",
                inline_policies=(InlinePolicyRecord("all", _allow("*")),),
                permissions_boundary_arn=f"arn:aws:iam::{ACCOUNT}:policy/gone",
                managed_policy_arns=(f"arn:aws:iam::{ACCOUNT}:policy/also-gone",),
                source="api",
            ),
        ),
    )
)


def user(name: str) -> Caller:
    found = USERS.user_named(name)
    assert found is not None
    return Caller.of_user(
        arn=found.arn, user_id=found.user_id, account_id=ACCOUNT, name=name, access_key_id="AKIA" + "A" * 16
    )


def _decide(caller: Caller, action: str, resource: str = "*") -> bool:
    context = permissions.session_context(USERS, caller, transport(), region="us-east-1")
    return permissions.decide(USERS, caller, [Check(action, resource)], context).allowed


def test_a_user_has_its_own_and_its_groups_policies() -> None:
    alice = user("alice")
    assert alice.arn == f"arn:aws:iam::{ACCOUNT}:user/eng/alice" and alice.user_id.startswith("AIDA")
    assert _decide(alice, "s3:GetObject")  # attached managed policy
    assert _decide(alice, "s3:ListBucket")  # the group's inline policy
    assert _decide(alice, "sqs:SendMessage")  # the group's managed policy
    assert _decide(alice, "s3:PutObject", "arn:aws:s3:::data/alice/k")  # ${aws:username}
    assert not _decide(alice, "s3:PutObject", "arn:aws:s3:::data/bob/k")
    assert not _decide(alice, "iam:CreateUser")


def test_a_users_context_names_the_user() -> None:
    alice = user("alice")
    context = permissions.session_context(USERS, alice, transport(), region="us-east-1")
    assert context["aws:PrincipalArn"] == alice.arn
    assert context["aws:PrincipalType"] == "User"
    assert context["aws:userid"] == alice.user_id
    assert context["aws:username"] == "alice"
    assert context["aws:PrincipalTag/team"] == "blue"
    assert "aws:TokenIssueTime" not in context and "aws:MultiFactorAuthPresent" not in context
    assert permissions.principal(alice) == {"AWS": [alice.arn]}


def test_a_boundary_limits_a_user_and_a_missing_one_allows_nothing() -> None:
    bob = user("bob")
    assert not _decide(bob, "sqs:SendMessage")  # granted by the group, outside the boundary
    assert _decide(bob, "s3:ListBucket")
    carol = user("carol")  # an API user whose boundary policy went away: fail closed
    assert not _decide(carol, "s3:GetObject")


def test_a_user_that_is_gone_may_do_nothing() -> None:
    ghost = Caller.of_user(
        arn=f"arn:aws:iam::{ACCOUNT}:user/ghost",
        user_id="AIDA" + "B" * 17,
        account_id=ACCOUNT,
        name="ghost",
        access_key_id="AKIA" + "B" * 16,
    )
    assert not _decide(ghost, "s3:GetObject")


def test_mfa_keys_of_a_session() -> None:
    def context(**kw: object) -> dict[str, object]:
        return dict(permissions.session_context(SNAPSHOT, a_session(**kw), transport(), region="us-east-1"))

    without = context()
    assert without["aws:MultiFactorAuthPresent"] == "false" and "aws:MultiFactorAuthAge" not in without
    # The age counts from the MFA itself (a chained session keeps it), else from the issue time.
    at = context(mfa_authenticated=True, mfa_at=1_800_000_000.0 - 500)
    assert (at["aws:MultiFactorAuthPresent"], at["aws:MultiFactorAuthAge"]) == ("true", "600")
    assert context(mfa_authenticated=True)["aws:MultiFactorAuthAge"] == "100"
