"""The permissions of a session: what a signed call may do, decided with the one policy engine.

Every signed call (a request through the reverse proxy, an IAM action on the Query endpoint) is
decided here the same way: the session's role policies intersected with its session policies,
compiled once per (role, session policy, policy ARNs) and cached by the catalog snapshot; the
global condition keys from :func:`gateway.context.global_context` with the role's current tags;
and the session's principal (``assumed-role/NAME/SESSION`` and the role ARN). Pure: callers pass
the :class:`~gateway.iam.catalog.CatalogSnapshot` they took for the request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gateway.context import Transport, global_context
from gateway.credentials import SessionClaims
from gateway.iam.catalog import CatalogSnapshot
from gateway.policy import Decision, PolicySet, Request

__all__ = ["Check", "ContextValue", "decide", "policy_set", "principal", "role_tags", "session_context"]

ContextValue = str | Sequence[str]


@dataclass(frozen=True, slots=True)
class Check:
    """One authorization question: ``action`` on ``resource`` with these extra condition keys."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


def principal(claims: SessionClaims) -> dict[str, list[str]]:
    """The principal a resource policy would name for this session."""
    return {"AWS": [claims.assumed_role_arn, claims.role_arn]}


def role_tags(snapshot: CatalogSnapshot, claims: SessionClaims) -> Mapping[str, str]:
    """The tags of the session's role as the catalog has them now (none for a role that is gone)."""
    role = snapshot.role(claims.role_arn)
    return role.tags if role is not None else {}


def policy_set(snapshot: CatalogSnapshot, claims: SessionClaims) -> PolicySet:
    """The compiled policies governing ``claims``' session (cached by the snapshot)."""
    return snapshot.policy_set(claims.role_arn, claims.session_policy, claims.policy_arns)


def session_context(
    snapshot: CatalogSnapshot, claims: SessionClaims, transport: Transport, *, region: str
) -> dict[str, ContextValue]:
    """The global condition keys of a request ``claims``' session makes over ``transport``."""
    return global_context(claims, transport, region=region, role_tags=role_tags(snapshot, claims))


def decide(
    snapshot: CatalogSnapshot,
    claims: SessionClaims,
    checks: Sequence[Check],
    context: Mapping[str, ContextValue],
) -> Decision:
    """Every check must be allowed: the first denial, else the last allowance, is returned."""
    policies = policy_set(snapshot, claims)
    who = principal(claims)
    decision: Decision | None = None
    for check in checks:
        request = Request(
            action=check.action, resource=check.resource, principal=who, context={**context, **check.context}
        )
        decision = policies.decide(request)
        if not decision.allowed:
            return decision
    if decision is None:
        raise ValueError("no checks to decide")
    return decision
