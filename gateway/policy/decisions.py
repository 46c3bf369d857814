"""Decisions remembered, keyed on exactly what evaluation reads.

A :class:`DecisionCache` answers for one :class:`~gateway.policy.PolicySet` and one principal. The
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

from collections.abc import Mapping, Sequence
from typing import final

from gateway.policy.evaluate import PolicySet
from gateway.policy.model import Decision, Request

__all__ = ["DecisionCache"]

Ctx = Mapping[str, str | tuple[str, ...]]


@final
class DecisionCache:
    """``policies``' decisions for ``principal``, remembered (see the module docstring)."""

    __slots__ = ("_decisions", "_max", "_principal", "_reads", "policies")

    def __init__(
        self, policies: PolicySet, principal: Mapping[str, Sequence[str]] | None, *, max_entries: int = 512
    ) -> None:
        self.policies = policies
        self._principal = principal
        self._reads = tuple(sorted(policies.reads))
        self._decisions: dict[tuple[object, ...], Decision] = {}
        self._max = max_entries

    def decide(self, action: str, resource: str, ctx: Ctx) -> Decision:
        """``policies.decide`` for this request. ``ctx`` must already be normalised
        (:func:`gateway.policy.model.normalise_context`): lower-cased keys, str or tuple values."""
        key = (action, resource, *[ctx.get(k) for k in self._reads])
        decision = self._decisions.get(key)
        if decision is None:
            decision = self.policies.decide(
                Request(action=action, resource=resource, principal=self._principal, context=ctx)
            )
            if len(self._decisions) >= self._max:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision
