"""Policy simulation: the decisions IAM's ``SimulateCustomPolicy``/``SimulatePrincipalPolicy`` return.

A :class:`Simulation` holds the policies (each a :class:`SourcePolicy` remembering where its
statements sit in its text) and decides every action on every resource with the one policy engine,
so the simulator can never disagree with enforcement. Each :class:`EvaluationResult` carries the
engine's :class:`~gateway.policy.Decision` (for :meth:`~gateway.policy.Decision.explain`) and the
fields of IAM's ``EvaluationResult``: the statements that decided, the condition keys the relevant
statements use that the context did not supply (``MissingContextValues``), whether the permissions
boundary allows the action, and, across accounts, the identity and resource policies' separate
verdicts (``EvalDecisionDetails``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.iam.positions import Position, StatementSpan, statement_spans
from gateway.policy import Decision, Policy, PolicyKind, PolicySet, Request, parse_policy
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.model import DecisionKind
from gateway.policy.wildcard import Indeterminate

__all__ = [
    "EvaluationResult",
    "Simulation",
    "SourcePolicy",
    "SourcePolicyType",
    "StatementRef",
    "account_of",
]

SourcePolicyType = Literal["user", "group", "role", "aws-managed", "user-managed", "resource", "none"]

_ACCOUNT_RE = re.compile(r"(?:^|:)(\d{12})(?::|$)")
_VAR_RE = re.compile(r"\$\{\s*([^\s,'${}][^,'${}]*?)\s*(,\s*'[^']*'\s*)?\}")
# EvalDecisionDetails keys, as IAM names the two policy types it reports separately.
IDENTITY_SOURCE = "IAM Policy"
RESOURCE_SOURCE = "Resource Policy"


@dataclass(frozen=True, slots=True)
class SourcePolicy:
    """A policy taking part in a simulation, with its ``SourcePolicyId`` and statement positions."""

    id: str
    type: SourcePolicyType | None
    policy: Policy
    spans: tuple[StatementSpan, ...] = ()

    @classmethod
    def parse(
        cls, source: str | Mapping[str, Any], *, id: str, type: SourcePolicyType | None, kind: PolicyKind
    ) -> SourcePolicy:
        """Validate ``source`` as a ``kind`` policy; MalformedPolicyDocument if it is not one.

        ``type`` is ``None`` for documents passed in the request, which IAM reports by id only.

        Positions are known only for JSON text (a decoded mapping has none).
        """
        policy = parse_policy(source, kind=kind, name=id)
        spans = statement_spans(source) if isinstance(source, str) else ()
        if len(spans) != len(policy.statements):
            spans = ()
        return cls(id, type, policy, spans)


@dataclass(frozen=True, slots=True)
class StatementRef:
    """A statement that decided, as IAM's ``MatchedStatements`` names it."""

    source_id: str
    source_type: SourcePolicyType | None
    index: int
    start: Position | None = None
    end: Position | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"SourcePolicyId": self.source_id}
        if self.source_type is not None:
            out["SourcePolicyType"] = self.source_type
        if self.start is not None and self.end is not None:
            out["StartPosition"] = {"Line": self.start.line, "Column": self.start.column}
            out["EndPosition"] = {"Line": self.end.line, "Column": self.end.column}
        return out


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """The decision on one action and resource, with everything IAM reports about it."""

    action: str
    resource: str
    decision: Decision
    matched: tuple[StatementRef, ...]
    missing_context: tuple[str, ...]
    boundary_allows: bool | None = None
    details: Mapping[str, DecisionKind] | None = None

    @property
    def eval_decision(self) -> DecisionKind:
        """``allowed``, ``explicitDeny`` or ``implicitDeny``."""
        return self.decision.kind

    def to_wire(self) -> dict[str, Any]:
        """The ``EvaluationResult`` structure as botocore parses it (lists are Python lists)."""
        out: dict[str, Any] = {
            "EvalActionName": self.action,
            "EvalResourceName": self.resource,
            "EvalDecision": self.eval_decision,
            "MatchedStatements": [m.to_wire() for m in self.matched],
            "MissingContextValues": list(self.missing_context),
        }
        if self.boundary_allows is not None:
            out["PermissionsBoundaryDecisionDetail"] = {"AllowedByPermissionsBoundary": self.boundary_allows}
        if self.details is not None:
            out["EvalDecisionDetails"] = dict(self.details)
        if self.resource != "*":
            # IAM puts per-resource findings here when resources are named; one resource per result.
            specific: dict[str, Any] = {
                "EvalResourceName": self.resource,
                "EvalResourceDecision": self.eval_decision,
                "MatchedStatements": out["MatchedStatements"],
                "MissingContextValues": out["MissingContextValues"],
            }
            if self.details is not None:
                specific["EvalDecisionDetails"] = dict(self.details)
            if self.boundary_allows is not None:
                specific["PermissionsBoundaryDecisionDetail"] = out["PermissionsBoundaryDecisionDetail"]
            out["ResourceSpecificResults"] = [specific]
        return out


def account_of(arn_or_account: str | None) -> str | None:
    """The 12-digit account of an ARN (or of a bare account id)."""
    if not arn_or_account:
        return None
    if arn_or_account.isdigit() and len(arn_or_account) == 12:
        return arn_or_account
    parts = arn_or_account.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn":
        m = _ACCOUNT_RE.search(parts[4])
        return m.group(1) if m else None
    return None


def _alone(policies: Sequence[CompiledPolicy], request: Request) -> DecisionKind:
    """What one policy type says on its own: a matching Deny, else a matching Allow, else nothing."""
    action = request.action_lower
    allowed = False
    for cp in policies:
        denies, allows = cp.candidates(action)
        if any(s.grade(request) for s in denies):
            return "explicitDeny"
        allowed = allowed or any(s.grade(request) for s in allows)
    return "allowed" if allowed else "implicitDeny"


def _keys_of(text: str, policy: Policy) -> list[str]:
    """The keys, as spelled, of the policy variables in ``text`` that have no default (variables
    exist only from version 2012-10-17)."""
    if policy.version != "2012-10-17" or "${" not in text:
        return []
    return [
        m.group(1) for m in _VAR_RE.finditer(text) if m.group(2) is None and m.group(1) not in ("*", "?", "$")
    ]


@dataclass(frozen=True, slots=True)
class Simulation:
    """Policies to simulate, built once, run on any number of actions and resources.

    Attributes:
        identity: the principal's permission policies (``PolicyInputList``, role policies).
        boundary: permissions boundary policies (``None``: no boundary).
        session: session policies (``None``: none; only the CLI has them).
        resource_policy: the resource's policy, if any.
        caller_arn: the simulated caller (the principal a resource policy is matched against).
        resource_owner: the account owning the resources (an ARN or account id); defaults to the
            caller's account, making the simulation same-account.
    """

    identity: Sequence[SourcePolicy]
    boundary: Sequence[SourcePolicy] | None = None
    session: Sequence[SourcePolicy] | None = None
    resource_policy: SourcePolicy | None = None
    caller_arn: str | None = None
    resource_owner: str | None = None
    _set: PolicySet = field(init=False, repr=False, compare=False)
    _sources: Mapping[str, SourcePolicy] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        every = [*self.identity, *(self.boundary or ()), *(self.session or ())]
        if self.resource_policy is not None:
            every.append(self.resource_policy)
        sources: dict[str, SourcePolicy] = {}
        for sp in every:
            if sp.id in sources:
                raise ValueError(f"two policies share the SourcePolicyId {sp.id!r}")
            sources[sp.id] = sp
        object.__setattr__(self, "_sources", sources)
        object.__setattr__(
            self,
            "_set",
            PolicySet(
                identity=[p.policy for p in self.identity],
                boundary=[p.policy for p in self.boundary] if self.boundary is not None else None,
                session=[p.policy for p in self.session] if self.session is not None else None,
                resource=self.resource_policy.policy if self.resource_policy is not None else None,
            ),
        )

    @property
    def same_account(self) -> bool:
        """Whether the resources belong to the caller's account (no ResourceOwner: yes)."""
        owner = account_of(self.resource_owner)
        caller = account_of(self.caller_arn)
        return owner is None or caller is None or owner == caller

    def run(
        self,
        actions: Sequence[str],
        resources: Sequence[str] = ("*",),
        context: Mapping[str, str | Sequence[str]] | None = None,
    ) -> list[EvaluationResult]:
        """Decide every action on every resource, actions outermost (IAM's order)."""
        principal = {"AWS": [self.caller_arn]} if self.caller_arn else None
        ctx = dict(context or {})
        return [
            self.decide(Request(action, resource, principal=principal, context=ctx))
            for action in actions
            for resource in (resources or ("*",))
        ]

    def decide(self, request: Request) -> EvaluationResult:
        """One :class:`EvaluationResult` for ``request``."""
        same = self.same_account
        decision = self._set.decide(request, same_account=same)
        matched = tuple(self._ref(m.policy, m.index) for m in decision.matched)
        boundary_allows = None
        if self._set.boundary is not None:
            boundary_allows = _alone(self._set.boundary, request) == "allowed"
        details: dict[str, DecisionKind] | None = None
        if not same:
            details = {IDENTITY_SOURCE: _alone(self._set.identity, request)}
            if self._set.resource is not None:
                details[RESOURCE_SOURCE] = _alone(self._set.resource, request)
        elif request.resource != "*":
            details = {}  # IAM: present but empty for a same-account simulation naming a resource
        return EvaluationResult(
            action=request.action,
            resource=request.resource,
            decision=decision,
            matched=matched,
            missing_context=self._missing(request),
            boundary_allows=boundary_allows,
            details=details,
        )

    def _ref(self, policy_id: str, index: int) -> StatementRef:
        sp = self._sources[policy_id]
        span = sp.spans[index] if index < len(sp.spans) else None
        return StatementRef(sp.id, sp.type, index, span.start if span else None, span.end if span else None)

    def _missing(self, request: Request) -> tuple[str, ...]:
        """Condition keys (and policy variables) of the statements that apply to the action and
        resource, that the request context lacks."""
        ctx = request.ctx
        found: dict[str, str] = {}
        for sp in self._sources.values():
            denies, allows = sp.policy.compiled.candidates(request.action_lower)
            for cs in (*denies, *allows):
                stmt = sp.policy.statements[cs.matched.index]
                names: list[str] = []
                if cs.resource is not None:
                    try:
                        if not cs.resource(request.resource, ctx):
                            continue
                    except Indeterminate:
                        pass  # a variable without a value: reported below
                    for pattern in (*(stmt.resources or ()), *(stmt.not_resources or ())):
                        names.extend(_keys_of(pattern, sp.policy))
                for clause in stmt.conditions:
                    names.append(clause.key)
                    for value in clause.values:
                        names.extend(_keys_of(value, sp.policy))
                for name in names:
                    low = name.lower()
                    if low not in ctx and low not in found:
                        found[low] = name
        return tuple(sorted(found.values(), key=str.lower))
