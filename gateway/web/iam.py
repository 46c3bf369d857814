"""IAM actions on the Query endpoint (Version 2010-05-08): policy simulation.

``SimulateCustomPolicy`` and ``SimulatePrincipalPolicy`` are thin adapters around
:mod:`gateway.iam`. The caller signs with credentials fedgate issued (SigV4, service ``iam``) and
must be allowed the action by its own role's permission policies intersected with its session
policies, exactly as the reverse proxy would decide it (same policy sets, same global condition
keys); otherwise ``AccessDenied``.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, final

from gateway import keys
from gateway.credentials import SessionClaims
from gateway.errors import AccessDenied
from gateway.iam import API_VERSION, SimulationParams, permissions, simulate
from gateway.iam.catalog import CatalogSnapshot
from gateway.iam.permissions import Check
from gateway.sts.xml import XmlValue
from gateway.web.actions import QueryAction, QueryActions, QueryCall
from gateway.web.query import authenticate_call

__all__ = ["ACTIONS", "NAMESPACE"]

NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
_SOURCE = "iam.amazonaws.com"


class _Pairs(ItemsView[str, XmlValue]):
    def __init__(self, repeated: _Repeated) -> None:
        super().__init__(repeated)
        self._repeated = repeated

    def __iter__(self) -> Iterator[tuple[str, XmlValue]]:
        return ((self._repeated.tag, v) for v in self._repeated.values_)


@final
class _Repeated(Mapping[str, XmlValue]):
    """A list in the Query protocol's XML: one ``<tag>`` element per value, in order.

    The shared renderer (:func:`gateway.sts.xml.response_document`) walks ``items()`` of mappings;
    this mapping yields the same tag once per value, which is how ``<member>`` lists are spelled.
    """

    def __init__(self, tag: str, values: Sequence[XmlValue]) -> None:
        self.tag = tag
        self.values_ = tuple(values)

    def __getitem__(self, key: str) -> XmlValue:
        if key == self.tag and self.values_:
            return self.values_[0]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter([self.tag] * len(self.values_))

    def __len__(self) -> int:
        return len(self.values_)

    def items(self) -> ItemsView[str, XmlValue]:
        return _Pairs(self)


def _xml(value: Any, name: str = "") -> XmlValue:
    """botocore-shaped Python values (lists, maps, booleans) as XML-renderable values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return _Repeated("member", [_xml(v) for v in value])
    if isinstance(value, Mapping):
        if name == "EvalDecisionDetails":  # a map: <entry><key/><value/></entry>
            return _Repeated("entry", [{"key": k, "value": v} for k, v in value.items()])
        return {k: _xml(v, k) for k, v in value.items()}
    if isinstance(value, str | int):
        return value
    raise TypeError(f"cannot render {type(value).__name__}")


async def _caller(call: QueryCall) -> SessionClaims:
    return await authenticate_call(call, service="iam")


def _authorize(
    call: QueryCall, snapshot: CatalogSnapshot, claims: SessionClaims, action: str, resource: str
) -> None:
    """The caller's own policies must allow ``iam:<action>`` on ``resource``; AccessDenied otherwise."""
    region = call.request.app[keys.CONFIG].region
    context = permissions.session_context(snapshot, claims, call.record.transport, region=region)
    decision = permissions.decide(snapshot, claims, [Check(f"iam:{action}", resource)], context)
    if not decision.allowed:
        raise AccessDenied(
            f"User: {claims.assumed_role_arn} is not authorized to perform: iam:{action} on resource: "
            f"{resource}" + (" with an explicit deny" if decision.kind == "explicitDeny" else "")
        )


async def _simulate(call: QueryCall, action: str, *, principal: bool) -> Mapping[str, XmlValue]:
    claims = await _caller(call)
    params = SimulationParams.parse(call.params.values, principal=principal)
    resource = params.policy_source_arn or "*"
    snapshot = call.request.app[keys.CATALOG].snapshot
    _authorize(call, snapshot, claims, action, resource)
    page = simulate(params, snapshot if principal else None)
    result: dict[str, Any] = {
        "EvaluationResults": [r.to_wire() for r in page.results],
        "IsTruncated": page.next_marker is not None,
    }
    if page.next_marker is not None:
        result["Marker"] = str(page.next_marker)
    return {k: _xml(v, k) for k, v in result.items()}


async def _simulate_custom_policy(call: QueryCall) -> Mapping[str, XmlValue]:
    return await _simulate(call, "SimulateCustomPolicy", principal=False)


async def _simulate_principal_policy(call: QueryCall) -> Mapping[str, XmlValue]:
    return await _simulate(call, "SimulatePrincipalPolicy", principal=True)


ACTIONS: QueryActions = MappingProxyType(
    {
        (API_VERSION, name): QueryAction(handler, NAMESPACE, _SOURCE)
        for name, handler in (
            ("SimulateCustomPolicy", _simulate_custom_policy),
            ("SimulatePrincipalPolicy", _simulate_principal_policy),
        )
    }
)
