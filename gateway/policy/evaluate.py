"""Policy evaluation logic, as AWS documents it ("Policy evaluation logic").

1. An explicit Deny in any policy wins.
2. Same account: a resource policy that names the caller's session or user ARN (or a federated or
   service principal) allows on its own; naming the role ARN, or ``"*"``, adds to the identity
   policies but stays limited by the boundary and session policies; naming the account only
   delegates to the identity policies.
3. Otherwise an identity policy must allow; across accounts the resource policy must allow too.
4. A permissions boundary, if given, must allow; session policies, if given, must allow.

``None`` means "no policy of that type applies". An *empty* boundary or session sequence is a
policy set that allows nothing, so it denies: fail closed rather than guess the caller meant none.

Deny statements are all checked first; evaluation then stops at the first Allow that settles each
policy type, so a decision names the statements that decided it, not every one that would match.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import final

from gateway.policy.compiled import GRADE_DIRECT, GRADE_ROLE, CompiledPolicy
from gateway.policy.model import (
    Decision,
    MatchedStatement,
    Policy,
    PolicyKind,
    Request,
)

__all__ = ["PolicySet", "compiled_as", "evaluate", "evaluate_trust"]


def compiled_as(policy: Policy | CompiledPolicy, kind: PolicyKind) -> CompiledPolicy:
    """``policy``'s compiled form, which must have been parsed as a ``kind`` policy."""
    cp = policy.compiled if isinstance(policy, Policy) else policy
    if cp.kind != kind:
        raise ValueError(f'policy "{cp.name}" is a {cp.kind} policy, used as a {kind} policy')
    return cp


def _resource(policy: Policy | CompiledPolicy) -> CompiledPolicy:
    # A role's trust policy is the resource policy of the role for sts:AssumeRole, so a signed
    # caller's AssumeRole is decided as any other request with a resource policy.
    cp = policy.compiled if isinstance(policy, Policy) else policy
    if cp.kind not in ("resource", "trust"):
        raise ValueError(f'policy "{cp.name}" is a {cp.kind} policy, used as a resource policy')
    return cp


def _first_deny(policies: Sequence[CompiledPolicy], request: Request) -> MatchedStatement | None:
    action = request.action_lower
    for policy in policies:
        for stmt in policy.candidates(action)[0]:
            if stmt.grade(request):
                return stmt.matched
    return None


def _first_allow(
    policies: Sequence[CompiledPolicy], request: Request, *, enough: int = 1
) -> tuple[MatchedStatement | None, int]:
    """The strongest matching Allow, stopping once one reaches grade ``enough``."""
    action = request.action_lower
    best: MatchedStatement | None = None
    best_grade = 0
    for policy in policies:
        for stmt in policy.candidates(action)[1]:
            grade = stmt.grade(request)
            if grade > best_grade:
                best, best_grade = stmt.matched, grade
                if grade >= enough:
                    return best, best_grade
    return best, best_grade


@final
class PolicySet:
    """The compiled policies that govern one principal's requests; build once, decide many times."""

    __slots__ = ("_all", "boundary", "identity", "reads", "resource", "session")

    def __init__(
        self,
        *,
        identity: Sequence[Policy | CompiledPolicy],
        resource: Policy | CompiledPolicy | None = None,
        boundary: Sequence[Policy | CompiledPolicy] | None = None,
        session: Sequence[Policy | CompiledPolicy] | None = None,
    ) -> None:
        self.identity = tuple(compiled_as(p, "identity") for p in identity)
        self.resource = (_resource(resource),) if resource is not None else None
        self.boundary = tuple(compiled_as(p, "boundary") for p in boundary) if boundary is not None else None
        self.session = tuple(compiled_as(p, "session") for p in session) if session is not None else None
        self._all = self.identity + (self.resource or ()) + (self.boundary or ()) + (self.session or ())
        #: Every context key (lower-cased) its decisions can read (:mod:`gateway.policy.decisions`).
        self.reads: frozenset[str] = frozenset().union(*(p.reads for p in self._all))

    def decide(self, request: Request, *, same_account: bool = True) -> Decision:
        """Evaluate ``request``; see the module docstring for the rules."""
        act, res = request.action, request.resource
        deny = _first_deny(self._all, request)
        if deny is not None:
            return Decision(False, "explicitDeny", (deny,), deny.kind, act, res)
        matched: list[MatchedStatement] = []
        res_grade = 0
        if self.resource is not None:
            res_allow, res_grade = _first_allow(self.resource, request, enough=GRADE_DIRECT)
            if same_account and res_grade >= GRADE_DIRECT and res_allow is not None:
                return Decision(True, "allowed", (res_allow,), None, act, res)
            if res_allow is not None and (res_grade >= GRADE_ROLE or not same_account):
                matched.append(res_allow)
        id_allow, _ = _first_allow(self.identity, request)
        if id_allow is not None:
            matched.insert(0, id_allow)
        elif not (same_account and res_grade >= GRADE_ROLE):
            return Decision(False, "implicitDeny", (), "identity", act, res)
        if not same_account and (id_allow is None or res_grade == 0):
            return Decision(False, "implicitDeny", tuple(matched), "resource", act, res)
        for kind, policies in (("boundary", self.boundary), ("session", self.session)):
            if policies is None:
                continue
            allow, _ = _first_allow(policies, request)
            if allow is None:
                return Decision(False, "implicitDeny", tuple(matched), kind, act, res)  # type: ignore[arg-type]
            matched.append(allow)
        return Decision(True, "allowed", tuple(matched), None, act, res)


def evaluate(
    request: Request,
    *,
    identity: Sequence[Policy | CompiledPolicy],
    resource: Policy | CompiledPolicy | None = None,
    boundary: Sequence[Policy | CompiledPolicy] | None = None,
    session: Sequence[Policy | CompiledPolicy] | None = None,
    same_account: bool = True,
) -> Decision:
    """Decide ``request`` against permission policies.

    Each policy must have been parsed with the kind of the slot it is passed in (``identity`` ...);
    anything else is a programming error (``ValueError``). For repeated decisions hold a
    :class:`PolicySet` instead; the policies themselves are compiled once either way.
    """
    ps = PolicySet(identity=identity, resource=resource, boundary=boundary, session=session)
    return ps.decide(request, same_account=same_account)


def evaluate_trust(policy: Policy | CompiledPolicy, request: Request) -> Decision:
    """Decide whether ``request.principal`` may do ``request.action`` (``sts:AssumeRole...``) per a
    role's trust policy. Deny wins; otherwise a matching Allow is needed."""
    cp = (compiled_as(policy, "trust"),)
    act, res = request.action, request.resource
    deny = _first_deny(cp, request)
    if deny is not None:
        return Decision(False, "explicitDeny", (deny,), "trust", act, res)
    allow, _ = _first_allow(cp, request)
    if allow is None:
        return Decision(False, "implicitDeny", (), "trust", act, res)
    return Decision(True, "allowed", (allow,), None, act, res)
