"""IAM actions on the Query endpoint (Version 2010-05-08): the IAM API and policy simulation.

Thin adapters: the IAM API's actions are :mod:`gateway.iam.api` (each run by its
:func:`~gateway.iam.api.execute`), the simulation actions ``SimulateCustomPolicy`` and
``SimulatePrincipalPolicy`` are :mod:`gateway.iam`. The caller signs with credentials fedgate
issued (SigV4, service ``iam``) and must be allowed each action by its own policies, exactly as the
reverse proxy would decide it (same policy sets, same global condition keys); otherwise
``AccessDenied``. Who the caller is and what it may do is decided in one place:
:func:`authenticated_caller` and the :class:`_SignedCaller` it returns, for a role session and an
IAM user signing with a long-term access key alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, final

from gateway import keys
from gateway.iam import API_VERSION, SimulationParams, permissions, simulate
from gateway.iam.api import ACTIONS as API_ACTIONS
from gateway.iam.api import IamAction, execute
from gateway.iam.caller import Caller
from gateway.iam.catalog import CatalogSnapshot
from gateway.iam.permissions import Check
from gateway.sts.xml import XmlValue, xml_value
from gateway.web.actions import QueryAction, QueryActions, QueryCall, QueryHandler
from gateway.web.query import authenticate_call

__all__ = ["ACTIONS", "NAMESPACE", "authenticated_caller"]

NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
_SOURCE = "iam.amazonaws.com"
# Simulation results carry one AWS map (<entry><key/><value/></entry>).
_MAPS = frozenset({"EvalDecisionDetails"})


@final
class _SignedCaller:
    """A verified caller (a session fedgate issued, or an IAM user) calling IAM: a
    :class:`gateway.iam.api.Principal`."""

    __slots__ = ("_call", "_caller", "_snapshot")

    def __init__(self, call: QueryCall, snapshot: CatalogSnapshot, caller: Caller) -> None:
        self._call = call
        self._snapshot = snapshot
        self._caller = caller

    @property
    def arn(self) -> str:
        return self._caller.arn

    @property
    def user_name(self) -> str | None:
        return self._caller.user_name

    def authorize(self, checks: Sequence[Check]) -> None:
        """Each check must be allowed by the session's policies; AccessDenied names the first that
        is not, in AWS's words."""
        region = self._call.request.app[keys.CONFIG].region
        caller, snapshot = self._caller, self._snapshot
        context = permissions.session_context(snapshot, caller, self._call.record.transport, region=region)
        for check in checks:
            decision = permissions.decide(snapshot, caller, [check], context)
            if not decision.allowed:
                explicit = " with an explicit deny" if decision.kind == "explicitDeny" else ""
                raise self._call.request.app[keys.AUTHORIZATION_MESSAGES].denied(
                    f"User: {self.arn} is not authorized to perform: {check.action} on resource: "
                    f"{check.resource}{explicit}",
                    decision,
                    principal_id=caller.user_id,
                    principal_arn=caller.arn,
                    context={**context, **check.context},
                )


async def authenticated_caller(call: QueryCall, snapshot: CatalogSnapshot) -> _SignedCaller:
    """Verify the call's signature (service ``iam``) and return the caller it proves."""
    caller = await authenticate_call(call, service="iam")
    return _SignedCaller(call, snapshot, caller)


def _rendered(result: Mapping[str, Any]) -> dict[str, XmlValue]:
    return {k: xml_value(v, maps=_MAPS, name=k) for k, v in result.items()}


async def _simulate(call: QueryCall, action: str, *, principal: bool) -> Mapping[str, XmlValue]:
    snapshot = call.request.app[keys.CATALOG].snapshot
    caller = await authenticated_caller(call, snapshot)
    params = SimulationParams.parse(call.params.values, principal=principal)
    caller.authorize([Check(f"iam:{action}", params.policy_source_arn or "*")])
    page = simulate(params, snapshot if principal else None)
    result: dict[str, Any] = {
        "EvaluationResults": [r.to_wire() for r in page.results],
        "IsTruncated": page.next_marker is not None,
    }
    if page.next_marker is not None:
        result["Marker"] = str(page.next_marker)
    return _rendered(result)


async def _simulate_custom_policy(call: QueryCall) -> Mapping[str, XmlValue]:
    return await _simulate(call, "SimulateCustomPolicy", principal=False)


async def _simulate_principal_policy(call: QueryCall) -> Mapping[str, XmlValue]:
    return await _simulate(call, "SimulatePrincipalPolicy", principal=True)


def _api(action: IamAction) -> QueryHandler:
    async def handle(call: QueryCall) -> Mapping[str, XmlValue]:
        app = call.request.app
        snapshot = app[keys.CATALOG].snapshot
        caller = await authenticated_caller(call, snapshot)
        runtime = app[keys.DATABASE]
        configured = app[keys.PROVIDERS]
        result = await execute(
            action,
            call.params,
            database=runtime.database,
            snapshot=snapshot,
            caller=caller,
            record=call.record,
            mfa=app[keys.MFA],
            providers=configured,
        )
        if action.writes:
            # Read your writes on this replica: once UpdateAccessKey (or any write) has answered,
            # this replica's decisions already follow it. Other replicas follow within the
            # watcher's bound.
            await runtime.watcher.check()
        return _rendered(result)

    return handle


ACTIONS: QueryActions = MappingProxyType(
    {
        (API_VERSION, name): QueryAction(handler, NAMESPACE, _SOURCE, read_only=read_only)
        for name, handler, read_only in (
            ("SimulateCustomPolicy", _simulate_custom_policy, True),
            ("SimulatePrincipalPolicy", _simulate_principal_policy, True),
            *((action.name, _api(action), not action.writes) for action in API_ACTIONS.values()),
        )
    }
)
