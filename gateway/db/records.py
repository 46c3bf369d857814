"""Plain frozen records of every IAM entity, as the database holds them, and the whole snapshot.

Records are what the repository operations return and what :meth:`IamDatabase.load` hands the
catalog to compile into its in-memory snapshot. They are values: no session, no lazy loading, no
link back to the database. Policy documents are kept as the exact text that was stored (IAM returns
them as submitted). Sealed secrets are carried sealed and kept out of ``repr``; the database opens
them on request (:meth:`IamDatabase.open_access_key_secret`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = [
    "AccessKeyRecord",
    "AccessKeyStatus",
    "AccessKeyUse",
    "AttachmentRecord",
    "GroupRecord",
    "IamSnapshot",
    "InlinePolicyRecord",
    "InstanceProfileRecord",
    "ManagedPolicyRecord",
    "MembershipRecord",
    "MfaDeviceRecord",
    "OidcProviderRecord",
    "PolicyVersionRecord",
    "PrincipalType",
    "RevocationRecord",
    "RoleRecord",
    "SamlProviderRecord",
    "TaggableType",
    "Tags",
    "UserRecord",
    "iam_arn",
]

#: Who can hold policies: attachments and inline policies name their owner by type and id.
PrincipalType = Literal["user", "group", "role"]
#: What can carry tags (IAM groups cannot).
TaggableType = Literal[
    "user", "role", "policy", "instance-profile", "oidc-provider", "saml-provider", "mfa-device"
]
AccessKeyStatus = Literal["Active", "Inactive"]
#: Tags as ``(key, value)`` pairs, sorted by key.
Tags = tuple[tuple[str, str], ...]


def iam_arn(account_id: str, resource: str, path: str, name: str) -> str:
    """``arn:aws:iam::ACCOUNT:RESOURCE{path}{name}`` (``path`` starts and ends with ``/``)."""
    return f"arn:aws:iam::{account_id}:{resource}{path}{name}"


@dataclass(frozen=True, slots=True)
class UserRecord:
    """An IAM user created through the API."""

    id: str
    name: str
    path: str
    arn: str
    boundary_arn: str | None
    created_at: datetime
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """An IAM group."""

    id: str
    name: str
    path: str
    arn: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MembershipRecord:
    """A user in a group."""

    group_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class RoleRecord:
    """A role created through the API (the YAML's roles are not in the database)."""

    id: str
    name: str
    path: str
    arn: str
    description: str
    trust_policy: str
    max_session_duration: int
    boundary_arn: str | None
    created_at: datetime
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class ManagedPolicyRecord:
    """A customer managed policy; its documents are its :class:`PolicyVersionRecord`s."""

    id: str
    name: str
    path: str
    arn: str
    description: str
    default_version: str
    created_at: datetime
    updated_at: datetime
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class PolicyVersionRecord:
    """One version (``v1``, ``v2``, ...) of a managed policy."""

    policy_id: str
    version_id: str
    document: str
    created_at: datetime
    is_default: bool


@dataclass(frozen=True, slots=True)
class AttachmentRecord:
    """A managed policy (by ARN: the YAML's or the database's) attached to a user, group or role."""

    principal_type: PrincipalType
    principal_id: str
    policy_arn: str
    attached_at: datetime


@dataclass(frozen=True, slots=True)
class InlinePolicyRecord:
    """A policy embedded in a user, group or role."""

    principal_type: PrincipalType
    principal_id: str
    name: str
    document: str


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    """A user's long-term access key; the secret stays sealed."""

    id: str
    user_id: str
    status: AccessKeyStatus
    created_at: datetime
    last_used_at: datetime | None
    last_used_service: str | None
    last_used_region: str | None
    sealed_secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class AccessKeyUse:
    """One use of an access key, recorded off the hot path (see :class:`KeyUsageRecorder`)."""

    access_key_id: str
    at: datetime
    service: str
    region: str


@dataclass(frozen=True, slots=True)
class OidcProviderRecord:
    """An OIDC identity provider registered through the API."""

    url: str
    arn: str
    client_ids: tuple[str, ...]
    thumbprints: tuple[str, ...]
    created_at: datetime
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class SamlProviderRecord:
    """A SAML identity provider registered through the API, with its metadata document."""

    name: str
    arn: str
    metadata_document: str
    valid_until: datetime | None
    created_at: datetime
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class InstanceProfileRecord:
    """An instance profile and the roles in it (AWS allows one)."""

    id: str
    name: str
    path: str
    arn: str
    created_at: datetime
    role_ids: tuple[str, ...] = ()
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class MfaDeviceRecord:
    """A virtual MFA device; the TOTP seed stays sealed."""

    serial: str
    name: str
    path: str
    user_id: str | None
    enabled_at: datetime | None
    created_at: datetime
    sealed_seed: str = field(repr=False)
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class RevocationRecord:
    """Sessions of ``(kind, scope)`` issued before ``cutoff`` (epoch seconds) are revoked."""

    kind: str
    scope: str
    cutoff: float
    revision: int


@dataclass(frozen=True, slots=True)
class IamSnapshot:
    """Every entity in the database at one revision, read in one consistent transaction."""

    revision: int
    users: tuple[UserRecord, ...]
    groups: tuple[GroupRecord, ...]
    memberships: tuple[MembershipRecord, ...]
    roles: tuple[RoleRecord, ...]
    policies: tuple[ManagedPolicyRecord, ...]
    policy_versions: tuple[PolicyVersionRecord, ...]
    attachments: tuple[AttachmentRecord, ...]
    inline_policies: tuple[InlinePolicyRecord, ...]
    access_keys: tuple[AccessKeyRecord, ...]
    oidc_providers: tuple[OidcProviderRecord, ...]
    saml_providers: tuple[SamlProviderRecord, ...]
    instance_profiles: tuple[InstanceProfileRecord, ...]
    mfa_devices: tuple[MfaDeviceRecord, ...]
    revocations: tuple[RevocationRecord, ...]
