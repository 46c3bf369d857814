"""IAM's API surface in fedgate, framework-free: policy simulation for now.

:mod:`.params` validates the Query parameters of ``SimulateCustomPolicy`` and
``SimulatePrincipalPolicy``; :mod:`.entries` types context entries; :mod:`.simulate` runs the
policy engine over actions and resources and shapes IAM's ``EvaluationResult``;
:mod:`.positions` finds statements in policy text; :mod:`.roles` exposes configured roles as
policy sources; :mod:`.service` ties them together. The aiohttp adapter is
:mod:`gateway.web.iam`; the command line is :mod:`gateway.simulate_cli`.
"""

from __future__ import annotations

from gateway.iam.entries import ContextEntry, build_context
from gateway.iam.params import API_VERSION, SimulationParams
from gateway.iam.roles import RoleCatalog, principal_context
from gateway.iam.service import SimulationPage, build_simulation, simulate
from gateway.iam.simulate import EvaluationResult, Simulation, SourcePolicy, StatementRef

__all__ = [
    "API_VERSION",
    "ContextEntry",
    "EvaluationResult",
    "RoleCatalog",
    "Simulation",
    "SimulationPage",
    "SimulationParams",
    "SourcePolicy",
    "StatementRef",
    "build_context",
    "build_simulation",
    "principal_context",
    "simulate",
]
