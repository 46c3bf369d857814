"""``fedgate agent``: credentials for workloads that cannot call STS themselves.

The agent runs beside a workload (a sidecar, or a node or VM agent). For each configured role it
gets credentials from a fedgate gateway through a :class:`~gateway.agent.sources.CredentialSource`
(today AssumeRoleWithWebIdentity with a token file re-read at every renewal), caches them, renews
them before they expire, and serves them where every AWS SDK already looks:

* the container credentials endpoint (``AWS_CONTAINER_CREDENTIALS_FULL_URI`` with
  ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE``, as on ECS and EKS Pod Identity);
* IMDSv2 (``AWS_EC2_METADATA_SERVICE_ENDPOINT``), session tokens required;
* ``credential_process`` (``fedgate agent credential-process``).

Modules: :mod:`~gateway.agent.config` (the YAML and flags), :mod:`~gateway.agent.sources` and
:mod:`~gateway.agent.sts_client` (getting credentials), :mod:`~gateway.agent.keeper` (cache and
renewal schedule), :mod:`~gateway.agent.credentials` and :mod:`~gateway.agent.imds` (what SDKs
read), :mod:`~gateway.agent.server` (the HTTP adapters), :mod:`~gateway.agent.runtime` (one
process), :mod:`~gateway.agent.cli` (the command), :mod:`~gateway.agent.errors` (the error tree).

The names below are imported on first use: every ``fedgate`` command builds the agent's
subcommand parser (:mod:`gateway.agent.cli`, which imports this package), and a gateway server
should not hold the agent's models and clients in memory.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.agent.config import AgentConfig, parse_agent_config
    from gateway.agent.credentials import Credentials
    from gateway.agent.keeper import RefreshPolicy, RoleKeeper
    from gateway.agent.sources import CredentialSource, WebIdentityTokenFile

__all__ = [
    "AgentConfig",
    "CredentialSource",
    "Credentials",
    "RefreshPolicy",
    "RoleKeeper",
    "WebIdentityTokenFile",
    "parse_agent_config",
]

_HOMES = {
    "AgentConfig": "gateway.agent.config",
    "parse_agent_config": "gateway.agent.config",
    "Credentials": "gateway.agent.credentials",
    "RefreshPolicy": "gateway.agent.keeper",
    "RoleKeeper": "gateway.agent.keeper",
    "CredentialSource": "gateway.agent.sources",
    "WebIdentityTokenFile": "gateway.agent.sources",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
