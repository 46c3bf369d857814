"""The IAM control plane's schema: principals, policies, credentials, providers, tags, revocations.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = 32
ARN = 2048
IAM_PATH = 512


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    revision_table = op.create_table(
        "iam_revision",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_iam_revision_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_revision")),
    )
    op.bulk_insert(revision_table, [{"id": 1, "revision": 0}])

    for table, name_length in (("iam_users", 64), ("iam_groups", 128)):
        columns = [
            sa.Column("id", sa.String(ID), nullable=False),
            sa.Column("name", sa.String(name_length), nullable=False),
            sa.Column("name_key", sa.String(name_length), nullable=False),
            sa.Column("path", sa.String(IAM_PATH), nullable=False),
        ]
        if table == "iam_users":
            columns.append(sa.Column("boundary_arn", sa.String(ARN), nullable=True))
        op.create_table(
            table,
            *columns,
            sa.Column("created_at", _utc(), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
            sa.UniqueConstraint("name_key", name=op.f(f"uq_{table}_name_key")),
        )

    op.create_table(
        "iam_group_members",
        sa.Column("group_id", sa.String(ID), nullable=False),
        sa.Column("user_id", sa.String(ID), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["iam_groups.id"], name=op.f("fk_iam_group_members_group_id_iam_groups")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["iam_users.id"], name=op.f("fk_iam_group_members_user_id_iam_users")
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_iam_group_members")),
    )
    op.create_index(op.f("ix_iam_group_members_user_id"), "iam_group_members", ["user_id"])

    op.create_table(
        "iam_roles",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("name_key", sa.String(64), nullable=False),
        sa.Column("path", sa.String(IAM_PATH), nullable=False),
        sa.Column("description", sa.String(1000), nullable=False),
        sa.Column("trust_policy", sa.Text(), nullable=False),
        sa.Column("max_session_duration", sa.Integer(), nullable=False),
        sa.Column("boundary_arn", sa.String(ARN), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_roles")),
        sa.UniqueConstraint("name_key", name=op.f("uq_iam_roles_name_key")),
    )

    op.create_table(
        "iam_managed_policies",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("name_key", sa.String(128), nullable=False),
        sa.Column("path", sa.String(IAM_PATH), nullable=False),
        sa.Column("description", sa.String(1000), nullable=False),
        sa.Column("default_version", sa.String(16), nullable=False),
        sa.Column("next_version", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_managed_policies")),
        sa.UniqueConstraint("name_key", name=op.f("uq_iam_managed_policies_name_key")),
    )
    op.create_table(
        "iam_policy_versions",
        sa.Column("policy_id", sa.String(ID), nullable=False),
        sa.Column("version_id", sa.String(16), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["iam_managed_policies.id"],
            name=op.f("fk_iam_policy_versions_policy_id_iam_managed_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("policy_id", "version_id", name=op.f("pk_iam_policy_versions")),
    )
    op.create_table(
        "iam_policy_attachments",
        sa.Column("principal_type", sa.String(16), nullable=False),
        sa.Column("principal_id", sa.String(ID), nullable=False),
        sa.Column("policy_arn", sa.String(ARN), nullable=False),
        sa.Column("attached_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint(
            "principal_type", "principal_id", "policy_arn", name=op.f("pk_iam_policy_attachments")
        ),
    )
    op.create_index(op.f("ix_iam_policy_attachments_policy_arn"), "iam_policy_attachments", ["policy_arn"])
    op.create_table(
        "iam_inline_policies",
        sa.Column("principal_type", sa.String(16), nullable=False),
        sa.Column("principal_id", sa.String(ID), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "principal_type", "principal_id", "name", name=op.f("pk_iam_inline_policies")
        ),
    )

    op.create_table(
        "iam_access_keys",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("user_id", sa.String(ID), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("secret_key_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("last_used_at", _utc(), nullable=True),
        sa.Column("last_used_service", sa.String(64), nullable=True),
        sa.Column("last_used_region", sa.String(32), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["iam_users.id"], name=op.f("fk_iam_access_keys_user_id_iam_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_access_keys")),
    )
    op.create_index(op.f("ix_iam_access_keys_user_id"), "iam_access_keys", ["user_id"])

    op.create_table(
        "iam_oidc_providers",
        sa.Column("url", sa.String(512), nullable=False),
        sa.Column("client_ids", sa.JSON(), nullable=False),
        sa.Column("thumbprints", sa.JSON(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("url", name=op.f("pk_iam_oidc_providers")),
    )
    op.create_table(
        "iam_saml_providers",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("metadata_document", sa.Text(), nullable=False),
        sa.Column("valid_until", _utc(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_iam_saml_providers")),
    )

    op.create_table(
        "iam_instance_profiles",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("name_key", sa.String(128), nullable=False),
        sa.Column("path", sa.String(IAM_PATH), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_instance_profiles")),
        sa.UniqueConstraint("name_key", name=op.f("uq_iam_instance_profiles_name_key")),
    )
    op.create_table(
        "iam_instance_profile_roles",
        sa.Column("profile_id", sa.String(ID), nullable=False),
        sa.Column("role_id", sa.String(ID), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["iam_instance_profiles.id"],
            name=op.f("fk_iam_instance_profile_roles_profile_id_iam_instance_profiles"),
        ),
        sa.ForeignKeyConstraint(
            ["role_id"], ["iam_roles.id"], name=op.f("fk_iam_instance_profile_roles_role_id_iam_roles")
        ),
        sa.PrimaryKeyConstraint("profile_id", "role_id", name=op.f("pk_iam_instance_profile_roles")),
    )
    op.create_index(op.f("ix_iam_instance_profile_roles_role_id"), "iam_instance_profile_roles", ["role_id"])

    op.create_table(
        "iam_tags",
        sa.Column("entity_type", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.String(512), nullable=False),
        sa.Column("key_lower", sa.String(128), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("entity_type", "entity_id", "key_lower", name=op.f("pk_iam_tags")),
    )

    op.create_table(
        "iam_mfa_devices",
        sa.Column("serial", sa.String(512), nullable=False),
        sa.Column("name", sa.String(226), nullable=False),
        sa.Column("path", sa.String(IAM_PATH), nullable=False),
        sa.Column("seed_sealed", sa.Text(), nullable=False),
        sa.Column("seed_key_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(ID), nullable=True),
        sa.Column("enabled_at", _utc(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["iam_users.id"], name=op.f("fk_iam_mfa_devices_user_id_iam_users")
        ),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_iam_mfa_devices")),
    )
    op.create_index(op.f("ix_iam_mfa_devices_user_id"), "iam_mfa_devices", ["user_id"])

    op.create_table(
        "iam_revocations",
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(ARN), nullable=False),
        sa.Column("cutoff", sa.Double(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "scope", name=op.f("pk_iam_revocations")),
    )
    op.create_index(op.f("ix_iam_revocations_revision"), "iam_revocations", ["revision"])


def downgrade() -> None:
    for table in (
        "iam_revocations",
        "iam_mfa_devices",
        "iam_tags",
        "iam_instance_profile_roles",
        "iam_instance_profiles",
        "iam_saml_providers",
        "iam_oidc_providers",
        "iam_access_keys",
        "iam_inline_policies",
        "iam_policy_attachments",
        "iam_policy_versions",
        "iam_managed_policies",
        "iam_roles",
        "iam_group_members",
        "iam_groups",
        "iam_users",
        "iam_revision",
    ):
        op.drop_table(table)
