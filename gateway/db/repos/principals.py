"""Users, groups (and membership), roles and instance profiles.

Deleting refuses, as IAM does, while the entity still has what must be removed first (access keys,
MFA devices, group memberships, attached or inline policies, instance profiles): the
:class:`~gateway.errors.DeleteConflict` names it and nothing is changed. Tags go with the entity.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, final

from sqlalchemy import Row, delete, insert, select

from gateway.db import schema
from gateway.db.ids import new_entity_id
from gateway.db.records import (
    GroupRecord,
    InstanceProfileRecord,
    MembershipRecord,
    PrincipalType,
    RoleRecord,
    Tags,
    UserRecord,
    iam_arn,
)
from gateway.db.repos.base import NamedRepo, by_code_point
from gateway.errors import DeleteConflict, EntityAlreadyExists, NoSuchEntity

__all__ = ["GroupRepo", "InstanceProfileRepo", "RoleRepo", "UserRepo"]


class _PrincipalRepo(NamedRepo[Any]):
    """Principals hold policies: deleting one needs them detached and deleted first."""

    __slots__ = ()
    principal_type: PrincipalType

    async def _refuse_if_policies(self, principal_id: str) -> None:
        a, i = schema.policy_attachments, schema.inline_policies
        if await self._count(a, a.c.principal_type == self.principal_type, a.c.principal_id == principal_id):
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        if await self._count(i, i.c.principal_type == self.principal_type, i.c.principal_id == principal_id):
            raise DeleteConflict("Cannot delete entity, must delete policies first.")


@final
class UserRepo(_PrincipalRepo):
    """IAM users."""

    __slots__ = ()
    table = schema.users
    noun = "user"
    taggable = "user"
    principal_type = "user"

    def _record(self, row: Row[Any], tags: Tags) -> UserRecord:
        return UserRecord(
            id=row.id,
            name=row.name,
            path=row.path,
            arn=iam_arn(self._ctx.account_id, "user", row.path, row.name),
            boundary_arn=row.boundary_arn,
            created_at=row.created_at,
            tags=tags,
        )

    async def create(
        self,
        name: str,
        *,
        path: str = "/",
        boundary_arn: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> UserRecord:
        """Create a user; raises :class:`~gateway.errors.EntityAlreadyExists` if the name is taken."""
        values = {
            "id": new_entity_id("AIDA"),
            "path": path,
            "boundary_arn": boundary_arn,
            "created_at": self.now(),
        }
        record: UserRecord = await self._insert(name, values, tags)
        return record

    async def update(
        self, name: str, *, new_name: str | None = None, new_path: str | None = None
    ) -> UserRecord:
        """Rename a user or move it to another path (its id, keys and policies stay)."""
        record: UserRecord = await self._rename(name, new_name, new_path)
        return record

    async def set_boundary(self, name: str, boundary_arn: str | None) -> UserRecord:
        """Set (or, with ``None``, remove) the user's permissions boundary."""
        record: UserRecord = await self._update(name, {"boundary_arn": boundary_arn})
        return record

    async def delete(self, name: str) -> None:
        """Delete a user that has no access keys, MFA devices, groups or policies left."""
        row = await self._require_row(name)
        k, m, g = schema.access_keys, schema.mfa_devices, schema.group_members
        if await self._count(k, k.c.user_id == row.id):
            raise DeleteConflict("Cannot delete entity, must delete access keys first.")
        if await self._count(m, m.c.user_id == row.id):
            raise DeleteConflict("Cannot delete entity, must delete MFA device first.")
        if await self._count(g, g.c.user_id == row.id):
            raise DeleteConflict("Cannot delete entity, must remove user from all groups first.")
        await self._refuse_if_policies(row.id)
        await self._delete_row(row)


@final
class GroupRepo(_PrincipalRepo):
    """IAM groups and who is in them (groups carry no tags in IAM)."""

    __slots__ = ()
    table = schema.groups
    noun = "group"
    principal_type = "group"
    name_limit = 128

    def _record(self, row: Row[Any], tags: Tags) -> GroupRecord:
        return GroupRecord(
            id=row.id,
            name=row.name,
            path=row.path,
            arn=iam_arn(self._ctx.account_id, "group", row.path, row.name),
            created_at=row.created_at,
        )

    async def create(self, name: str, *, path: str = "/") -> GroupRecord:
        """Create a group; raises :class:`~gateway.errors.EntityAlreadyExists` if the name is taken."""
        record: GroupRecord = await self._insert(
            name, {"id": new_entity_id("AGPA"), "path": path, "created_at": self.now()}, None
        )
        return record

    async def update(
        self, name: str, *, new_name: str | None = None, new_path: str | None = None
    ) -> GroupRecord:
        """Rename a group or move it to another path."""
        record: GroupRecord = await self._rename(name, new_name, new_path)
        return record

    async def delete(self, name: str) -> None:
        """Delete a group that has no members and no policies left."""
        row = await self._require_row(name)
        g = schema.group_members
        if await self._count(g, g.c.group_id == row.id):
            raise DeleteConflict("Cannot delete entity, must remove users from group first.")
        await self._refuse_if_policies(row.id)
        await self._delete_row(row)

    async def add_member(self, group_id: str, user_id: str) -> bool:
        """Put the user in the group; ``False`` if it already was. Unknown ids: NoSuchEntity."""
        await self._require_ids(group_id, user_id)
        g = schema.group_members
        if await self._count(g, g.c.group_id == group_id, g.c.user_id == user_id):
            return False
        await self._write(insert(g).values(group_id=group_id, user_id=user_id))
        return True

    async def remove_member(self, group_id: str, user_id: str) -> bool:
        """Take the user out of the group; ``False`` if it was not in it."""
        g = schema.group_members
        result = await self._write(delete(g).where(g.c.group_id == group_id, g.c.user_id == user_id))
        return bool(result.rowcount)

    async def members(self, group_id: str) -> builtins.list[UserRecord]:
        """The users in a group, by name."""
        u, g = schema.users, schema.group_members
        rows = await self._rows(
            select(u)
            .join(g, g.c.user_id == u.c.id)
            .where(g.c.group_id == group_id)
            .order_by(by_code_point(u.c.name_key))
        )
        return await UserRepo(self._ctx)._build_many(rows)

    async def groups_for_user(self, user_id: str) -> builtins.list[GroupRecord]:
        """The groups a user is in, by name (also the count the 10-groups quota checks)."""
        t, g = self.table, schema.group_members
        rows = await self._rows(
            select(t)
            .join(g, g.c.group_id == t.c.id)
            .where(g.c.user_id == user_id)
            .order_by(by_code_point(t.c.name_key))
        )
        return [self._record(r, ()) for r in rows]

    async def memberships(self) -> builtins.list[MembershipRecord]:
        """Every membership (for the snapshot)."""
        g = schema.group_members
        rows = await self._rows(select(g).order_by(g.c.group_id, g.c.user_id))
        return [MembershipRecord(group_id=r.group_id, user_id=r.user_id) for r in rows]

    async def _require_ids(self, group_id: str, user_id: str) -> None:
        if await self.get_by_id(group_id) is None:
            raise NoSuchEntity(f"The group with id {group_id} cannot be found.")
        if await self._count(schema.users, schema.users.c.id == user_id) == 0:
            raise NoSuchEntity(f"The user with id {user_id} cannot be found.")


@final
class RoleRepo(_PrincipalRepo):
    """Roles created through the API."""

    __slots__ = ()
    table = schema.roles
    noun = "role"
    taggable = "role"
    principal_type = "role"

    def _record(self, row: Row[Any], tags: Tags) -> RoleRecord:
        return RoleRecord(
            id=row.id,
            name=row.name,
            path=row.path,
            arn=iam_arn(self._ctx.account_id, "role", row.path, row.name),
            description=row.description,
            trust_policy=row.trust_policy,
            max_session_duration=row.max_session_duration,
            boundary_arn=row.boundary_arn,
            created_at=row.created_at,
            tags=tags,
        )

    async def create(
        self,
        name: str,
        *,
        trust_policy: str,
        path: str = "/",
        description: str = "",
        max_session_duration: int = 3600,
        boundary_arn: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RoleRecord:
        """Create a role; raises :class:`~gateway.errors.EntityAlreadyExists` if the name is taken."""
        values = {
            "id": new_entity_id("AROA"),
            "path": path,
            "description": description,
            "trust_policy": trust_policy,
            "max_session_duration": max_session_duration,
            "boundary_arn": boundary_arn,
            "created_at": self.now(),
        }
        record: RoleRecord = await self._insert(name, values, tags)
        return record

    async def update(
        self,
        name: str,
        *,
        description: str | None = None,
        max_session_duration: int | None = None,
    ) -> RoleRecord:
        """Change a role's description or longest session (roles cannot be renamed)."""
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = description
        if max_session_duration is not None:
            values["max_session_duration"] = max_session_duration
        record: RoleRecord = await self._update(name, values)
        return record

    async def set_trust_policy(self, name: str, document: str) -> RoleRecord:
        """Replace the role's trust policy (UpdateAssumeRolePolicy)."""
        record: RoleRecord = await self._update(name, {"trust_policy": document})
        return record

    async def set_boundary(self, name: str, boundary_arn: str | None) -> RoleRecord:
        """Set (or, with ``None``, remove) the role's permissions boundary."""
        record: RoleRecord = await self._update(name, {"boundary_arn": boundary_arn})
        return record

    async def delete(self, name: str) -> None:
        """Delete a role that is in no instance profile and has no policies left."""
        row = await self._require_row(name)
        p = schema.instance_profile_roles
        if await self._count(p, p.c.role_id == row.id):
            raise DeleteConflict("Cannot delete entity, must remove roles from instance profile first.")
        await self._refuse_if_policies(row.id)
        await self._delete_row(row)


@final
class InstanceProfileRepo(NamedRepo[InstanceProfileRecord]):
    """Instance profiles (as far as tools need them to manage roles) and their roles."""

    __slots__ = ()
    table = schema.instance_profiles
    noun = "instance profile"
    taggable = "instance-profile"
    name_limit = 128

    def _missing(self, name: str) -> NoSuchEntity:
        return NoSuchEntity(f"Instance Profile {name} cannot be found.")

    def _exists(self, name: str) -> EntityAlreadyExists:
        return EntityAlreadyExists(f"Instance Profile {name} already exists.")

    async def _build(self, row: Row[Any]) -> InstanceProfileRecord:
        (built,) = await self._build_many([row])
        return built

    async def _build_many(self, rows: Sequence[Row[Any]]) -> builtins.list[InstanceProfileRecord]:
        p = schema.instance_profile_roles
        ids = [r.id for r in rows]
        links = (
            await self._rows(select(p).where(p.c.profile_id.in_(ids)).order_by(p.c.role_id)) if ids else []
        )
        roles: dict[str, builtins.list[str]] = {}
        for link in links:
            roles.setdefault(link.profile_id, []).append(link.role_id)
        tags = await self._tags_of_type("instance-profile")
        return [
            InstanceProfileRecord(
                id=r.id,
                name=r.name,
                path=r.path,
                arn=iam_arn(self._ctx.account_id, "instance-profile", r.path, r.name),
                created_at=r.created_at,
                role_ids=tuple(roles.get(r.id, ())),
                tags=tags.get(r.id, ()),
            )
            for r in rows
        ]

    async def create(
        self, name: str, *, path: str = "/", tags: Mapping[str, str] | None = None
    ) -> InstanceProfileRecord:
        """Create an instance profile."""
        return await self._insert(
            name, {"id": new_entity_id("AIPA"), "path": path, "created_at": self.now()}, tags
        )

    async def delete(self, name: str) -> None:
        """Delete an instance profile that holds no role."""
        row = await self._require_row(name)
        p = schema.instance_profile_roles
        if await self._count(p, p.c.profile_id == row.id):
            raise DeleteConflict("Cannot delete entity, must remove roles from instance profile first.")
        await self._delete_row(row)

    async def add_role(self, profile_id: str, role_id: str) -> bool:
        """Put a role in the profile; ``False`` if it already was (the one-role quota is the API's)."""
        p = schema.instance_profile_roles
        if await self.get_by_id(profile_id) is None:
            raise NoSuchEntity(f"Instance Profile with id {profile_id} cannot be found.")
        if await self._count(schema.roles, schema.roles.c.id == role_id) == 0:
            raise NoSuchEntity(f"The role with id {role_id} cannot be found.")
        if await self._count(p, p.c.profile_id == profile_id, p.c.role_id == role_id):
            return False
        await self._write(insert(p).values(profile_id=profile_id, role_id=role_id))
        return True

    async def remove_role(self, profile_id: str, role_id: str) -> bool:
        """Take a role out of the profile; ``False`` if it was not in it."""
        p = schema.instance_profile_roles
        result = await self._write(delete(p).where(p.c.profile_id == profile_id, p.c.role_id == role_id))
        return bool(result.rowcount)

    async def for_role(self, role_id: str) -> builtins.list[InstanceProfileRecord]:
        """The instance profiles holding a role (ListInstanceProfilesForRole)."""
        t, p = self.table, schema.instance_profile_roles
        rows = await self._rows(
            select(t)
            .join(p, p.c.profile_id == t.c.id)
            .where(p.c.role_id == role_id)
            .order_by(by_code_point(t.c.name_key))
        )
        return await self._build_many(rows)
