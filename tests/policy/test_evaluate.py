"""Evaluation logic (AWS "Policy evaluation logic") and real-world trust policies."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.policy import PolicySet, Request, evaluate, evaluate_trust, parse_policy
from tests.policy.policy_helpers import ACCOUNT, V12, allow, decide, identity

ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1"
OBJ = "arn:aws:s3:::bucket/key"


def pol(kind: Any, *stmts: dict[str, Any], name: str = "p") -> Any:
    return parse_policy({"Version": V12, "Statement": list(stmts)}, kind=kind, name=name)


def res_allow(principal: Any) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::bucket/*",
    }


def req(principal: Any = None, **ctx: str) -> Request:
    return Request("s3:GetObject", OBJ, principal=principal or {"AWS": [SESSION, ROLE]}, context=ctx)


def test_default_is_implicit_deny() -> None:
    d = decide([identity(allow(Action="s3:PutObject"))])
    assert (d.allowed, d.kind, d.denied_by, d.matched) == (False, "implicitDeny", "identity", ())
    assert "implicitly" in d.explain() and "no identity policy statement allows it" in d.explain()
    assert decide([]).kind == "implicitDeny"


def test_explicit_deny_wins_everywhere() -> None:
    deny = allow(Effect="Deny", Sid="NoGet")
    d = decide([identity(allow()), identity(deny, name="guard")])
    assert (d.allowed, d.kind, d.denied_by) == (False, "explicitDeny", "identity")
    assert [(m.policy, m.sid, m.effect, m.index) for m in d.matched] == [("guard", "NoGet", "Deny", 0)]
    assert 'statement 0 "NoGet" of identity policy "guard"' in d.explain()
    d = decide([identity(allow())], boundary=[pol("boundary", allow(), deny)])
    assert (d.kind, d.denied_by) == ("explicitDeny", "boundary")
    d = decide([identity(allow())], session=[pol("session", allow(), deny)])
    assert (d.kind, d.denied_by) == ("explicitDeny", "session")
    d = evaluate(req(), identity=[identity(allow())], resource=pol("resource", {**deny, "Principal": "*"}))
    assert (d.kind, d.denied_by) == ("explicitDeny", "resource")


def test_boundary_and_session_limit_identity() -> None:
    ident = [identity(allow(Action="s3:*"))]
    only_put = [pol("boundary", allow(Action="s3:PutObject"))]
    d = decide(ident, boundary=only_put)
    assert (d.allowed, d.denied_by) == (False, "boundary")
    assert "boundary policy does not allow it" in d.explain()
    assert decide(ident, boundary=[pol("boundary", allow(Action="s3:Get*"))]).allowed
    d = decide(ident, session=[pol("session", allow(Action="s3:PutObject"))])
    assert (d.allowed, d.denied_by) == (False, "session")
    ok = decide(ident, boundary=[pol("boundary", allow())], session=[pol("session", allow())])
    assert ok.allowed and {m.kind for m in ok.matched} == {"identity", "boundary", "session"}
    # The boundary alone grants nothing.
    assert decide([], boundary=[pol("boundary", allow())]).denied_by == "identity"


def test_empty_boundary_or_session_denies() -> None:
    ident = [identity(allow())]
    assert decide(ident, boundary=[]).denied_by == "boundary"
    assert decide(ident, session=[]).denied_by == "session"
    assert decide(ident, boundary=None, session=None).allowed


def test_same_account_resource_policy() -> None:
    none: list[Any] = []
    # Naming the session ARN grants directly: identity, boundary and session policies do not limit it.
    d = evaluate(
        req(),
        identity=none,
        resource=pol("resource", res_allow({"AWS": SESSION})),
        boundary=[pol("boundary", allow(Action="s3:PutObject"))],
        session=[pol("session", allow(Action="x:Y"))],
    )
    assert d.allowed and d.matched[0].kind == "resource"
    # Naming the role ARN adds to identity permissions but session and boundary policies still limit it.
    by_role = pol("resource", res_allow({"AWS": ROLE}))
    assert evaluate(req(), identity=none, resource=by_role).allowed
    d = evaluate(req(), identity=none, resource=by_role, session=[pol("session", allow(Action="x:Y"))])
    assert (d.allowed, d.denied_by) == (False, "session")
    d = evaluate(req(), identity=none, resource=by_role, boundary=[pol("boundary", allow(Action="x:Y"))])
    assert (d.allowed, d.denied_by) == (False, "boundary")
    # Naming the account delegates to identity policies.
    by_account = pol("resource", res_allow({"AWS": ACCOUNT}))
    assert evaluate(req(), identity=none, resource=by_account).denied_by == "identity"
    assert evaluate(req(), identity=[identity(allow())], resource=by_account).allowed
    # A resource policy naming someone else does nothing for us.
    other = pol("resource", res_allow({"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"}))
    assert not evaluate(req(), identity=none, resource=other).allowed


def test_cross_account_needs_both() -> None:
    by_account = pol("resource", res_allow({"AWS": ACCOUNT}))
    ident = [identity(allow())]
    assert evaluate(req(), identity=ident, resource=by_account, same_account=False).allowed
    d = evaluate(req(), identity=ident, same_account=False)
    assert (d.allowed, d.denied_by) == (False, "resource")
    assert "cross-account" in d.explain()
    d = evaluate(
        req(), identity=[], resource=pol("resource", res_allow({"AWS": SESSION})), same_account=False
    )
    assert (d.allowed, d.denied_by) == (False, "identity")


def test_kind_mismatch_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="is a boundary policy, used as a identity policy"):
        decide([pol("boundary", allow())])


def test_policy_set_reuse_and_explain_allowed() -> None:
    ps = PolicySet(identity=[identity(allow(Sid="Read"), name="reader").compiled])
    d = ps.decide(Request("s3:GetObject", OBJ))
    assert d.allowed and d.explain() == (
        f'Allowed s3:GetObject on {OBJ}: allowed by statement 0 "Read" of identity policy "reader".'
    )
    assert not ps.decide(Request("s3:PutObject", OBJ)).allowed


# --- trust policies for AssumeRoleWithWebIdentity ----------------------------------------------

GH = "token.actions.githubusercontent.com"
GH_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GH}"
EKS = "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
EKS_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{EKS}"
AWRWI = "sts:AssumeRoleWithWebIdentity"


def trust(principal: dict[str, Any], condition: dict[str, Any], action: str = AWRWI) -> Any:
    return parse_policy(
        {
            "Version": V12,
            "Statement": [
                {"Effect": "Allow", "Principal": principal, "Action": action, "Condition": condition}
            ],
        },
        kind="trust",
        name="t",
    )


def web(provider: str, **claims: Any) -> Request:
    return Request(AWRWI, ROLE, principal={"Federated": [provider]}, context=claims)


GITHUB = trust(
    {"Federated": GH_ARN},
    {
        "StringEquals": {f"{GH}:aud": "sts.amazonaws.com"},
        "StringLike": {f"{GH}:sub": "repo:octo-org/*"},
    },
)


@pytest.mark.parametrize(
    ("claims", "provider", "expected"),
    [
        (
            {f"{GH}:aud": "sts.amazonaws.com", f"{GH}:sub": "repo:octo-org/app:ref:refs/heads/main"},
            GH_ARN,
            True,
        ),
        ({f"{GH}:aud": "sts.amazonaws.com", f"{GH}:sub": "repo:octo-org/app:environment:prod"}, GH_ARN, True),
        (
            {f"{GH}:aud": "sts.amazonaws.com", f"{GH}:sub": "repo:evil-org/app:ref:refs/heads/main"},
            GH_ARN,
            False,
        ),
        ({f"{GH}:aud": "sts.amazonaws.com", f"{GH}:sub": "repo:octo-org-evil/app"}, GH_ARN, False),
        ({f"{GH}:aud": "other", f"{GH}:sub": "repo:octo-org/app"}, GH_ARN, False),
        ({f"{GH}:sub": "repo:octo-org/app"}, GH_ARN, False),
        ({f"{GH}:aud": "sts.amazonaws.com"}, GH_ARN, False),
        (
            {f"{GH}:aud": "sts.amazonaws.com", f"{GH}:sub": "repo:octo-org/app"},
            f"arn:aws:iam::{ACCOUNT}:oidc-provider/evil.example.com",
            False,
        ),
    ],
)
def test_github_actions_trust(claims: dict[str, str], provider: str, expected: bool) -> None:
    d = evaluate_trust(GITHUB, web(provider, **claims))
    assert d.allowed is expected
    assert d.kind == ("allowed" if expected else "implicitDeny")


def test_github_trust_rejects_other_actions() -> None:
    claims = {f"{GH}:aud": "sts.amazonaws.com", f"{GH}:sub": "repo:octo-org/app"}
    r = Request("sts:AssumeRole", ROLE, principal={"Federated": [GH_ARN]}, context=claims)
    assert not evaluate_trust(GITHUB, r).allowed


def test_eks_irsa_trust() -> None:
    t = trust(
        {"Federated": EKS_ARN},
        {
            "StringEquals": {
                f"{EKS}:sub": "system:serviceaccount:payments:api",
                f"{EKS}:aud": "sts.amazonaws.com",
            }
        },
    )
    good = {f"{EKS}:sub": "system:serviceaccount:payments:api", f"{EKS}:aud": "sts.amazonaws.com"}
    assert evaluate_trust(t, web(EKS_ARN, **good)).allowed
    assert not evaluate_trust(
        t, web(EKS_ARN, **{**good, f"{EKS}:sub": "system:serviceaccount:payments:worker"})
    ).allowed
    assert not evaluate_trust(
        t, web(EKS_ARN, **{**good, f"{EKS}:sub": "system:serviceaccount:payments:*"})
    ).allowed


def test_google_trust_and_deny_statement() -> None:
    t = parse_policy(
        {
            "Version": V12,
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": "accounts.google.com"},
                    "Action": AWRWI,
                    "Condition": {
                        "StringEquals": {"accounts.google.com:aud": "1234.apps.googleusercontent.com"}
                    },
                },
                {
                    "Sid": "NoContractors",
                    "Effect": "Deny",
                    "Principal": {"Federated": "accounts.google.com"},
                    "Action": "sts:*",
                    "Condition": {"ForAnyValue:StringLike": {"accounts.google.com:groups": "contractors*"}},
                },
            ],
        },
        kind="trust",
        name="google",
    )
    base = {"accounts.google.com:aud": "1234.apps.googleusercontent.com"}
    assert evaluate_trust(t, web("accounts.google.com", **base)).allowed
    d = evaluate_trust(
        t, web("accounts.google.com", **base, **{"accounts.google.com:groups": ["eng", "contractors-x"]})
    )
    assert (d.kind, d.denied_by, d.matched[0].sid) == ("explicitDeny", "trust", "NoContractors")
    assert not evaluate_trust(t, web("accounts.google.com", **{"accounts.google.com:aud": "5678"})).allowed
