"""The IAM database's tables (SQLAlchemy Core), for the whole IAM control plane.

The schema itself is created and changed only by the versioned migrations in
``gateway/db/migrations``; these definitions are what the queries are written against, and a test
checks that migrating an empty database yields exactly them, on SQLite and on PostgreSQL.

Conventions:

- Entity ids are spelled as AWS spells them (``AIDA``, ``AGPA``, ``AROA``, ``ANPA``, ``AIPA`` and
  17 characters; access keys ``AKIA`` and 16) and are the primary keys; names are unique
  case-insensitively through a ``name_key`` column (the lower-cased name) with a unique index.
- Polymorphic references (attachments, inline policies, tags) name their owner by type and id, so
  renaming a user keeps them; a managed policy is referenced by ARN, so attaching a policy the YAML
  declares works like attaching one created through the API.
- Times are UTC (:class:`UtcDateTime`); revocation cutoffs are epoch seconds as doubles, compared
  exactly with the ``issued_at`` sealed into session tokens.
- Secrets (access-key secrets, MFA seeds) are stored sealed under the key ring, with the id of the
  key that sealed them, so a key-ring rotation can seal them again under the new key.
- ``iam_revision`` holds one row: the revision every write transaction bumps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
)

__all__ = [
    "HEAD",
    "UtcDateTime",
    "access_keys",
    "group_members",
    "groups",
    "inline_policies",
    "instance_profile_roles",
    "instance_profiles",
    "managed_policies",
    "metadata",
    "mfa_devices",
    "oidc_providers",
    "policy_attachments",
    "policy_versions",
    "revision",
    "revocations",
    "roles",
    "saml_providers",
    "tags",
    "users",
]

#: Constraint names that are the same on every backend, so later migrations can name them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)
#: The migration revision these tables are (the scripts' head; a test checks the two agree).
HEAD = "0001"

ID = 32  # AIDA + 17, AKIA + 16: room to spare
ARN = 2048
IAM_PATH = 512


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone: it stores UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _created() -> Column[datetime]:
    return Column("created_at", UtcDateTime(), nullable=False)


revision = Table(
    "iam_revision",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("revision", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

users = Table(
    "iam_users",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("name_key", String(64), nullable=False, unique=True),
    Column("path", String(IAM_PATH), nullable=False),
    Column("boundary_arn", String(ARN)),
    _created(),
)

groups = Table(
    "iam_groups",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("name_key", String(128), nullable=False, unique=True),
    Column("path", String(IAM_PATH), nullable=False),
    _created(),
)

group_members = Table(
    "iam_group_members",
    metadata,
    Column("group_id", String(ID), ForeignKey("iam_groups.id"), nullable=False),
    Column("user_id", String(ID), ForeignKey("iam_users.id"), nullable=False, index=True),
    PrimaryKeyConstraint("group_id", "user_id"),
)

roles = Table(
    "iam_roles",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("name_key", String(64), nullable=False, unique=True),
    Column("path", String(IAM_PATH), nullable=False),
    Column("description", String(1000), nullable=False),
    Column("trust_policy", Text, nullable=False),
    Column("max_session_duration", Integer, nullable=False),
    Column("boundary_arn", String(ARN)),
    _created(),
)

managed_policies = Table(
    "iam_managed_policies",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("name_key", String(128), nullable=False, unique=True),
    Column("path", String(IAM_PATH), nullable=False),
    Column("description", String(1000), nullable=False),
    Column("default_version", String(16), nullable=False),
    # Version ids are never reused: after v1..v5 and deleting v2, the next one is v6.
    Column("next_version", Integer, nullable=False),
    _created(),
    Column("updated_at", UtcDateTime(), nullable=False),
)

policy_versions = Table(
    "iam_policy_versions",
    metadata,
    Column(
        "policy_id", String(ID), ForeignKey("iam_managed_policies.id", ondelete="CASCADE"), nullable=False
    ),
    Column("version_id", String(16), nullable=False),
    Column("document", Text, nullable=False),
    _created(),
    PrimaryKeyConstraint("policy_id", "version_id"),
)

policy_attachments = Table(
    "iam_policy_attachments",
    metadata,
    Column("principal_type", String(16), nullable=False),
    Column("principal_id", String(ID), nullable=False),
    Column("policy_arn", String(ARN), nullable=False, index=True),
    Column("attached_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("principal_type", "principal_id", "policy_arn"),
)

inline_policies = Table(
    "iam_inline_policies",
    metadata,
    Column("principal_type", String(16), nullable=False),
    Column("principal_id", String(ID), nullable=False),
    Column("name", String(128), nullable=False),
    Column("document", Text, nullable=False),
    PrimaryKeyConstraint("principal_type", "principal_id", "name"),
)

access_keys = Table(
    "iam_access_keys",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("user_id", String(ID), ForeignKey("iam_users.id"), nullable=False, index=True),
    Column("secret_sealed", Text, nullable=False),
    Column("secret_key_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    _created(),
    Column("last_used_at", UtcDateTime()),
    Column("last_used_service", String(64)),
    Column("last_used_region", String(32)),
)

oidc_providers = Table(
    "iam_oidc_providers",
    metadata,
    Column("url", String(512), primary_key=True),  # the issuer without its scheme, as in the ARN
    Column("client_ids", JSON, nullable=False),
    Column("thumbprints", JSON, nullable=False),
    _created(),
)

saml_providers = Table(
    "iam_saml_providers",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("metadata_document", Text, nullable=False),
    Column("valid_until", UtcDateTime()),
    _created(),
)

instance_profiles = Table(
    "iam_instance_profiles",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("name_key", String(128), nullable=False, unique=True),
    Column("path", String(IAM_PATH), nullable=False),
    _created(),
)

instance_profile_roles = Table(
    "iam_instance_profile_roles",
    metadata,
    Column("profile_id", String(ID), ForeignKey("iam_instance_profiles.id"), nullable=False),
    Column("role_id", String(ID), ForeignKey("iam_roles.id"), nullable=False, index=True),
    PrimaryKeyConstraint("profile_id", "role_id"),
)

tags = Table(
    "iam_tags",
    metadata,
    Column("entity_type", String(16), nullable=False),
    Column("entity_id", String(512), nullable=False),
    Column("key_lower", String(128), nullable=False),  # IAM refuses keys that differ only in case
    Column("key", String(128), nullable=False),
    Column("value", String(256), nullable=False),
    PrimaryKeyConstraint("entity_type", "entity_id", "key_lower"),
)

mfa_devices = Table(
    "iam_mfa_devices",
    metadata,
    Column("serial", String(512), primary_key=True),  # arn:aws:iam::ACCOUNT:mfa{path}{name}
    Column("name", String(226), nullable=False),
    Column("path", String(IAM_PATH), nullable=False),
    Column("seed_sealed", Text, nullable=False),
    Column("seed_key_id", String(64), nullable=False),
    Column("user_id", String(ID), ForeignKey("iam_users.id"), index=True),
    Column("enabled_at", UtcDateTime()),
    _created(),
)

revocations = Table(
    "iam_revocations",
    metadata,
    Column("kind", String(32), nullable=False),
    Column("scope", String(ARN), nullable=False),
    Column("cutoff", Double(), nullable=False),
    Column("revision", BigInteger, nullable=False, index=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("kind", "scope"),
)
