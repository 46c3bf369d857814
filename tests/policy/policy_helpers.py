"""Helpers shared by the policy engine tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.policy import Decision, Policy, Request, evaluate, parse_policy

ACCOUNT = "123456789012"
V12 = "2012-10-17"


def allow(condition: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """An identity-policy statement allowing s3:GetObject on everything, with ``condition`` and ``extra``."""
    stmt: dict[str, Any] = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    if condition is not None:
        stmt["Condition"] = condition
    for k, v in extra.items():  # None removes an element
        if v is None:
            stmt.pop(k, None)
        else:
            stmt[k] = v
    return stmt


def identity(*statements: Mapping[str, Any], version: str | None = V12, name: str = "p") -> Policy:
    doc: dict[str, Any] = {"Statement": list(statements)}
    if version:
        doc["Version"] = version
    return parse_policy(doc, kind="identity", name=name)


def decide(
    policies: Sequence[Policy],
    *,
    action: str = "s3:GetObject",
    resource: str = "arn:aws:s3:::bucket/key",
    context: Mapping[str, str | Sequence[str]] | None = None,
    **kw: Any,
) -> Decision:
    return evaluate(Request(action, resource, context=context or {}), identity=policies, **kw)


def cond_holds(op: str, key: str, values: Any, context: Mapping[str, str | Sequence[str]]) -> bool:
    """Does ``{op: {key: values}}`` hold for ``context``? (Evaluated through a real Allow.)"""
    return decide([identity(allow({op: {key: values}}))], context=context).allowed
