"""Action, resource and principal matching, and policy variables."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.policy import Request, evaluate, parse_policy
from tests.policy.policy_helpers import ACCOUNT, allow, decide, identity


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("s3:GetObject", "s3:GetObject", True),
        ("s3:getobject", "S3:GETOBJECT", True),  # actions are case-insensitive
        ("s3:Get*", "s3:GetObjectAcl", True),
        ("s3:Get*", "s3:PutObject", False),
        ("s3:*Object", "s3:DeleteObject", True),
        ("s3:?etObject", "s3:GetObject", True),
        ("s3:?etObject", "s3:GGetObject", False),
        ("*", "iam:CreateUser", True),
        ("s3*:Get*", "s3:GetObject", True),
        ("s3:*", "s3express:CreateSession", False),  # the prefix is the whole service
        ("iam:*", "iamx:Get", False),
    ],
)
def test_action_wildcards(pattern: str, action: str, expected: bool) -> None:
    p = identity(allow(Action=pattern))
    assert decide([p], action=action).allowed is expected


def test_not_action_complements() -> None:
    p = identity(allow(Action=None, NotAction=["iam:*", "s3:Delete*"]))
    assert decide([p], action="s3:GetObject").allowed
    assert not decide([p], action="s3:DeleteObject").allowed
    assert not decide([p], action="iam:CreateUser").allowed
    assert decide([p], action="ec2:RunInstances").allowed


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b/c", True),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", False),
        ("arn:aws:s3:::bucket*", "arn:aws:s3:::bucket-2/x", True),
        ("arn:aws:s3:::Bucket/*", "arn:aws:s3:::bucket/x", False),  # resources are case-sensitive
        (
            "arn:aws:dynamodb:*:123456789012:table/Books",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/Books",
            True,
        ),
        (
            "arn:aws:dynamodb:*:123456789012:table/Books",
            "arn:aws:dynamodb:eu:west:123456789012:table/Books",
            False,
        ),
        ("arn:aws:dynamodb:us-east-?:*:table/*", "arn:aws:dynamodb:us-east-2:111122223333:table/T", True),
        ("arn:aws:lambda:*:*:function:*", "arn:aws:lambda:eu-west-1:111122223333:function:f:PROD", True),
        ("arn:aws:iam::*:role/*", "arn:aws:iam::111122223333:role/path/with/slashes", True),
        ("arn:*:s3:::b/k", "arn:aws-cn:s3:::b/k", True),
        ("arn:aws:s3:::*", "arn:aws:s3:::b/k:with:colons", True),  # '*' in the resource part crosses ':'
        ("arn:aws:s3:::b/?", "arn:aws:s3:::b/ab", False),
        ("*", "*", True),
        ("arn:aws:s3:::*", "*", False),
        ("arn:aws:s3:::b/k", "not-an-arn", False),
    ],
)
def test_resource_arn_matching(pattern: str, resource: str, expected: bool) -> None:
    p = identity(allow(Resource=pattern))
    assert decide([p], resource=resource).allowed is expected


def test_not_resource_complements() -> None:
    p = identity(allow(Resource=None, NotResource="arn:aws:s3:::secret/*"))
    assert decide([p], resource="arn:aws:s3:::public/x").allowed
    assert not decide([p], resource="arn:aws:s3:::secret/x").allowed


# --- policy variables -------------------------------------------------------------------------

HOME = "arn:aws:s3:::home/${aws:username}/*"


def test_variable_in_resource() -> None:
    p = identity(allow(Resource=HOME))
    assert decide([p], resource="arn:aws:s3:::home/alice/f", context={"aws:username": "alice"}).allowed
    assert not decide([p], resource="arn:aws:s3:::home/bob/f", context={"aws:username": "alice"}).allowed
    # A missing variable (no default): the Allow does not match.
    assert not decide([p], resource="arn:aws:s3:::home/alice/f").allowed


def test_variables_need_2012_version() -> None:
    old = identity(allow(Resource=HOME), version=None)
    assert not decide([old], resource="arn:aws:s3:::home/alice/f", context={"aws:username": "alice"}).allowed
    assert decide([old], resource="arn:aws:s3:::home/${aws:username}/f").allowed  # taken literally
    assert old.version == "2008-10-17"


@pytest.mark.parametrize("value", ["*", "a*", "?", "??????", "a/*", ".*", "[a-z]", "\\"])
def test_substituted_values_are_escaped(value: str) -> None:
    p = identity(allow(Resource=HOME, Condition={"StringLike": {"s3:prefix": "${aws:username}/*"}}))
    ctx = {"aws:username": value, "s3:prefix": f"{value}/x"}
    assert decide([p], resource=f"arn:aws:s3:::home/{value}/f", context=ctx).allowed  # literal still matches
    other = {"aws:username": value, "s3:prefix": "zzzzzz/x"}
    assert not decide([p], resource="arn:aws:s3:::home/zzzzzz/f", context=other).allowed


def test_escapes_and_defaults() -> None:
    p = identity(allow(Resource="arn:aws:s3:::b/${*}${?}${$}/*"))
    assert decide([p], resource="arn:aws:s3:::b/*?$/x").allowed
    assert not decide([p], resource="arn:aws:s3:::b/abc/x").allowed
    team = identity(allow(Resource="arn:aws:s3:::b/${aws:PrincipalTag/team, 'company-wide'}/*"))
    assert decide([team], resource="arn:aws:s3:::b/company-wide/x").allowed
    assert decide([team], resource="arn:aws:s3:::b/eng/x", context={"aws:principaltag/TEAM": "eng"}).allowed
    assert not decide(
        [team], resource="arn:aws:s3:::b/company-wide/x", context={"aws:PrincipalTag/team": "eng"}
    ).allowed


def test_variable_from_oidc_claim_in_condition() -> None:
    p = identity(allow({"StringEquals": {"s3:prefix": "${token.actions.githubusercontent.com:sub}"}}))
    ctx = {"token.actions.githubusercontent.com:sub": "repo:o/r:ref:refs/heads/main"}
    assert decide([p], context={**ctx, "s3:prefix": "repo:o/r:ref:refs/heads/main"}).allowed
    assert not decide([p], context={**ctx, "s3:prefix": "repo:o/r"}).allowed


def test_multi_valued_variable_does_not_substitute() -> None:
    p = identity(allow(Resource="arn:aws:s3:::b/${x:groups}/*"))
    assert not decide([p], resource="arn:aws:s3:::b/a/k", context={"x:groups": ["a", "b"]}).allowed
    assert decide([p], resource="arn:aws:s3:::b/a/k", context={"x:groups": ["a"]}).allowed


def test_missing_variable_in_deny_fails_closed() -> None:
    p = identity(
        allow(), allow(Effect="Deny", Resource=None, NotResource="arn:aws:s3:::home/${aws:username}/*")
    )
    assert decide([p], resource="arn:aws:s3:::home/alice/k", context={"aws:username": "alice"}).allowed
    d = decide([p], resource="arn:aws:s3:::home/alice/k")
    assert d.kind == "explicitDeny"


# --- principals (trust and resource policies) -------------------------------------------------

ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1"


def trust(principal: Any) -> Any:
    return parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
        },
        kind="trust",
    )


@pytest.mark.parametrize(
    ("principal", "caller", "expected"),
    [
        ("*", None, True),
        ("*", {"AWS": [SESSION]}, True),
        ({"AWS": "*"}, {"AWS": [SESSION]}, True),
        ({"AWS": "*"}, None, False),
        ({"AWS": "*"}, {"Federated": ["accounts.google.com"]}, False),
        ({"AWS": ACCOUNT}, {"AWS": [SESSION]}, True),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, {"AWS": [ROLE]}, True),
        ({"AWS": "arn:aws:iam::111122223333:root"}, {"AWS": [ROLE]}, False),
        ({"AWS": ROLE}, {"AWS": [SESSION, ROLE]}, True),
        ({"AWS": ROLE}, {"AWS": [f"arn:aws:iam::{ACCOUNT}:role/other"]}, False),
        ({"Federated": "accounts.google.com"}, {"Federated": ["accounts.google.com"]}, True),
        ({"Federated": "accounts.google.com"}, {"AWS": ["accounts.google.com"]}, False),
        ({"Service": "ec2.amazonaws.com"}, {"Service": ["ec2.amazonaws.com"]}, True),
        ({"Service": "ec2.amazonaws.com"}, {"Service": ["lambda.amazonaws.com"]}, False),
    ],
)
def test_principal_matching(principal: Any, caller: Any, expected: bool) -> None:
    from gateway.policy import evaluate_trust

    d = evaluate_trust(trust(principal), Request("sts:AssumeRole", ROLE, principal=caller))
    assert d.allowed is expected


def test_request_normalises_context_values() -> None:
    # Claims arrive as JSON scalars; the engine compares their AWS spelling as strings.
    claims: dict[str, Any] = {"A:B": True, "n": 3, "l": ["x", 1], "s": "v"}
    r = Request("S3:GetObject", "*", context=claims)
    assert r.ctx == {"a:b": "true", "n": "3", "l": ("x", "1"), "s": "v"}
    assert r.action_lower == "s3:getobject"
    assert evaluate(r, identity=[identity(allow({"Bool": {"a:b": "true"}}))]).allowed


@pytest.mark.parametrize(
    ("pattern", "key"),
    [
        ("logs/*/*/*/*.gz", "logs/" + "/" * 600 + "x.txt"),
        ("*a*a*a*a*a*a*b", "a" * 2000),
        ("${aws:username}/*/*/*/*/*.gz", "alice/" + "/" * 1000),
    ],
)
def test_many_stars_against_a_long_hostile_key_finish_and_miss(pattern: str, key: str) -> None:
    """Keys and condition values come from requests: a pattern with several stars must not
    backtrack polynomially on them (this took seconds to minutes per request before), in
    Resource and in StringLike alike."""
    p = identity(
        allow(Action="s3:GetObject", Resource=f"arn:aws:s3:::b/{pattern}"),
        allow(Action="s3:ListBucket", Resource="*", Condition={"StringLike": {"s3:prefix": pattern}}),
    )
    ctx = {"aws:username": "alice", "s3:prefix": key}
    assert not decide([p], action="s3:GetObject", resource=f"arn:aws:s3:::b/{key}", context=ctx).allowed
    assert not decide([p], action="s3:ListBucket", resource="arn:aws:s3:::b", context=ctx).allowed
    assert decide(
        [p], action="s3:ListBucket", resource="arn:aws:s3:::b", context={**ctx, "s3:prefix": key + "b"}
    ).allowed is pattern.endswith("b")
