"""Differential test: the simulator against a brute-force reference evaluator written from the AWS
documentation, on hypothesis-generated policies.

The subset where the reference is exactly right (and which it therefore covers): identity
policies only, one principal, any number of policies and statements; ``Action``/``NotAction``
globs (``*``, ``?``, case-insensitive); ``Resource``/``NotResource`` ARN globs (matched segment by
segment for the first five ``:``-separated parts, the resource part taking the rest); conditions
``StringEquals``, ``StringNotEquals`` and ``StringLike`` on single-valued keys, present or not.
Rules (AWS "Policy evaluation logic"): a matching Deny anywhere gives ``explicitDeny``; otherwise a
matching Allow gives ``allowed``; otherwise ``implicitDeny``. The reference shares no code with
the engine: its glob matcher is a dynamic program, not a regular expression.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.iam import Simulation, SourcePolicy


def glob(pattern: str, text: str) -> bool:
    """``*`` any run, ``?`` one character; everything else literal."""

    @cache
    def m(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(text)
        if pattern[i] == "*":
            return m(i + 1, j) or (j < len(text) and m(i, j + 1))
        return j < len(text) and (pattern[i] == "?" or pattern[i] == text[j]) and m(i + 1, j + 1)

    return m(0, 0)


def arn_glob(pattern: str, arn: str) -> bool:
    if pattern == "*":
        return True
    p, a = pattern.split(":", 5), arn.split(":", 5)
    return len(p) == len(a) == 6 and all(glob(x, y) for x, y in zip(p, a, strict=True))


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def statement_applies(stmt: dict[str, Any], action: str, resource: str, ctx: dict[str, str]) -> bool:
    if "Action" in stmt:
        if not any(glob(a.lower(), action.lower()) for a in _listed(stmt["Action"])):
            return False
    elif any(glob(a.lower(), action.lower()) for a in _listed(stmt["NotAction"])):
        return False
    if "Resource" in stmt:
        if not any(arn_glob(r, resource) for r in _listed(stmt["Resource"])):
            return False
    elif any(arn_glob(r, resource) for r in _listed(stmt["NotResource"])):
        return False
    for op, block in stmt.get("Condition", {}).items():
        for key, values in block.items():
            value = ctx.get(key)
            vals = _listed(values)
            if op == "StringEquals":
                ok = value is not None and value in vals
            elif op == "StringNotEquals":
                ok = value is None or value not in vals
            else:  # StringLike
                ok = value is not None and any(glob(v, value) for v in vals)
            if not ok:
                return False
    return True


def reference(policies: list[dict[str, Any]], action: str, resource: str, ctx: dict[str, str]) -> str:
    stmts = [s for p in policies for s in p["Statement"]]
    if any(s["Effect"] == "Deny" and statement_applies(s, action, resource, ctx) for s in stmts):
        return "explicitDeny"
    if any(s["Effect"] == "Allow" and statement_applies(s, action, resource, ctx) for s in stmts):
        return "allowed"
    return "implicitDeny"


ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "ec2:RunInstances", "ec2:GetConsoleOutput"]
ACTION_PATTERNS = [
    "*",
    "s3:*",
    "s3:Get*",
    "s3:?utObject",
    "S3:getobject",
    "ec2:*Instances",
    "ec2:Get*",
    "*:Get*",
]
RESOURCES = [
    "arn:aws:s3:::b/k",
    "arn:aws:s3:::b/x/y",
    "arn:aws:s3:::c",
    "arn:aws:ec2:eu-west-1:123456789012:instance/i-1",
]
RESOURCE_PATTERNS = [
    "*",
    "arn:aws:s3:::b/*",
    "arn:aws:s3:::*",
    "arn:aws:s3:::?",
    "arn:aws:*:*:*:*",
    "arn:aws:ec2:*:123456789012:instance/*",
    "arn:aws:ec2:eu-*:*:*",
    "arn:aws:s3:::b/*/y",
]
KEYS = ["k:one", "k:two"]
VALUES = ["a", "b", "ab"]

conditions = st.dictionaries(
    st.sampled_from(["StringEquals", "StringNotEquals", "StringLike"]),
    st.dictionaries(
        st.sampled_from(KEYS),
        st.one_of(
            st.sampled_from([*VALUES, "a*", "?b"]),
            st.lists(st.sampled_from([*VALUES, "*"]), min_size=1, max_size=2),
        ),
        min_size=1,
        max_size=2,
    ),
    max_size=2,
)


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    stmt: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Allow", "Deny"]))}
    actions = draw(st.lists(st.sampled_from(ACTION_PATTERNS + ACTIONS), min_size=1, max_size=3))
    stmt["NotAction" if draw(st.integers(0, 5)) == 0 else "Action"] = actions
    resources = draw(st.lists(st.sampled_from(RESOURCE_PATTERNS + RESOURCES), min_size=1, max_size=2))
    stmt["NotResource" if draw(st.integers(0, 5)) == 0 else "Resource"] = resources
    cond = draw(conditions)
    if cond:
        stmt["Condition"] = cond
    return stmt


policies = st.lists(
    st.builds(
        lambda s: {"Version": "2012-10-17", "Statement": s}, st.lists(statements(), min_size=1, max_size=4)
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(
    policies,
    st.sampled_from(ACTIONS),
    st.sampled_from(RESOURCES),
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES)),
)
def test_simulator_agrees_with_reference(
    docs: list[dict[str, Any]], action: str, resource: str, ctx: dict[str, str]
) -> None:
    sources = [
        SourcePolicy.parse(json.dumps(d), id=f"PolicyInputList.{i}", type=None, kind="identity")
        for i, d in enumerate(docs, 1)
    ]
    (result,) = Simulation(identity=sources).run([action], [resource], ctx)
    assert result.eval_decision == reference(docs, action, resource, ctx)
    # The matched statements say why: the deciding Deny, or an Allow, never one that does not apply.
    for ref in result.matched:
        doc = docs[int(ref.source_id.rsplit(".", 1)[1]) - 1]
        stmt = doc["Statement"][ref.index]
        assert statement_applies(stmt, action, resource, ctx)
        assert (stmt["Effect"] == "Deny") == (result.eval_decision == "explicitDeny")


def test_reference_glob_sanity() -> None:
    # The reference itself, on the documented cases it must get right.
    assert glob("s3:get*", "s3:getobject") and not glob("s3:?et", "s3:get2")
    assert arn_glob("arn:aws:s3:::b/*", "arn:aws:s3:::b/x:y")  # "*" crosses ":" in the resource part
    assert not arn_glob("arn:aws:*:::x", "arn:aws:s3:x:::x")  # but not in the service segment
