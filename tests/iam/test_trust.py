"""The one trust decision: the actions AWS requires, the IdP's grants, and the request's facts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gateway.context import Transport
from gateway.credentials import SessionClaims
from gateway.iam.caller import Caller
from gateway.iam.catalog import build_snapshot
from gateway.iam.records import CatalogRecords, RoleRecord
from gateway.iam.trust import decide_assume_role, decide_trust, required_actions, trust_context
from gateway.identity import Identity
from gateway.policy import PolicySet, parse_policy

ACCOUNT = "123456789012"
OIDC = f"arn:aws:iam::{ACCOUNT}:oidc-provider/idp.example"
SAML = f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"
HERE = Transport(source_ip="192.0.2.10", secure=True, user_agent="aws-cli/2", referer=None, now=1_800_000_000)


def trust(provider: str, *actions: str, **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Federated": provider},
        "Action": list(actions),
    }
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def role(name: str, document: dict[str, Any]) -> Any:
    snapshot = build_snapshot(CatalogRecords(ACCOUNT, roles=(RoleRecord(name, document),)))
    return snapshot.role_named(name)


WEB = Identity(
    provider_arn=OIDC,
    provider_id="idp.example",
    kind="oidc",
    subject="alice",
    audience="app",
    issuer="https://idp.example",
)


def test_a_web_identity_needs_the_federation_action_only() -> None:
    assert required_actions(WEB) == ("sts:AssumeRoleWithWebIdentity",)
    allowed = decide_trust(
        role("r", trust(OIDC, "sts:AssumeRoleWithWebIdentity")), WEB, session_name="s", transport=HERE
    )
    assert allowed.allowed and allowed.action == "sts:AssumeRoleWithWebIdentity"


def test_session_tags_and_source_identity_need_their_own_actions() -> None:
    tagged = replace(WEB, session_tags={"team": "data"}, source_identity="alice")
    assert required_actions(tagged) == (
        "sts:AssumeRoleWithWebIdentity",
        "sts:TagSession",
        "sts:SetSourceIdentity",
    )
    plain = role("r", trust(OIDC, "sts:AssumeRoleWithWebIdentity"))
    refused = decide_trust(plain, tagged, session_name="s", transport=HERE)
    assert not refused.allowed and refused.action == "sts:TagSession"
    assert refused.error().message == "Not authorized to perform sts:TagSession"
    full = role("r", trust(OIDC, "sts:AssumeRoleWithWebIdentity", "sts:TagSession", "sts:SetSourceIdentity"))
    assert decide_trust(full, tagged, session_name="s", transport=HERE).allowed


def test_a_saml_identity_may_only_assume_what_its_idp_granted() -> None:
    saml_role = role("r", trust(SAML, "sts:AssumeRoleWithSAML"))
    identity = Identity(
        provider_arn=SAML, provider_id="corp", kind="saml", subject="alice", audience="aud", issuer="idp"
    )
    assert not decide_trust(saml_role, identity, session_name="s", transport=HERE).allowed
    granted = replace(identity, roles=((saml_role.arn, SAML),))
    assert decide_trust(saml_role, granted, session_name="s", transport=HERE).allowed
    via_other = replace(identity, roles=((saml_role.arn, f"arn:aws:iam::{ACCOUNT}:saml-provider/other"),))
    assert not decide_trust(saml_role, via_other, session_name="s", transport=HERE).allowed


def test_an_unknown_role_is_refused_like_a_forbidden_one() -> None:
    refused = decide_trust(None, WEB, session_name="s", transport=HERE)
    assert (
        not refused.allowed
        and refused.error().message == "Not authorized to perform sts:AssumeRoleWithWebIdentity"
    )


def test_the_request_facts_reach_the_trust_policy() -> None:
    context = trust_context(replace(WEB, transitive_tag_keys=("team",)), session_name="alice", transport=HERE)
    assert context["aws:sourceip"] == "192.0.2.10"
    assert context["aws:useragent"] == "aws-cli/2"
    assert context["aws:securetransport"] == "true"
    assert context["aws:epochtime"] == "1800000000"
    assert context["sts:rolesessionname"] == "alice"
    assert context["sts:transitivetagkeys"] == ["team"]
    only_here = role(
        "r", trust(OIDC, "sts:AssumeRoleWithWebIdentity", IpAddress={"aws:SourceIp": "192.0.2.0/24"})
    )
    assert decide_trust(only_here, WEB, session_name="s", transport=HERE).allowed
    elsewhere = replace(HERE, source_ip="203.0.113.9")
    assert not decide_trust(only_here, WEB, session_name="s", transport=elsewhere).allowed


SESSION = SessionClaims(
    account_id=ACCOUNT,
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/caller",
    role_name="caller",
    role_id="AROAEXAMPLE",
    session_name="s",
    access_key_id="ASIAEXAMPLEEXAMPLE12",
    secret_access_key="secret",
    issued_at=0.0,
    expires_at=3600.0,
)


def _caller(
    identity: list[dict[str, Any]], session: list[dict[str, Any]] | None = None
) -> tuple[Caller, PolicySet]:
    """A session of role ``caller`` whose role allows ``identity`` and whose session policy ``session``."""

    def doc(statements: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": statements}

    policies = PolicySet(
        identity=[parse_policy(doc(identity), kind="identity", name="id")] if identity else [],
        session=[parse_policy(doc(session), kind="session", name="sp")] if session is not None else None,
    )
    return Caller.of_session(SESSION), policies


def _aws_trust(principal: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}],
    }


ALLOW_ASSUME = [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]
ALLOW_S3 = [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]


def _decide(trust_principal: str, caller: tuple[Caller, PolicySet]) -> bool:
    target = role("target", _aws_trust(trust_principal))
    who, policies = caller
    return decide_assume_role(target, who, policies=policies, actions=("sts:AssumeRole",), context={}).allowed


def test_trust_in_the_account_delegates_to_the_callers_identity_policy() -> None:
    for principal in (f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT):
        assert not _decide(principal, _caller([]))
        assert _decide(principal, _caller(ALLOW_ASSUME))
        assert not _decide(principal, _caller(ALLOW_ASSUME, session=ALLOW_S3))
    assert not _decide("arn:aws:iam::210987654321:root", _caller(ALLOW_ASSUME))


def test_trust_in_the_role_grants_within_the_session_policy_and_the_session_arn_grants_alone() -> None:
    by_role = f"arn:aws:iam::{ACCOUNT}:role/caller"
    assert _decide(by_role, _caller([]))
    assert not _decide(by_role, _caller([], session=ALLOW_S3))
    by_session = f"arn:aws:sts::{ACCOUNT}:assumed-role/caller/s"
    assert _decide(by_session, _caller([], session=ALLOW_S3))
    assert not _decide(f"arn:aws:sts::{ACCOUNT}:assumed-role/caller/other", _caller(ALLOW_ASSUME))


def test_an_unknown_role_is_refused_to_a_signed_caller() -> None:
    who, policies = _caller(ALLOW_ASSUME)
    refused = decide_assume_role(None, who, policies=policies, actions=("sts:AssumeRole",), context={})
    assert not refused.allowed and refused.action == "sts:AssumeRole"
