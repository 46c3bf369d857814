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
from typing import final

from gateway.context import Transport, caller_keys, global_context, request_keys
from gateway.credentials.claims import FEDERATED_USER, USER_SESSION
from gateway.iam.caller import Caller
from gateway.iam.catalog import CatalogSnapshot
from gateway.policy import Decision, PolicySet, Request
from gateway.policy.decisions import DecisionCache
from gateway.policy.model import normalise_context

__all__ = [
    "CallerView",
    "CallerViews",
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


Ctx = dict[str, str | tuple[str, ...]]


@final
class CallerView:
    """One caller under one catalog snapshot: what all its requests share, worked out once.

    Its policy set, its principal, the condition keys that stay the same from request to request
    (:func:`gateway.context.caller_keys`, with the principal's tags as ``snapshot`` has them), all
    normalised as the engine reads them, and its decisions remembered
    (:class:`~gateway.policy.decisions.DecisionCache`). :meth:`context` and :meth:`decide` give
    exactly what :func:`session_context` and :func:`decide` would (a property test holds them to
    it); only the work is done once. Nothing here checks the credentials: that stays per request.
    """

    __slots__ = ("_constant", "_decisions", "caller", "snapshot")

    def __init__(self, snapshot: CatalogSnapshot, caller: Caller) -> None:
        self.snapshot = snapshot
        self.caller = caller
        self._constant = normalise_context(caller_keys(caller, principal_tags(snapshot, caller)))
        self._decisions = DecisionCache(policy_set(snapshot, caller), principal(caller))

    def context(self, transport: Transport, *, region: str) -> Ctx:
        """The normalised global condition keys of a request over ``transport``."""
        ctx = self._constant.copy()
        for key, value in request_keys(self.caller, transport, region=region).items():
            ctx[key.lower()] = value
        return ctx

    def decide(self, checks: Sequence[Check], ctx: Ctx) -> Decision:
        """:func:`decide` with a context :meth:`context` made (plus normalised request keys)."""
        decision: Decision | None = None
        decisions = self._decisions
        for check in checks:
            merged = {**ctx, **normalise_context(check.context)} if check.context else ctx
            decision = decisions.decide(check.action, check.resource, merged)
            if not decision.allowed:
                return decision
        if decision is None:
            raise ValueError("no checks to decide")
        return decision


@final
class CallerViews:
    """The :class:`CallerView` of each recent caller, bounded; a new snapshot makes new views.

    A session is known by its claims object (the credential service hands out one per token while
    it stays cached; the view holds it, so its identity cannot be reused by another), a long-term
    key by its id, checked against the whole caller.
    """

    __slots__ = ("_max", "_views")

    def __init__(self, max_entries: int = 4096) -> None:
        self._views: dict[object, CallerView] = {}
        self._max = max_entries

    def view(self, snapshot: CatalogSnapshot, caller: Caller) -> CallerView:
        """The view of ``caller`` under ``snapshot``."""
        claims = caller.session
        key: object = id(claims) if claims is not None else caller.access_key_id
        view = self._views.get(key)
        if view is not None and view.snapshot is snapshot:
            known = view.caller
            if (known.session is claims) if claims is not None else (known == caller):
                return view
        view = CallerView(snapshot, caller)
        views = self._views
        if len(views) >= self._max and key not in views:
            views.clear()
        views[key] = view
        return view
