"""The two simulation actions, from validated parameters to one page of results.

``SimulateCustomPolicy`` evaluates only the policies in the request. ``SimulatePrincipalPolicy``
evaluates the permission policies of a catalog role or user (``PolicySourceArn``; a user's include
its groups' and its permissions boundary) plus any ``PolicyInputList`` documents; the simulated
caller defaults to that principal. Neither adds context
values the request did not give (as IAM does): what the policies needed and lacked comes back in
``MissingContextValues``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.iam.catalog import CatalogSnapshot
from gateway.iam.entries import build_context
from gateway.iam.params import SimulationParams
from gateway.iam.roles import find_role, find_user, role_sources, user_boundary, user_sources
from gateway.iam.simulate import EvaluationResult, Simulation, SourcePolicy

__all__ = ["SimulationPage", "build_simulation", "simulate"]


@dataclass(frozen=True, slots=True)
class SimulationPage:
    """Results ``[marker, marker + max_items)`` and the marker of the next page, if any."""

    results: tuple[EvaluationResult, ...]
    next_marker: int | None


def build_simulation(params: SimulationParams, catalog: CatalogSnapshot | None = None) -> Simulation:
    """The :class:`Simulation` ``params`` describe. MalformedPolicyDocument on invalid policy text,
    NoSuchEntity for a ``PolicySourceArn`` that names no role or user of the catalog."""
    identity: list[SourcePolicy] = []
    principal_boundary: list[SourcePolicy] | None = None
    caller = params.caller_arn
    source = params.policy_source_arn
    if source is not None:
        if catalog is None:
            raise ValueError("SimulatePrincipalPolicy needs the catalog")
        if source.split(":", 5)[-1].startswith("user/"):
            user = find_user(catalog, source)
            identity.extend(user_sources(user))
            principal_boundary = user_boundary(user)
            caller = caller or user.arn
        else:
            role = find_role(catalog, source)
            identity.extend(role_sources(role))
            caller = caller or role.arn
    identity.extend(
        SourcePolicy.parse(doc, id=f"PolicyInputList.{i}", type=None, kind="identity")
        for i, doc in enumerate(params.policy_inputs, 1)
    )
    boundary = principal_boundary
    if params.boundary_inputs:
        boundary = [*(boundary or ())]
        boundary.extend(
            SourcePolicy.parse(doc, id=f"PermissionsBoundaryPolicyInputList.{i}", type=None, kind="boundary")
            for i, doc in enumerate(params.boundary_inputs, 1)
        )
    resource_policy = None
    if params.resource_policy is not None:
        resource_policy = SourcePolicy.parse(
            params.resource_policy, id="ResourcePolicy", type="resource", kind="resource"
        )
    return Simulation(
        identity=identity,
        boundary=boundary,
        resource_policy=resource_policy,
        caller_arn=caller,
        resource_owner=params.resource_owner,
    )


def simulate(params: SimulationParams, catalog: CatalogSnapshot | None = None) -> SimulationPage:
    """Run the simulation ``params`` describe and return the requested page."""
    simulation = build_simulation(params, catalog)
    results = simulation.run(
        params.action_names, params.resource_arns or ("*",), build_context(params.context)
    )
    end = params.marker + params.max_items
    return SimulationPage(tuple(results[params.marker : end]), end if end < len(results) else None)
