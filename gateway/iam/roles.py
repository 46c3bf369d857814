"""The configured roles as the simulator sees them: each role's permission policies as sources.

A role's inline policies are ``SourcePolicyType`` ``role`` (``SourcePolicyId`` the policy name);
its attached managed policies are customer managed, ``user-managed``, named by their ARN. Both are
identity policies; documents come from the validated configuration, so parsing hits the engine's
cache after the first time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import final

from gateway.config import GatewayConfig, RoleSettings
from gateway.errors import NoSuchEntity
from gateway.iam.simulate import SourcePolicy

__all__ = ["RoleCatalog", "principal_context"]


def _text(document: Mapping[str, object]) -> str:
    # Indented text gives MatchedStatements useful line numbers (a config holds no policy text).
    return json.dumps(document, indent=4)


@final
class RoleCatalog:
    """Roles of one configuration, by ARN and by name."""

    def __init__(self, config: GatewayConfig) -> None:
        self._config = config
        self._by_arn: dict[str, RoleSettings] = {config.role_arn(r): r for r in config.roles}
        self._by_name: dict[str, RoleSettings] = {r.name: r for r in config.roles}
        self._managed = {p.name: p for p in config.policies}

    def arn(self, role: RoleSettings) -> str:
        """The role's ARN."""
        return self._config.role_arn(role)

    def find(self, arn_or_name: str) -> RoleSettings:
        """The role with this ARN (or, for the CLI, this name); NoSuchEntity otherwise."""
        role = self._by_arn.get(arn_or_name) or self._by_name.get(arn_or_name)
        if role is None:
            raise NoSuchEntity(f"The role with name {arn_or_name.rsplit('/', 1)[-1][:64]} cannot be found.")
        return role

    def sources(self, role: RoleSettings) -> list[SourcePolicy]:
        """The role's permission policies: inline first, then attached managed policies."""
        out = [
            SourcePolicy.parse(_text(p.document), id=p.name, type="role", kind="identity")
            for p in role.policies
        ]
        for name in role.managed_policies:
            managed = self._managed[name]
            arn = f"arn:aws:iam::{self._config.account_id}:policy{managed.path}{managed.name}"
            out.append(
                SourcePolicy.parse(_text(managed.document), id=arn, type="user-managed", kind="identity")
            )
        return out


def principal_context(role_arn: str, account_id: str, tags: Mapping[str, str]) -> dict[str, str]:
    """The principal keys a simulation of ``role_arn`` can know without a session.

    ``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``aws:PrincipalType`` and the role's tags as
    ``aws:PrincipalTag/KEY``. Session facts (source IP, time, MFA, federation claims) come from a
    real request (see :func:`gateway.context.global_context`) or from explicit context.
    """
    out = {
        "aws:PrincipalArn": role_arn,
        "aws:PrincipalAccount": account_id,
        "aws:PrincipalType": "AssumedRole",
    }
    out.update({f"aws:PrincipalTag/{k}": v for k, v in tags.items()})
    return out
