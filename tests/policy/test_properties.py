"""Properties of evaluation that must hold for every policy set (hypothesis)."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.policy import Policy, Request, evaluate, parse_policy

ACTIONS = ["s3:GetObject", "s3:Get*", "s3:*", "*", "iam:*", "s3:?utObject", "S3:getobject"]
RESOURCES = [
    "*",
    "arn:aws:s3:::bucket/*",
    "arn:aws:s3:::bucket/key",
    "arn:aws:s3:::other/*",
    "arn:aws:s3:::b*",
    "arn:aws:s3:::${aws:username}/*",
    "arn:aws:s3:::${aws:PrincipalTag/team}/*",  # never in the contexts below: never resolves
]
CONDITIONS: list[dict[str, Any]] = [
    {"StringEquals": {"aws:username": "alice"}},
    {"StringNotEquals": {"aws:username": ["alice", "bob"]}},
    {"StringLike": {"aws:username": "a*"}},
    {"Bool": {"aws:SecureTransport": "true"}},
    {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}},
    {"ForAnyValue:StringEquals": {"x:groups": ["eng"]}},
    {"ForAllValues:StringEquals": {"x:groups": ["eng", "ops"]}},
    {"Null": {"aws:username": "false"}},
    {"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}},
    {"ForAnyValue:StringEqualsIfExists": {"x:groups": ["eng"]}},
    {"ForAllValues:StringEqualsIfExists": {"x:groups": ["eng"]}},
    {"ArnLike": {"aws:SourceArn": ["arn:aws:sns:*:alerts", "arn:aws:sns:*:*:alerts"]}},
]
REQ_ACTIONS = ["s3:GetObject", "s3:PutObject", "iam:CreateUser", "ec2:RunInstances"]
REQ_RESOURCES = ["arn:aws:s3:::bucket/key", "arn:aws:s3:::other/x", "arn:aws:s3:::alice/k", "*"]
CONTEXTS: list[dict[str, Any]] = [
    {},
    {"aws:username": "alice", "aws:SecureTransport": "true"},
    {"aws:username": "bob", "aws:MultiFactorAuthAge": "10", "x:groups": ["eng"]},
    {"aws:username": "*", "aws:SourceIp": "10.1.2.3", "x:groups": ["eng", "sales"]},
    {"aws:MultiFactorAuthAge": "oops", "aws:SourceIp": "bad"},
    {"aws:SourceArn": "arn:aws:sns:eu-west-1:123456789012:alerts", "x:groups": []},
]


# Strategies are built once: constructing them per draw costs far more than evaluating policies.
_EFFECTS = st.sampled_from(["Allow", "Deny"])
_ACTION_LISTS = st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=3)
_RESOURCE_LISTS = st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=2)
_CONDITION_LISTS = st.lists(st.sampled_from(CONDITIONS), max_size=2)
_NEGATE = st.sampled_from([False, False, False, True])


@st.composite
def statements(draw: st.DrawFn, effect: str | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {"Effect": effect or draw(_EFFECTS)}
    s["NotAction" if draw(_NEGATE) else "Action"] = draw(_ACTION_LISTS)
    s["NotResource" if draw(_NEGATE) else "Resource"] = draw(_RESOURCE_LISTS)
    conds = draw(_CONDITION_LISTS)
    if conds:
        merged: dict[str, Any] = {}
        for c in conds:
            for op, block in c.items():
                merged.setdefault(op, {}).update(block)
        s["Condition"] = merged
    return s


def doc(stmts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": stmts}


def parse_all(docs: list[list[dict[str, Any]]], kind: Any = "identity") -> list[Policy]:
    return [parse_policy(doc(d), kind=kind, name=f"{kind}{i}") for i, d in enumerate(docs)]


ANY_STATEMENT = statements()
ALLOW = statements("Allow")
DENY = statements("Deny")
policy_docs = st.lists(st.lists(ANY_STATEMENT, min_size=1, max_size=4), max_size=3)
requests = st.builds(
    lambda a, r, c: Request(a, r, context=c),
    st.sampled_from(REQ_ACTIONS),
    st.sampled_from(REQ_RESOURCES),
    st.sampled_from(CONTEXTS),
)
FAST = settings(max_examples=100, deadline=None)


@FAST
@given(policy_docs, st.lists(ALLOW, min_size=1, max_size=3), requests)
def test_explicit_deny_is_never_overridden(
    docs: list[Any], extra_allows: list[Any], request: Request
) -> None:
    deny = {"Effect": "Deny", "Action": request.action, "Resource": "*"}
    identity = parse_all([*docs, [*extra_allows, deny]])
    d = evaluate(
        request,
        identity=identity,
        boundary=parse_all([extra_allows], "boundary"),
        session=parse_all([extra_allows], "session"),
    )
    assert not d.allowed and d.kind == "explicitDeny"


@FAST
@given(policy_docs, ALLOW, st.integers(0, 3), requests)
def test_adding_an_allow_never_removes_access(
    docs: list[Any], stmt: Any, where: int, request: Request
) -> None:
    before = evaluate(request, identity=parse_all(docs))
    grown = [list(d) for d in docs] or [[]]
    grown[where % len(grown)].append(stmt)
    after = evaluate(request, identity=parse_all(grown))
    assert after.allowed or not before.allowed


@FAST
@given(policy_docs, DENY, st.integers(0, 3), requests)
def test_adding_a_deny_never_adds_access(docs: list[Any], stmt: Any, where: int, request: Request) -> None:
    before = evaluate(request, identity=parse_all(docs))
    grown = [list(d) for d in docs] or [[]]
    grown[where % len(grown)].append(stmt)
    after = evaluate(request, identity=parse_all(grown))
    assert before.allowed or not after.allowed


@FAST
@given(policy_docs, policy_docs, requests)
def test_session_policy_never_widens(docs: list[Any], session_docs: list[Any], request: Request) -> None:
    without = evaluate(request, identity=parse_all(docs))
    with_session = evaluate(request, identity=parse_all(docs), session=parse_all(session_docs, "session"))
    assert without.allowed or not with_session.allowed


NAME = st.text(alphabet="ab*?/.$[]", min_size=1, max_size=6)


@FAST
@given(NAME, NAME)
def test_substituted_wildcards_match_only_the_literal(username: str, other: str) -> None:
    p = parse_policy(
        doc(
            [
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::h/${aws:username}/k",
                    "Condition": {"StringLike": {"s3:prefix": "${aws:username}"}},
                }
            ]
        )
    )
    ctx = {"aws:username": username, "s3:prefix": other}
    d = evaluate(Request("s3:GetObject", f"arn:aws:s3:::h/{other}/k", context=ctx), identity=[p])
    assert d.allowed is (other == username)


@FAST
@given(st.text(alphabet="ab/*?", max_size=8), st.text(alphabet="ab/", max_size=10))
def test_glob_agrees_with_reference(pattern: str, value: str) -> None:
    """StringLike agrees with a straightforward reference implementation of * and ?."""
    ref = re.fullmatch(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), value, re.DOTALL
    )
    p = parse_policy(
        doc(
            [
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": "*",
                    "Condition": {"StringLike": {"k:v": pattern}},
                }
            ]
        )
    )
    assert evaluate(Request("s3:GetObject", "*", context={"k:v": value}), identity=[p]).allowed is (
        ref is not None
    )


def _naive_arn(pattern: str, value: str) -> str:
    """The plain reading of an ARN glob: stars stay inside the five head segments and cross
    everything after; ``${k:v}`` stands for ``value``, literally."""
    out, colons = [], 0
    for n, piece in enumerate(pattern.split("${k:v}")):
        if n:
            out.append(re.escape(value))
        for c in piece:
            colons += c == ":"
            head = colons < 5
            if c == "*":
                out.append("[^:]*" if head else ".*")
            elif c == "?":
                out.append("[^:]" if head else ".")
            else:
                out.append(re.escape(c))
    return "".join(out)


@FAST
@given(
    st.text(alphabet="ab/:*?", max_size=8),
    st.text(alphabet="ab/:*", max_size=10),
    st.sampled_from(["", "${k:v}", "*${k:v}?*"]),
    st.sampled_from(["a", "a*b", "/"]),
)
def test_resource_glob_agrees_with_reference(tail: str, key: str, var: str, value: str) -> None:
    """Resource matching, with and without a policy variable, agrees with the plain regex reading of
    the pattern, whatever the linear-time form the engine compiles it to."""
    pattern = f"arn:aws:s3:::{tail}{var}"
    resource = f"arn:aws:s3:::{key}"
    ref = re.fullmatch(_naive_arn(pattern, value), resource, re.DOTALL)
    p = parse_policy(doc([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": pattern}]))
    request = Request("s3:GetObject", resource, context={"k:v": value})
    assert evaluate(request, identity=[p]).allowed is (ref is not None)
