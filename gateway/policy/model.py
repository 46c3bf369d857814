"""The policy engine's value types: requests, decisions and the parsed policy document.

Everything here is immutable. A :class:`Policy` is the validated document (what the simulator
and the IAM API report positions in); its ``compiled`` form holds the matchers that evaluation
runs, so deciding never parses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from gateway.policy.compiled import CompiledPolicy

__all__ = [
    "ConditionClause",
    "Decision",
    "DecisionKind",
    "Effect",
    "MatchedStatement",
    "Policy",
    "PolicyKind",
    "PrincipalSpec",
    "Request",
    "Statement",
    "normalise_context",
    "normalise_principals",
    "prepared_request",
]

PolicyKind = Literal["identity", "resource", "trust", "session", "boundary"]
Effect = Literal["Allow", "Deny"]
DecisionKind = Literal["allowed", "explicitDeny", "implicitDeny"]


def _normalise_value(value: object) -> str | tuple[str, ...]:
    # Claims arrive as str, numbers, booleans or lists of them; conditions compare strings, and
    # JSON's spelling of a boolean is what AWS compares against ("true"/"false").
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return tuple(v for item in value if isinstance(v := _normalise_value(item), str))
    raise TypeError(f"unsupported context value type {type(value).__name__}")


def normalise_context(context: Mapping[str, object]) -> dict[str, str | tuple[str, ...]]:
    """A request context as the matchers read it: lower-cased keys (a later key wins over an
    earlier one that differs only in case), each value a string or a tuple of strings."""
    # Nearly every value is already a string: skip the type dispatch for those.
    return {str(k).lower(): v if type(v) is str else _normalise_value(v) for k, v in context.items()}


@dataclass(frozen=True, slots=True)
class Request:
    """One authorization question: may ``principal`` do ``action`` on ``resource`` in ``context``?

    Attributes:
        action: ``service:Action``, e.g. ``sts:AssumeRoleWithWebIdentity`` (compared case-insensitively).
        resource: the resource ARN, or ``*`` for actions that name no resource.
        principal: who is asking, by principal type: ``{"Federated": [provider_arn]}`` or
            ``{"AWS": [session_arn, role_arn]}``. Pass every ARN the caller is known by (for an
            assumed-role session both the session ARN and the role ARN): a resource policy that
            names the session ARN grants more directly than one that names the role. ``None`` is
            an anonymous caller, matched only by ``"Principal": "*"``.
        context: condition keys (case-insensitive) to a string or a list of strings (multi-valued).
    """

    action: str
    resource: str
    principal: Mapping[str, Sequence[str]] | None = None
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    # Normalised once so every statement compares against the same lower-cased views.
    action_lower: str = field(init=False, repr=False, compare=False)
    ctx: Mapping[str, str | tuple[str, ...]] = field(init=False, repr=False, compare=False)
    principals: Mapping[str, tuple[str, ...]] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "action_lower", self.action.lower())
        object.__setattr__(self, "ctx", normalise_context(self.context))
        object.__setattr__(
            self, "principals", None if self.principal is None else normalise_principals(self.principal)
        )


def normalise_principals(principal: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """A principal as the matchers read it (:attr:`Request.principals`): tuples of strings."""
    return {k: (v,) if isinstance(v, str) else tuple(str(x) for x in v) for k, v in principal.items()}


def prepared_request(
    action: str,
    resource: str,
    principal: Mapping[str, Sequence[str]],
    context: Mapping[str, str | Sequence[str]],
    *,
    ctx: dict[str, str | tuple[str, ...]],
    principals: dict[str, tuple[str, ...]],
) -> Request:
    """``Request(action, resource, principal, context)`` for a caller that already holds
    ``normalise_context(context)`` and ``normalise_principals(principal)``: the same request,
    without normalising twice. Only for the engine's own use (:class:`~gateway.policy.TrustMemo`)."""
    request = object.__new__(Request)
    for name, value in (
        ("action", action),
        ("resource", resource),
        ("principal", principal),
        ("context", context),
        ("action_lower", action.lower()),
        ("ctx", ctx),
        ("principals", principals),
    ):
        object.__setattr__(request, name, value)
    return request


@dataclass(frozen=True, slots=True)
class MatchedStatement:
    """A statement that applied to a request.

    ``statement`` is the validated statement itself, for explanations that show what it says
    (the decoded authorization message); it takes no part in comparisons.
    """

    policy: str
    kind: PolicyKind
    index: int
    sid: str
    effect: Effect
    statement: Statement | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        sid = f' "{self.sid}"' if self.sid else ""
        return f'statement {self.index}{sid} of {self.kind} policy "{self.policy}"'


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of an evaluation, with the statements that decided it.

    Attributes:
        allowed: the only field enforcement may look at.
        kind: ``allowed``, ``explicitDeny`` (a Deny statement matched) or ``implicitDeny``
            (nothing allowed it).
        matched: for an explicit deny the Deny statements that matched; otherwise the Allow
            statements that matched (possibly some, when another policy type withheld access).
        denied_by: for a deny, the policy type that blocked it.
        action, resource: what was asked, for :meth:`explain` and audit.
    """

    allowed: bool
    kind: DecisionKind
    matched: tuple[MatchedStatement, ...] = ()
    denied_by: PolicyKind | None = None
    action: str = ""
    resource: str = ""

    def explain(self) -> str:
        """One readable paragraph saying why."""
        what = f"{self.action} on {self.resource}" if self.action else "the request"
        stmts = "; ".join(m.describe() for m in self.matched)
        if self.kind == "allowed":
            return f"Allowed {what}: allowed by {stmts}."
        if self.kind == "explicitDeny":
            return f"Denied {what} explicitly: denied by {stmts} ({self.denied_by} policy)."
        reason = f"no {self.denied_by} policy statement allows it"
        if self.denied_by in ("boundary", "session"):
            reason = f"the {self.denied_by} policy does not allow it"
        elif self.denied_by == "resource":
            reason = "cross-account access needs an allow in the resource policy too, and none matched"
        tail = f" (allowed only by {stmts})" if stmts else ""
        return f"Denied {what} implicitly: {reason}{tail}."


@dataclass(frozen=True, slots=True)
class PrincipalSpec:
    """A parsed ``Principal``/``NotPrincipal``: ``"*"`` (``any_principal``) or values by type."""

    any_principal: bool = False
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConditionClause:
    """One ``operator: {key: values}`` entry of a Condition block, as written."""

    operator: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Statement:
    """A validated statement. Exactly one of each pair (``actions``/``not_actions`` ...) is set."""

    index: int
    sid: str
    effect: Effect
    actions: tuple[str, ...] | None = None
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    principal: PrincipalSpec | None = None
    not_principal: PrincipalSpec | None = None
    conditions: tuple[ConditionClause, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated policy document.

    Attributes:
        name: how decisions refer to it.
        kind: which role it plays in evaluation.
        version: ``2012-10-17`` or ``2008-10-17`` (the latter also when the document had none,
            which disables policy variables as AWS does).
        statements: the statements in document order.
        digest: SHA-256 of the canonical JSON; equal documents share compiled forms.
        size: characters of the canonical compact JSON (what size limits compare against).
        compiled: the matchers evaluation runs.
    """

    name: str
    kind: PolicyKind
    version: str
    id: str | None
    statements: tuple[Statement, ...]
    digest: str
    size: int
    compiled: CompiledPolicy = field(repr=False, compare=False)
