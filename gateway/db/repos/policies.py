"""Managed policies and their versions, attachments, and inline policies.

A managed policy is created with version ``v1`` as its default; later versions take the next
number, never reused. Attachments name the policy by ARN, so a policy the YAML declares can be
attached like one created through the API; deleting a managed policy that is still attached, or
that still has versions besides the default, is a :class:`~gateway.errors.DeleteConflict` as on AWS.
Documents are stored as the exact text given (IAM returns documents as submitted); the API layer
validates them with the policy engine before they get here.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, final

from sqlalchemy import Row, delete, insert, select, update

from gateway.db import schema
from gateway.db.ids import new_entity_id
from gateway.db.records import (
    AttachmentRecord,
    InlinePolicyRecord,
    ManagedPolicyRecord,
    PolicyVersionRecord,
    PrincipalType,
    Tags,
    iam_arn,
)
from gateway.db.repos.base import NamedRepo, Repo, check_length
from gateway.errors import DeleteConflict, EntityAlreadyExists, NoSuchEntity

__all__ = ["AttachmentRepo", "InlinePolicyRepo", "ManagedPolicyRepo"]


@final
class ManagedPolicyRepo(NamedRepo[ManagedPolicyRecord]):
    """Customer managed policies with versions."""

    __slots__ = ()
    table = schema.managed_policies
    noun = "policy"
    taggable = "policy"
    name_limit = 128

    def _missing(self, name: str) -> NoSuchEntity:
        return NoSuchEntity(f"Policy {name} does not exist or is not attachable.")

    def _exists(self, name: str) -> EntityAlreadyExists:
        return EntityAlreadyExists(f"A policy called {name} already exists. Duplicate names are not allowed.")

    def _record(self, row: Row[Any], tags: Tags) -> ManagedPolicyRecord:
        return ManagedPolicyRecord(
            id=row.id,
            name=row.name,
            path=row.path,
            arn=iam_arn(self._ctx.account_id, "policy", row.path, row.name),
            description=row.description,
            default_version=row.default_version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            tags=tags,
        )

    async def get_by_arn(self, arn: str) -> ManagedPolicyRecord | None:
        """The policy whose ARN is exactly ``arn``, or ``None`` (a YAML policy is not in here)."""
        name = arn.rsplit("/", 1)[-1]
        record = await self.get(name)
        return record if record is not None and record.arn == arn else None

    async def require_arn(self, arn: str) -> ManagedPolicyRecord:
        """The policy at ``arn``; raises :class:`~gateway.errors.NoSuchEntity` naming the ARN."""
        record = await self.get_by_arn(arn)
        if record is None:
            raise NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")
        return record

    async def create(
        self,
        name: str,
        *,
        document: str,
        path: str = "/",
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> ManagedPolicyRecord:
        """Create a policy whose first version, ``v1``, is ``document`` and is the default."""
        now = self.now()
        policy_id = new_entity_id("ANPA")
        values = {
            "id": policy_id,
            "path": path,
            "description": description,
            "default_version": "v1",
            "next_version": 2,
            "created_at": now,
            "updated_at": now,
        }
        record = await self._insert(name, values, tags)
        await self._write(
            insert(schema.policy_versions).values(
                policy_id=policy_id, version_id="v1", document=document, created_at=now
            )
        )
        return record

    async def delete(self, arn: str) -> None:
        """Delete a policy that is attached to nothing and has only its default version left."""
        record = await self.require_arn(arn)
        a = schema.policy_attachments
        if await self._count(a, a.c.policy_arn == arn):
            raise DeleteConflict("Cannot delete a policy attached to entities.")
        if await self.count_versions(record.id) > 1:
            raise DeleteConflict(
                "This policy has more than one version. Before you delete a policy, you must delete the "
                "policy's versions. The default version is deleted with the policy."
            )
        row = await self._require_row(record.name)
        await self._write(delete(schema.policy_versions).where(schema.policy_versions.c.policy_id == row.id))
        await self._delete_row(row)

    # Versions.

    def _version(self, row: Row[Any], default: str) -> PolicyVersionRecord:
        return PolicyVersionRecord(
            policy_id=row.policy_id,
            version_id=row.version_id,
            document=row.document,
            created_at=row.created_at,
            is_default=row.version_id == default,
        )

    async def _policy_row(self, policy_id: str) -> Row[Any]:
        row = await self._row(select(self.table).where(self.table.c.id == policy_id))
        if row is None:
            raise NoSuchEntity(f"Policy with id {policy_id} does not exist or is not attachable.")
        return row

    async def count_versions(self, policy_id: str) -> int:
        """How many versions the policy has (AWS allows five)."""
        v = schema.policy_versions
        return await self._count(v, v.c.policy_id == policy_id)

    async def versions(self, policy_id: str) -> builtins.list[PolicyVersionRecord]:
        """The policy's versions, newest first (as ListPolicyVersions answers)."""
        policy = await self._policy_row(policy_id)
        v = schema.policy_versions
        rows = await self._rows(select(v).where(v.c.policy_id == policy_id))
        records = [self._version(r, policy.default_version) for r in rows]
        return sorted(records, key=lambda r: int(r.version_id[1:]), reverse=True)

    async def all_versions(self) -> builtins.list[PolicyVersionRecord]:
        """Every version of every policy (for the snapshot)."""
        v, p = schema.policy_versions, self.table
        rows = await self._rows(
            select(v, p.c.default_version)
            .join(p, p.c.id == v.c.policy_id)
            .order_by(v.c.policy_id, v.c.version_id)
        )
        return [self._version(r, r.default_version) for r in rows]

    async def get_version(self, policy_id: str, version_id: str) -> PolicyVersionRecord | None:
        """One version, or ``None``."""
        policy = await self._policy_row(policy_id)
        v = schema.policy_versions
        row = await self._row(select(v).where(v.c.policy_id == policy_id, v.c.version_id == version_id))
        return None if row is None else self._version(row, policy.default_version)

    async def default_version(self, policy_id: str) -> PolicyVersionRecord:
        """The version in force."""
        policy = await self._policy_row(policy_id)
        version = await self.get_version(policy_id, policy.default_version)
        assert version is not None, "a policy always has its default version"
        return version

    async def create_version(
        self, policy_id: str, document: str, *, set_default: bool = False
    ) -> PolicyVersionRecord:
        """Add the next version (the five-versions quota is the API's, counted in this transaction)."""
        policy = await self._policy_row(policy_id)
        version_id = f"v{policy.next_version}"
        now = self.now()
        await self._write(
            insert(schema.policy_versions).values(
                policy_id=policy_id, version_id=version_id, document=document, created_at=now
            )
        )
        values: dict[str, Any] = {"next_version": policy.next_version + 1, "updated_at": now}
        if set_default:
            values["default_version"] = version_id
        await self._write(update(self.table).where(self.table.c.id == policy_id).values(**values))
        version = await self.get_version(policy_id, version_id)
        assert version is not None
        return version

    async def set_default_version(self, policy_id: str, version_id: str) -> None:
        """Make an existing version the one in force."""
        if await self.get_version(policy_id, version_id) is None:
            raise NoSuchEntity(f"Policy version {version_id} does not exist or is not attachable.")
        await self._write(
            update(self.table)
            .where(self.table.c.id == policy_id)
            .values(default_version=version_id, updated_at=self.now())
        )

    async def delete_version(self, policy_id: str, version_id: str) -> None:
        """Delete a version that is not the default."""
        version = await self.get_version(policy_id, version_id)
        if version is None:
            raise NoSuchEntity(f"Policy version {version_id} does not exist or is not attachable.")
        if version.is_default:
            raise DeleteConflict("Cannot delete the default version of a policy.")
        v = schema.policy_versions
        await self._write(delete(v).where(v.c.policy_id == policy_id, v.c.version_id == version_id))


@final
class AttachmentRepo(Repo):
    """Managed policies attached to users, groups and roles."""

    __slots__ = ()

    @staticmethod
    def _record(row: Row[Any]) -> AttachmentRecord:
        return AttachmentRecord(
            principal_type=row.principal_type,
            principal_id=row.principal_id,
            policy_arn=row.policy_arn,
            attached_at=row.attached_at,
        )

    async def attach(self, principal_type: PrincipalType, principal_id: str, policy_arn: str) -> bool:
        """Attach a policy; ``False`` if it already was (the ten-policies quota is the API's)."""
        a = schema.policy_attachments
        check_length(policy_arn, schema.ARN, "a policy ARN")
        where = (
            a.c.principal_type == principal_type,
            a.c.principal_id == principal_id,
            a.c.policy_arn == policy_arn,
        )
        if await self._count(a, *where):
            return False
        await self._write(
            insert(a).values(
                principal_type=principal_type,
                principal_id=principal_id,
                policy_arn=policy_arn,
                attached_at=self.now(),
            )
        )
        return True

    async def detach(self, principal_type: PrincipalType, principal_id: str, policy_arn: str) -> bool:
        """Detach a policy; ``False`` if it was not attached."""
        a = schema.policy_attachments
        result = await self._write(
            delete(a).where(
                a.c.principal_type == principal_type,
                a.c.principal_id == principal_id,
                a.c.policy_arn == policy_arn,
            )
        )
        return bool(result.rowcount)

    async def for_principal(self, principal_type: PrincipalType, principal_id: str) -> list[AttachmentRecord]:
        """The policies attached to one principal, by ARN."""
        a = schema.policy_attachments
        rows = await self._rows(
            select(a)
            .where(a.c.principal_type == principal_type, a.c.principal_id == principal_id)
            .order_by(a.c.policy_arn)
        )
        return [self._record(r) for r in rows]

    async def for_policy(self, policy_arn: str) -> list[AttachmentRecord]:
        """Who a policy is attached to (ListEntitiesForPolicy; also the DeleteConflict check)."""
        a = schema.policy_attachments
        rows = await self._rows(
            select(a).where(a.c.policy_arn == policy_arn).order_by(a.c.principal_type, a.c.principal_id)
        )
        return [self._record(r) for r in rows]

    async def all(self) -> list[AttachmentRecord]:
        """Every attachment (for the snapshot)."""
        a = schema.policy_attachments
        rows = await self._rows(select(a).order_by(a.c.principal_type, a.c.principal_id, a.c.policy_arn))
        return [self._record(r) for r in rows]


@final
class InlinePolicyRepo(Repo):
    """Policies embedded in users, groups and roles."""

    __slots__ = ()

    @staticmethod
    def _record(row: Row[Any]) -> InlinePolicyRecord:
        return InlinePolicyRecord(
            principal_type=row.principal_type,
            principal_id=row.principal_id,
            name=row.name,
            document=row.document,
        )

    async def put(self, principal_type: PrincipalType, principal_id: str, name: str, document: str) -> bool:
        """Create or replace an inline policy; ``True`` if it is new (PutUserPolicy and friends)."""
        check_length(name, 128, "a policy name")
        i = schema.inline_policies
        where = (i.c.principal_type == principal_type, i.c.principal_id == principal_id, i.c.name == name)
        if await self._count(i, *where):
            await self._write(update(i).where(*where).values(document=document))
            return False
        await self._write(
            insert(i).values(
                principal_type=principal_type, principal_id=principal_id, name=name, document=document
            )
        )
        return True

    async def get(
        self, principal_type: PrincipalType, principal_id: str, name: str
    ) -> InlinePolicyRecord | None:
        """One inline policy, or ``None``."""
        i = schema.inline_policies
        row = await self._row(
            select(i).where(
                i.c.principal_type == principal_type, i.c.principal_id == principal_id, i.c.name == name
            )
        )
        return None if row is None else self._record(row)

    async def for_principal(
        self, principal_type: PrincipalType, principal_id: str
    ) -> list[InlinePolicyRecord]:
        """One principal's inline policies, by name."""
        i = schema.inline_policies
        rows = await self._rows(
            select(i)
            .where(i.c.principal_type == principal_type, i.c.principal_id == principal_id)
            .order_by(i.c.name)
        )
        return [self._record(r) for r in rows]

    async def delete(self, principal_type: PrincipalType, principal_id: str, name: str) -> bool:
        """Delete an inline policy; ``False`` if there was none of that name."""
        i = schema.inline_policies
        result = await self._write(
            delete(i).where(
                i.c.principal_type == principal_type, i.c.principal_id == principal_id, i.c.name == name
            )
        )
        return bool(result.rowcount)

    async def all(self) -> list[InlinePolicyRecord]:
        """Every inline policy (for the snapshot)."""
        i = schema.inline_policies
        rows = await self._rows(select(i).order_by(i.c.principal_type, i.c.principal_id, i.c.name))
        return [self._record(r) for r in rows]
