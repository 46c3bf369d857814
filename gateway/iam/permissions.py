"""The permissions of a caller: what a signed call may do, decided with the one policy engine.

Every signed call (a request through the reverse proxy, an IAM action on the Query endpoint) is
decided here the same way, whoever signed it:

- a role session: the role's policies (within its boundary) intersected with the session
  policies, compiled once per (role, session policy, policy ARNs);
- an IAM user, signing with its long-term key or with its own session (``GetSessionToken``): its
  own inline and attached policies plus each of its groups', within its permissions boundary,
  compiled once per user;
- a federated user (``GetFederationToken``): its user's policies, as above, intersected with the
  session policies it was given (none given: nothing allowed);

both cached by the catalog snapshot; the global condition keys from
:func:`gateway.context.global_context` with the principal's current tags; and the caller's
principal (``assumed-role/NAME/SESSION`` and the role ARN, or the user's ARN). Pure: callers pass
the :class:`~gateway.iam.catalog.CatalogSnapshot` they took for the request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gateway.context import Transport, global_context
from gateway.credentials.claims import FEDERATED_USER, USER_SESSION
from gateway.iam.caller import Caller
from gateway.iam.catalog import CatalogSnapshot
from gateway.policy import Decision, PolicySet, Request

__all__ = [
    "Check",
    "ContextValue",
    "decide",
    "denied_message",
    "policy_set",
    "principal",
    "principal_tags",
    "session_context",
]

ContextValue = str | Sequence[str]


@dataclass(frozen=True, slots=True)
class Check:
    """One authorization question: ``action`` on ``resource`` with these extra condition keys."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


def principal(caller: Caller) -> dict[str, list[str]]:
    """The principal a resource policy would name for this caller."""
    if caller.role_session is not None:
        return {"AWS": [caller.arn, caller.principal_arn]}
    return {"AWS": [caller.arn]}


def principal_tags(snapshot: CatalogSnapshot, caller: Caller) -> Mapping[str, str]:
    """The tags of the session's role, or of the user, as the catalog has them now (none for a
    principal that is gone, nor for a federated user, whose only tags are its session tags)."""
    claims = caller.session
    if claims is not None and claims.principal == FEDERATED_USER:
        return {}
    if caller.role_session is not None:
        role = snapshot.role(caller.principal_arn)
        return role.tags if role is not None else {}
    user = snapshot.user(caller.arn)
    return user.tags if user is not None else {}


def policy_set(snapshot: CatalogSnapshot, caller: Caller) -> PolicySet:
    """The compiled policies governing ``caller`` (cached by the snapshot)."""
    claims = caller.session
    if claims is None or claims.principal == USER_SESSION:
        return snapshot.user_policy_set(caller.arn)
    if claims.principal == FEDERATED_USER:
        return snapshot.federated_policy_set(claims.user_arn, claims.session_policy, claims.policy_arns)
    return snapshot.policy_set(claims.role_arn, claims.session_policy, claims.policy_arns)


def session_context(
    snapshot: CatalogSnapshot, caller: Caller, transport: Transport, *, region: str
) -> dict[str, ContextValue]:
    """The global condition keys of a request ``caller`` makes over ``transport``."""
    return global_context(caller, transport, region=region, principal_tags=principal_tags(snapshot, caller))


def decide(
    snapshot: CatalogSnapshot,
    caller: Caller,
    checks: Sequence[Check],
    context: Mapping[str, ContextValue],
) -> Decision:
    """Every check must be allowed: the first denial, else the last allowance, is returned."""
    policies = policy_set(snapshot, caller)
    who = principal(caller)
    decision: Decision | None = None
    for check in checks:
        merged = {**context, **check.context} if check.context else context
        request = Request(action=check.action, resource=check.resource, principal=who, context=merged)
        decision = policies.decide(request)
        if not decision.allowed:
            return decision
    if decision is None:
        raise ValueError("no checks to decide")
    return decision


def denied_message(caller: Caller, decision: Decision) -> str:
    """AccessDenied's message, as AWS words it: who, what, on which resource, and why."""
    reason = {
        "explicitDeny": f"with an explicit deny in a {decision.denied_by} policy",
        "implicitDeny": f"because no {decision.denied_by}-based policy allows the {decision.action} action",
    }.get(decision.kind, "")
    return (
        f"User: {caller.arn} is not authorized to perform: {decision.action} on resource: "
        f"{decision.resource} {reason}"
    ).strip()
