"""IAM in fedgate, framework-free: the catalog every decision reads, and the IAM API (simulation).

The catalog: :mod:`.records` (plain records a source states), :mod:`.catalog` (compiled roles and
managed policies behind an atomically swapped snapshot), :mod:`.trust` (the one trust decision:
may this identity assume this role) and :mod:`.permissions` (what a signed call's session may do).

Simulation: :mod:`.params` validates the Query parameters of ``SimulateCustomPolicy`` and
``SimulatePrincipalPolicy``; :mod:`.entries` types context entries; :mod:`.simulate` runs the
policy engine over actions and resources and shapes IAM's ``EvaluationResult``;
:mod:`.positions` finds statements in policy text; :mod:`.roles` exposes catalog roles as
policy sources; :mod:`.service` ties them together. The aiohttp adapter is
:mod:`gateway.web.iam`; the command line is :mod:`gateway.simulate_cli`.
"""

from __future__ import annotations

from gateway.iam.entries import ContextEntry, build_context
from gateway.iam.params import API_VERSION, SimulationParams
from gateway.iam.roles import (
    find_role,
    find_user,
    principal_context,
    role_sources,
    user_boundary,
    user_sources,
)
from gateway.iam.service import SimulationPage, build_simulation, simulate
from gateway.iam.simulate import EvaluationResult, Simulation, SourcePolicy, StatementRef

__all__ = [
    "API_VERSION",
    "ContextEntry",
    "EvaluationResult",
    "Simulation",
    "SimulationPage",
    "SimulationParams",
    "SourcePolicy",
    "StatementRef",
    "build_context",
    "build_simulation",
    "find_role",
    "find_user",
    "principal_context",
    "role_sources",
    "simulate",
    "user_boundary",
    "user_sources",
]
