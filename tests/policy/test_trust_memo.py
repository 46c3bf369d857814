"""TrustMemo answers exactly what a fresh evaluate_trust answers (hypothesis).

The memo keys a decision on the policy, action, resource, principal and the values of the context
keys the policy names; these tests evaluate long runs of requests through one memo, each against
a fresh evaluation of the same request, so a key the memo failed to count shows as a difference.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.policy import Request, TrustMemo, evaluate_trust, parse_policy

PROVIDER = "arn:aws:iam::123456789012:oidc-provider/idp.example.com"
ROLE = "arn:aws:iam::123456789012:role/r"
ACTIONS = ["sts:AssumeRoleWithWebIdentity", "sts:TagSession", "sts:AssumeRoleWithSAML", "STS:tagsession"]
# Conditions on keys written in any case, policy variables in values, set operators, Null,
# IfExists, and the time: every way a trust policy reads the context.
CONDITIONS: list[dict[str, Any]] = [
    {"StringEquals": {"idp.example.com:aud": "app"}},
    {"StringLike": {"IDP.example.com:Sub": "repo:acme/*"}},
    {"StringEquals": {"idp.example.com:sub": "${idp.example.com:actor}"}},
    {"StringLike": {"sts:RoleSessionName": "${idp.example.com:sub}*"}},
    {"StringNotEquals": {"idp.example.com:email": ["a@x", "b@x"]}},
    {"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}},
    {"ForAllValues:StringLike": {"aws:tagkeys": ["t*"]}},
    {"Null": {"idp.example.com:email": "true"}},
    {"StringEqualsIfExists": {"idp.example.com:email": "a@x"}},
    {"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}},
    {"Bool": {"aws:SecureTransport": "true"}},
    {"StringEquals": {"aws:RequestTag/team": "${aws:PrincipalTag/team, 'none'}"}},
]
PRINCIPALS: list[Any] = [
    {"Federated": PROVIDER},
    {"Federated": [PROVIDER, "arn:aws:iam::123456789012:saml-provider/corp"]},
    {"AWS": "*"},
    "*",
]
_STATEMENT = st.fixed_dictionaries(
    {
        "Effect": st.sampled_from(["Allow", "Allow", "Deny"]),
        "Principal": st.sampled_from(PRINCIPALS),
        "Action": st.lists(st.sampled_from([*ACTIONS[:3], "sts:*"]), min_size=1, max_size=2),
    },
    optional={"Condition": st.lists(st.sampled_from(CONDITIONS), min_size=1, max_size=3)},
)
_POLICY = st.lists(_STATEMENT, min_size=1, max_size=3)
_VALUES = st.sampled_from(["app", "repo:acme/x", "repo:other/y", "a@x", "team", "t1", "", "true"])
_TIMES = st.sampled_from(["2025-06-01T00:00:00Z", "2026-06-01T00:00:00Z"])
_CONTEXT = st.dictionaries(
    st.sampled_from(
        [
            "idp.example.com:aud",
            "IDP.EXAMPLE.COM:AUD",
            "idp.example.com:sub",
            "Idp.example.com:Sub",
            "idp.example.com:actor",
            "idp.example.com:email",
            "sts:rolesessionname",
            "aws:TagKeys",
            "aws:currenttime",
            "aws:securetransport",
            "aws:requesttag/team",
            "aws:PrincipalTag/team",
            "idp.example.com:unrelated",
        ]
    ),
    _VALUES
    | st.lists(_VALUES, max_size=2)
    | st.sampled_from(["2025-06-01T00:00:00Z", "2026-06-01T00:00:00Z"]),
    max_size=8,
)
_PRINCIPAL = st.sampled_from(
    [{"Federated": [PROVIDER]}, {"Federated": "arn:aws:iam::123456789012:saml-provider/corp"}, {"AWS": ["x"]}]
)
# Requests that differ from one base context in a key or two: what the memo must tell apart.
_CHANGES = st.lists(st.tuples(st.sampled_from(ACTIONS), _PRINCIPAL, _CONTEXT), min_size=1, max_size=12)


def _merged(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for condition in conditions:
        for operator, block in condition.items():
            merged.setdefault(operator, {}).update(block)
    return merged


@settings(max_examples=500, deadline=None)
@given(_POLICY, _CONTEXT, _CHANGES, st.integers(min_value=1, max_value=4))
def test_the_memo_decides_as_a_fresh_evaluation(
    statements: list[dict[str, Any]],
    base: dict[str, Any],
    changes: list[tuple[str, Any, dict[str, Any]]],
    maxsize: int,
) -> None:
    for statement in statements:
        if "Condition" in statement:
            statement["Condition"] = _merged(statement["Condition"])
    policy = parse_policy({"Version": "2012-10-17", "Statement": statements}, kind="trust", name="t")
    memo = TrustMemo(maxsize=maxsize)  # small: evictions happen too
    requests = [(action, principal, {**base, **change}) for action, principal, change in changes]
    for action, principal, context in requests * 2:  # each request again, once remembered
        fresh = evaluate_trust(policy, Request(action, ROLE, principal, context))
        remembered = memo.evaluate(policy, action=action, resource=ROLE, principal=principal, context=context)
        assert remembered == fresh


def test_a_policy_names_the_keys_it_reads() -> None:
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": PROVIDER},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringLike": {"IDP.example.com:Sub": "repo:${idp.example.com:Owner}/*"},
                        "Null": {"aws:TagKeys": "true"},
                    },
                }
            ],
        },
        kind="trust",
        name="t",
    )
    assert policy.compiled.reads == {"aws:tagkeys", "idp.example.com:owner", "idp.example.com:sub"}


def test_an_edited_policy_is_never_answered_from_the_old_one() -> None:
    def trust(audience: str) -> Any:
        return parse_policy(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": PROVIDER},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {"StringEquals": {"idp.example.com:aud": audience}},
                    }
                ],
            },
            kind="trust",
            name="t",
        )

    memo = TrustMemo()
    ask = {
        "action": "sts:AssumeRoleWithWebIdentity",
        "resource": ROLE,
        "principal": {"Federated": [PROVIDER]},
    }
    context = {"idp.example.com:aud": "app"}
    assert memo.evaluate(trust("app"), **ask, context=context).allowed
    assert not memo.evaluate(trust("other"), **ask, context=context).allowed
