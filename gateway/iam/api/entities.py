"""Entities as IAM actions see them: their resource ARNs, whether the configuration declares them,
and the shapes IAM answers them in (``User``, ``Group``...), shared by every action family.

Users and groups come from two sources, as roles and managed policies do: the configuration
file's (read from the catalog snapshot, shown as database records with the creation date
:data:`CONFIG_EPOCH`) and the database's. Every read finds both: :func:`find_user` and
:func:`find_group` look the configuration's up first (a name it declares is taken: the collision
rule of :mod:`gateway.iam.records`), and :func:`users_page` and :func:`groups_page` list both in
one ordering (by name, case-insensitively) for ``Marker`` paging. Writes to the configuration's are
refused before any handler runs (``UnmodifiableEntity``, see :func:`declared`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from gateway.db.records import GroupRecord, UserRecord, iam_arn
from gateway.iam.api.action import ActionContext, Declared, Resource
from gateway.iam.api.documents import config_text
from gateway.iam.api.paging import Page, PageRequest, merged_page
from gateway.iam.api.params import Args
from gateway.iam.catalog import CatalogSnapshot, Group, User

__all__ = [
    "CONFIG_EPOCH",
    "GROUP",
    "USER",
    "Noun",
    "attached_policy_arns",
    "boundary_shape",
    "configured_group",
    "configured_user",
    "declared",
    "find_group",
    "find_user",
    "group_members",
    "group_record",
    "group_resource",
    "group_shape",
    "groups_of",
    "groups_page",
    "inline_documents",
    "list_resource",
    "named_group",
    "named_or_calling_user",
    "named_user",
    "renamed",
    "require_group",
    "require_user",
    "tag_list",
    "user_record",
    "user_resource",
    "user_shape",
    "users_page",
]

_R = TypeVar("_R", UserRecord, GroupRecord)

#: CloudTrail's resource types.
USER = "AWS::IAM::User"
GROUP = "AWS::IAM::Group"
#: The creation date shown for what the configuration file declares (it has none of its own).
CONFIG_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Noun = Literal["user", "group", "role", "policy"]


def declared(snapshot: CatalogSnapshot, noun: Noun, name: str) -> Declared | None:
    """The entity ``name`` of kind ``noun`` if the configuration file declares it.

    The catalog knows where each user, group, role and managed policy comes from
    (:meth:`CatalogSnapshot.source_of`, names compared case-insensitively as IAM does): a name the
    YAML declares is taken (the collision rule of :mod:`gateway.iam.records`).
    """
    return Declared(noun, name) if snapshot.source_of(noun, name) == "config" else None


def list_resource(ctx: ActionContext, resource: str, path_prefix: str | None) -> Resource:
    """What a List action is authorized on: ``arn:aws:iam::ACCOUNT:user/`` (with the prefix)."""
    return Resource(f"arn:aws:iam::{ctx.account_id}:{resource}{path_prefix or '/'}")


def configured_user(snapshot: CatalogSnapshot, name: str) -> User | None:
    """The user called ``name`` (in any case) if the configuration file declares it."""
    user = snapshot.user_named(name)
    return user if user is not None and user.source == "config" else None


def configured_group(snapshot: CatalogSnapshot, name: str) -> Group | None:
    """The group called ``name`` (in any case) if the configuration file declares it."""
    group = snapshot.group_named(name)
    return group if group is not None and group.source == "config" else None


def user_record(user: User) -> UserRecord:
    """A configuration user as the actions show a user."""
    tags = tuple(sorted(user.tags.items(), key=lambda t: t[0].lower()))
    return UserRecord(user.user_id, user.name, user.path, user.arn, user.boundary_arn, CONFIG_EPOCH, tags)


def group_record(group: Group) -> GroupRecord:
    """A configuration group as the actions show a group."""
    return GroupRecord(group.group_id, group.name, group.path, group.arn, CONFIG_EPOCH)


async def find_user(ctx: ActionContext, name: str) -> UserRecord | None:
    """The user called ``name`` (in any case): the configuration's, the database's, or ``None``."""
    configured = configured_user(ctx.snapshot, name)
    return user_record(configured) if configured is not None else await ctx.tx.users.get(name)


async def require_user(ctx: ActionContext, name: str) -> UserRecord:
    """The user called ``name``; ``NoSuchEntity`` otherwise."""
    configured = configured_user(ctx.snapshot, name)
    return user_record(configured) if configured is not None else await ctx.tx.users.require(name)


async def find_group(ctx: ActionContext, name: str) -> GroupRecord | None:
    """The group called ``name`` (in any case): the configuration's, the database's, or ``None``."""
    configured = configured_group(ctx.snapshot, name)
    return group_record(configured) if configured is not None else await ctx.tx.groups.get(name)


async def require_group(ctx: ActionContext, name: str) -> GroupRecord:
    """The group called ``name``; ``NoSuchEntity`` otherwise."""
    configured = configured_group(ctx.snapshot, name)
    return group_record(configured) if configured is not None else await ctx.tx.groups.require(name)


def _taken(snapshot: CatalogSnapshot, kind: Literal["user", "group"]) -> set[str]:
    entities = snapshot.users.values() if kind == "user" else snapshot.groups.values()
    return {e.name.lower() for e in entities if e.source == "config"}


async def users_page(ctx: ActionContext, path_prefix: str, request: PageRequest) -> Page[UserRecord]:
    """One page of the users whose path starts with ``path_prefix``, both sources, by name."""
    declared_ = [user_record(u) for u in ctx.snapshot.users.values() if u.source == "config"]
    return await _both(ctx, declared_, ctx.tx.users.list, path_prefix, request, "user")


async def groups_page(ctx: ActionContext, path_prefix: str, request: PageRequest) -> Page[GroupRecord]:
    """One page of the groups whose path starts with ``path_prefix``, both sources, by name."""
    declared_ = [group_record(g) for g in ctx.snapshot.groups.values() if g.source == "config"]
    return await _both(ctx, declared_, ctx.tx.groups.list, path_prefix, request, "group")


async def _both(
    ctx: ActionContext,
    declared_: list[_R],
    listed: Callable[..., Awaitable[list[_R]]],
    path_prefix: str,
    request: PageRequest,
    kind: Literal["user", "group"],
) -> Page[_R]:
    async def stored(limit: int) -> list[_R]:
        return await listed(path_prefix, after=request.marker, limit=limit)

    return await merged_page(
        [e for e in declared_ if e.path.startswith(path_prefix)],
        stored,
        request,
        lambda e: e.name.lower(),
        taken=_taken(ctx.snapshot, kind),
    )


async def group_members(ctx: ActionContext, group: GroupRecord) -> list[UserRecord]:
    """The users in ``group``: a configuration group's are configuration users (nothing else can
    join it); a database group's are database users (not those a configuration user shadows)."""
    if configured_group(ctx.snapshot, group.name) is not None:
        return [
            user_record(u)
            for u in ctx.snapshot.users.values()
            if u.source == "config" and any(g.arn == group.arn for g in u.groups)
        ]
    taken = _taken(ctx.snapshot, "user")
    return [u for u in await ctx.tx.groups.members(group.id) if u.name.lower() not in taken]


async def groups_of(ctx: ActionContext, user: UserRecord) -> list[GroupRecord]:
    """The groups ``user`` is in (a configuration user's are the ones the configuration names)."""
    configured = configured_user(ctx.snapshot, user.name)
    if configured is not None:
        return [group_record(g) for g in configured.groups]
    taken = _taken(ctx.snapshot, "group")
    return [g for g in await ctx.tx.groups.groups_for_user(user.id) if g.name.lower() not in taken]


def _configured(ctx: ActionContext, entity: UserRecord | GroupRecord) -> User | Group | None:
    if isinstance(entity, UserRecord):
        return configured_user(ctx.snapshot, entity.name)
    return configured_group(ctx.snapshot, entity.name)


async def inline_documents(ctx: ActionContext, entity: UserRecord | GroupRecord) -> dict[str, str]:
    """The inline policies of a user or group (either source) by name, as text."""
    configured = _configured(ctx, entity)
    if configured is not None:
        return {p.name: config_text(p.document) for p in configured.inline}
    kind: Literal["user", "group"] = "user" if isinstance(entity, UserRecord) else "group"
    return {p.name: p.document for p in await ctx.tx.inline_policies.for_principal(kind, entity.id)}


async def attached_policy_arns(ctx: ActionContext, entity: UserRecord | GroupRecord) -> list[str]:
    """The ARNs of the managed policies attached to a user or group (either source)."""
    configured = _configured(ctx, entity)
    if configured is not None:
        return [m.arn for m in configured.managed]
    kind: Literal["user", "group"] = "user" if isinstance(entity, UserRecord) else "group"
    return [a.policy_arn for a in await ctx.tx.attachments.for_principal(kind, entity.id)]


async def user_resource(ctx: ActionContext, name: str) -> Resource:
    """The user ``name``: its ARN (with its path), or ``user/NAME`` when there is no such user
    (authorized first; the handler then answers NoSuchEntity)."""
    found = await find_user(ctx, name)
    arn = found.arn if found is not None else iam_arn(ctx.account_id, "user", "/", name)
    return Resource(arn, USER, declared=declared(ctx.snapshot, "user", name))


async def group_resource(ctx: ActionContext, name: str) -> Resource:
    """The group ``name``: its ARN, or ``group/NAME`` when there is no such group."""
    found = await find_group(ctx, name)
    arn = found.arn if found is not None else iam_arn(ctx.account_id, "group", "/", name)
    return Resource(arn, GROUP, declared=declared(ctx.snapshot, "group", name))


async def named_user(ctx: ActionContext, args: Args) -> Resource:
    """The resolver of actions on the user their ``UserName`` names."""
    return await user_resource(ctx, args.text("UserName"))


async def named_or_calling_user(ctx: ActionContext, args: Args) -> Resource:
    """The resolver of actions on the user ``UserName`` names, or the calling user without it."""
    return await user_resource(ctx, ctx.user_name(args))


async def named_group(ctx: ActionContext, args: Args) -> Resource:
    """The resolver of actions on the group their ``GroupName`` names."""
    return await group_resource(ctx, args.text("GroupName"))


def renamed(
    ctx: ActionContext,
    found: Resource,
    record: UserRecord | GroupRecord | None,
    kind: Literal["user", "group"],
    new_name: str | None,
    new_path: str | None,
) -> Resource:
    """``found`` (the entity ``record`` is) also authorized on its ARN after a rename or a move."""
    if record is None or (new_name is None and new_path is None):
        return found
    new_arn = iam_arn(ctx.account_id, kind, new_path or record.path, new_name or record.name)
    return dataclasses.replace(found, also=(new_arn,)) if new_arn != found.arn else found


def tag_list(tags: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    """Tags as IAM lists them."""
    return [{"Key": k, "Value": v} for k, v in tags]


def boundary_shape(arn: str) -> dict[str, str]:
    """IAM's ``AttachedPermissionsBoundary`` for the managed policy ``arn``."""
    return {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": arn}


def user_shape(user: UserRecord, *, full: bool = True) -> dict[str, Any]:
    """IAM's ``User``; ``full`` adds what GetUser and CreateUser return beyond ListUsers
    (permissions boundary, tags)."""
    out: dict[str, Any] = {
        "Path": user.path,
        "UserName": user.name,
        "UserId": user.id,
        "Arn": user.arn,
        "CreateDate": user.created_at,
    }
    if full:
        if user.boundary_arn is not None:
            out["PermissionsBoundary"] = boundary_shape(user.boundary_arn)
        if user.tags:
            out["Tags"] = tag_list(user.tags)
    return out


def group_shape(group: GroupRecord) -> dict[str, Any]:
    """IAM's ``Group``."""
    return {
        "Path": group.path,
        "GroupName": group.name,
        "GroupId": group.id,
        "Arn": group.arn,
        "CreateDate": group.created_at,
    }
