"""Decisions remembered, keyed on exactly what evaluation reads.

Two memos share one rule. A :class:`DecisionCache` answers for one
:class:`~gateway.policy.PolicySet` and one principal (the proxy's per-caller views); a
:class:`TrustMemo` for any trust policy and principal (STS). The
compiled statements read a request's context only through the keys :attr:`PolicySet.reads` lists
(condition keys and policy-variable keys, see
:func:`gateway.policy.compiled.statement_reads`), so a decision is a function of the action, the
resource and the values of those keys alone (the principal being fixed): two requests that agree
on them are decided alike, and a remembered decision is exactly what a fresh evaluation would
return. A key that is absent reads as ``None``, which no present value equals, so ``Null`` and
``...IfExists`` conditions see the same presence as on the first evaluation.

Bounded: when ``max_entries`` decisions are held the cache starts over, so a caller that varies
resources cannot grow it without limit.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from typing import final

from gateway.policy.cache import LRU
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.evaluate import PolicySet, compiled_as, evaluate_trust
from gateway.policy.model import (
    Decision,
    Policy,
    Request,
    normalise_context,
    normalise_principals,
    prepared_request,
)

__all__ = ["DecisionCache", "TrustMemo", "read_values"]

Ctx = Mapping[str, str | tuple[str, ...]]


def read_values(reads: Collection[str], ctx: Ctx) -> list[str | tuple[str, ...] | None]:
    """The part of a normalised context a decision can depend on: the value (``None`` when
    absent) of each key in ``reads``, in that collection's own order (pass the same object for
    the same policies, so values line up with the same keys)."""
    return [ctx.get(k) for k in reads]


@final
class DecisionCache:
    """``policies``' decisions for ``principal``, remembered (see the module docstring)."""

    __slots__ = ("_decisions", "_max", "_principal", "_reads", "policies")

    def __init__(
        self, policies: PolicySet, principal: Mapping[str, Sequence[str]] | None, *, max_entries: int = 512
    ) -> None:
        self.policies = policies
        self._principal = principal
        self._reads = policies.reads
        self._decisions: dict[tuple[object, ...], Decision] = {}
        self._max = max_entries

    def decide(self, action: str, resource: str, ctx: Ctx) -> Decision:
        """``policies.decide`` for this request. ``ctx`` must already be normalised
        (:func:`gateway.policy.model.normalise_context`): lower-cased keys, str or tuple values."""
        key = (action, resource, *read_values(self._reads, ctx))
        decision = self._decisions.get(key)
        if decision is None:
            decision = self.policies.decide(
                Request(action=action, resource=resource, principal=self._principal, context=ctx)
            )
            if len(self._decisions) >= self._max:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision


@final
class TrustMemo:
    """:func:`evaluate_trust`, remembered by exactly what the trust policy reads.

    A trust decision is a function of the policy, the action, the resource, the principal and the
    values of the context keys the policy reads (:attr:`CompiledPolicy.reads`: its conditions'
    keys and its policy variables), and of nothing else: two requests alike in those
    get the same decision, so the memo answers the second with the first's. Names and values are
    compared as evaluation reads them (:func:`~gateway.policy.model.normalise_context`, the same
    function :class:`Request` uses), so the memo never answers what a fresh evaluation would not.
    A policy that reads the time (``aws:CurrentTime``, ``aws:EpochTime``) simply misses each new
    second. Bounded: the least recently used decisions go first. Safe for concurrent use.
    """

    def __init__(self, maxsize: int = 4096) -> None:
        self._decisions: LRU[Hashable, Decision] = LRU(maxsize)

    def evaluate(
        self,
        policy: Policy | CompiledPolicy,
        *,
        action: str,
        resource: str,
        principal: Mapping[str, Sequence[str]],
        context: Mapping[str, str | Sequence[str]],
    ) -> Decision:
        """What ``evaluate_trust(policy, Request(action, resource, principal, context))`` decides."""
        cp = compiled_as(policy, "trust")
        ctx = normalise_context(context)
        principals = normalise_principals(principal)
        # The compiled policy itself (by identity) names the policy: an edited trust policy is a
        # new object, and never shares an entry with the old one. One frozenset iterates in one
        # order, so the values line up with the same keys for the same policy.
        key = (cp, action, resource, tuple(principals.items()), *read_values(cp.reads, ctx))
        decision = self._decisions.get(key)
        if decision is None:
            request = prepared_request(action, resource, principal, context, ctx=ctx, principals=principals)
            decision = evaluate_trust(cp, request)
            self._decisions.put(key, decision)
        return decision

    def __len__(self) -> int:
        return len(self._decisions)
