"""Plain records of IAM entities, as a source states them: what the catalog is built from.

A source (the YAML configuration today; the IAM database next) hands over
:class:`CatalogRecords`: roles and managed policies with their documents as decoded JSON, nothing
compiled and nothing looked up. :func:`gateway.iam.catalog.build_snapshot` validates and compiles
them. :func:`records_from_config` is the adapter for the configuration file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.arns import policy_arn
from gateway.config import GatewayConfig

__all__ = [
    "CatalogRecords",
    "EntitySource",
    "InlinePolicyRecord",
    "PolicyRecord",
    "RoleRecord",
    "records_from_config",
]

#: Where an entity is declared: ``config`` (the YAML file, read-only through any API) or ``api``.
EntitySource = Literal["config", "api"]


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """A customer managed policy (``arn:aws:iam::ACCOUNT:policy{path}{name}``)."""

    name: str
    document: Mapping[str, Any]
    path: str = "/"
    description: str = ""
    source: EntitySource = "config"


@dataclass(frozen=True, slots=True)
class InlinePolicyRecord:
    """A permission policy embedded in one role."""

    name: str
    document: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RoleRecord:
    """A role.

    ``managed_policy_arns`` name attached managed policies (each must be among the records'
    policies); ``permissions_boundary_arn`` names the managed policy that bounds the role, if any.
    ``role_id`` is the role's ``AROA...`` id; ``None`` derives it from the ARN, as the session
    tokens do.
    """

    name: str
    trust_policy: Mapping[str, Any]
    path: str = "/"
    description: str = ""
    inline_policies: tuple[InlinePolicyRecord, ...] = ()
    managed_policy_arns: tuple[str, ...] = ()
    permissions_boundary_arn: str | None = None
    max_session_duration: int = 3600
    tags: Mapping[str, str] = field(default_factory=dict)
    role_id: str | None = None
    source: EntitySource = "config"


@dataclass(frozen=True, slots=True)
class CatalogRecords:
    """Everything one source states about one account, at one ``revision``."""

    account_id: str
    roles: tuple[RoleRecord, ...] = ()
    policies: tuple[PolicyRecord, ...] = ()
    revision: int = 0


def records_from_config(config: GatewayConfig) -> CatalogRecords:
    """The roles and managed policies the configuration file declares."""
    account = config.account_id
    by_name = {p.name: policy_arn(account, p.path, p.name) for p in config.policies}
    return CatalogRecords(
        account_id=account,
        policies=tuple(
            PolicyRecord(name=p.name, path=p.path, description=p.description, document=p.document)
            for p in config.policies
        ),
        roles=tuple(
            RoleRecord(
                name=r.name,
                path=r.path,
                description=r.description,
                trust_policy=r.trust_policy,
                inline_policies=tuple(InlinePolicyRecord(i.name, i.document) for i in r.policies),
                managed_policy_arns=tuple(by_name[name] for name in r.managed_policies),
                max_session_duration=r.max_session_duration,
                tags=dict(r.tags),
            )
            for r in config.roles
        ),
    )
