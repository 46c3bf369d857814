"""Compiled statements and policies: every matcher built once, nothing parsed while deciding.

A :class:`CompiledPolicy` indexes its statements by service prefix and remembers, per action, which
statements' ``Action``/``NotAction`` matched, so a decision only runs the resource, principal and
condition matchers of statements that can apply.

Statement matching is three-valued. A ``Resource`` pattern whose policy variable has no value
matches no resource, as AWS documents ("the resource that includes a policy variable with no value
will not match any resource"), so neither an Allow nor a Deny applies through it. Anything else
whose match is *indeterminate* (such a pattern in ``NotResource``, a variable with no value in a
condition, a context value its operator cannot read, ``ForAnyValue:...IfExists`` on a missing key)
fails closed: an Allow does not apply, a Deny does. An unresolvable variable therefore never allows.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import final

from gateway.policy.conditions import CompiledCondition, Ctx
from gateway.policy.model import MatchedStatement, PolicyKind, PrincipalSpec, Request, Statement
from gateway.policy.wildcard import Indeterminate, PatternSet, Var, compile_glob, parse_template

__all__ = [
    "GRADE_ACCOUNT",
    "GRADE_DIRECT",
    "GRADE_ROLE",
    "CompiledPolicy",
    "CompiledStatement",
    "PrincipalMatcher",
    "resource_test",
    "statement_reads",
]

# How a principal matched, which matters for same-account resource policies: naming the account
# delegates to identity policies, naming the role is limited by boundary and session policies,
# naming the session or user (or a federated/service principal) grants directly.
GRADE_ACCOUNT = 1
GRADE_ROLE = 2
GRADE_DIRECT = 3

_ACCOUNT_RE = re.compile(r"^\d{12}\Z")
_ACTION_CACHE_MAX = 1024

ResourceTest = Callable[[str, Ctx], bool]
Candidates = tuple[tuple["CompiledStatement", ...], tuple["CompiledStatement", ...]]


def _account_of(value: str) -> str | None:
    if _ACCOUNT_RE.match(value):
        return value
    parts = value.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[2] in ("iam", "sts"):
        return parts[4]
    return None


@final
class PrincipalMatcher:
    """Matches a request's principals against a ``Principal`` element and grades the match."""

    __slots__ = ("any_principal", "aws_accounts", "aws_any", "aws_arns", "others")

    def __init__(self, spec: PrincipalSpec) -> None:
        self.any_principal = spec.any_principal
        aws = spec.values.get("AWS", ())
        self.aws_any = "*" in aws
        self.aws_accounts = frozenset(a for a in (_account_of(v) for v in aws if v.endswith(":root")) if a)
        self.aws_accounts |= frozenset(v for v in aws if _ACCOUNT_RE.match(v))
        self.aws_arns: dict[str, int] = {
            v: GRADE_ROLE if v.split(":", 5)[-1].startswith("role/") else GRADE_DIRECT
            for v in aws
            if v.startswith("arn:") and not v.endswith(":root")
        }
        self.others = {t: frozenset(vs) for t, vs in spec.values.items() if t != "AWS"}

    def grade(self, principals: Mapping[str, tuple[str, ...]] | None) -> int:
        """0 when nothing matches, else the strongest :data:`GRADE_* <GRADE_DIRECT>` matched."""
        if self.any_principal:
            return GRADE_ROLE  # "*" grants to everyone, but never past a boundary or session policy
        if not principals:
            return 0
        best = 0
        for ptype, values in principals.items():
            if ptype == "AWS":
                for v in values:
                    if self.aws_any:
                        best = max(best, GRADE_ROLE)
                    best = max(best, self.aws_arns.get(v, 0))
                    if self.aws_accounts and _account_of(v) in self.aws_accounts:
                        best = max(best, GRADE_ACCOUNT)
            else:
                wanted = self.others.get(ptype)
                if wanted and any(v in wanted for v in values):
                    return GRADE_DIRECT
        return best


def _variable_keys(text: str) -> set[str]:
    try:
        template = parse_template(text)
    except ValueError:  # refused at parse where variables are on; plain text where they are off
        return set()
    return {p.key for p in template.parts if isinstance(p, Var)} if template is not None else set()


def statement_reads(stmt: Statement) -> frozenset[str]:
    """Every context key (lower-cased) a statement's evaluation can read.

    Its condition keys, and the keys of the policy variables in its ``Resource``/``NotResource``
    and condition values (also where the policy's version turns variables off: reading too much
    only costs a cache hit, never a wrong answer). The matchers read the request context only
    through these keys (``ctx.get(key)``), so two requests that agree on them, on the action, the
    resource and the principal get the same decision from the statement.
    """
    keys: set[str] = set()
    for clause in stmt.conditions:
        keys.add(clause.key.lower())
        for value in clause.values:
            keys |= _variable_keys(value)
    for resource in (stmt.resources or ()) + (stmt.not_resources or ()):
        keys |= _variable_keys(resource)
    return frozenset(keys)


def resource_test(patterns: list[str], *, with_vars: bool, negate: bool) -> ResourceTest:
    """The Resource/NotResource matcher."""
    ps = PatternSet(patterns, "arn", with_vars=with_vars)
    if not ps.vars and ps.static is not None:
        rx = ps.static
        if negate:
            return lambda resource, ctx: rx.fullmatch(resource) is None
        return lambda resource, ctx: rx.fullmatch(resource) is not None
    if negate:
        return lambda resource, ctx: not ps.match(resource, ctx)
    return ps.match


@final
class CompiledStatement:
    """One statement's matchers."""

    __slots__ = (
        "action_rx",
        "conditions",
        "is_deny",
        "matched",
        "not_action",
        "not_principal",
        "principal",
        "reads",
        "resource",
        "resource_negated",
        "services",
    )

    def __init__(
        self,
        stmt: Statement,
        *,
        policy: str,
        kind: PolicyKind,
        resource: ResourceTest | None,
        conditions: tuple[CompiledCondition, ...],
    ) -> None:
        self.is_deny = stmt.effect == "Deny"
        self.matched = MatchedStatement(policy, kind, stmt.index, stmt.sid, stmt.effect, stmt)
        actions = stmt.actions if stmt.actions is not None else stmt.not_actions or ()
        self.not_action = stmt.actions is None
        self.action_rx = compile_glob(list(actions), lower=True)
        services = {a.lower().partition(":")[0] for a in actions}
        # None: the statement may apply to any service (NotAction, or a wildcard service prefix).
        self.services: frozenset[str] | None = (
            None if self.not_action or any("*" in s or "?" in s for s in services) else frozenset(services)
        )
        self.resource = resource
        self.resource_negated = stmt.resources is None
        self.principal = PrincipalMatcher(stmt.principal) if stmt.principal else None
        self.not_principal = PrincipalMatcher(stmt.not_principal) if stmt.not_principal else None
        self.conditions = conditions
        self.reads = statement_reads(stmt)

    def action_matches(self, action_lower: str) -> bool:
        return (self.action_rx.fullmatch(action_lower) is not None) != self.not_action

    def grade(self, request: Request) -> int:
        """0 if the statement does not apply (action already matched), else the principal grade."""
        indeterminate = False
        ctx = request.ctx
        if self.resource is not None:
            try:
                if not self.resource(request.resource, ctx):
                    return 0
            except Indeterminate:
                if not self.resource_negated:
                    return 0  # an unresolved Resource pattern matches nothing (AWS)
                indeterminate = True
        grade = GRADE_DIRECT
        if self.principal is not None:
            grade = self.principal.grade(request.principals)
            if not grade:
                return 0
        if self.not_principal is not None and self.not_principal.grade(request.principals):
            return 0
        for cond in self.conditions:
            try:
                if not cond.holds(ctx):
                    return 0
            except Indeterminate:
                indeterminate = True
        if indeterminate and not self.is_deny:
            return 0
        return grade


@final
class CompiledPolicy:
    """A policy's compiled statements, indexed by service prefix, with a per-action memo."""

    __slots__ = ("_by_service", "_cache", "_lock", "_wild", "kind", "name", "reads", "statements")

    def __init__(self, name: str, kind: PolicyKind, statements: tuple[CompiledStatement, ...]) -> None:
        self.name = name
        self.kind = kind
        self.statements = statements
        #: Every context key any statement can read (:func:`statement_reads`).
        self.reads: frozenset[str] = frozenset().union(*(s.reads for s in statements))
        self._wild = tuple(s for s in statements if s.services is None)
        by_service: dict[str, list[CompiledStatement]] = {}
        for s in statements:
            for svc in s.services or ():
                by_service.setdefault(svc, [])
        for svc, bucket in by_service.items():
            bucket.extend(s for s in statements if s.services is None or svc in s.services)
        self._by_service = {svc: tuple(b) for svc, b in by_service.items()}
        self._cache: dict[str, Candidates] = {}
        self._lock = threading.Lock()

    def candidates(
        self, action_lower: str
    ) -> tuple[tuple[CompiledStatement, ...], tuple[CompiledStatement, ...]]:
        """``(denies, allows)``: statements whose Action/NotAction matches, in document order."""
        hit = self._cache.get(action_lower)
        if hit is None:
            pool = self._by_service.get(action_lower.partition(":")[0], self._wild)
            matching = [s for s in pool if s.action_matches(action_lower)]
            hit = (tuple(s for s in matching if s.is_deny), tuple(s for s in matching if not s.is_deny))
            with self._lock:
                # Actions come from callers; bound the memo rather than trust their variety.
                if len(self._cache) >= _ACTION_CACHE_MAX:
                    self._cache.clear()
                self._cache[action_lower] = hit
        return hit

    def __repr__(self) -> str:
        return f"CompiledPolicy({self.name!r}, {self.kind!r}, {len(self.statements)} statements)"
