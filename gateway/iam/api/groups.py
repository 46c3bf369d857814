"""IAM groups and their members: create, read (with members), list, rename, delete; add and
remove users; a user's groups (at most 10 per user).

The configuration file's groups are read and listed with the database's, with their members (the
configuration's users that name them); they refuse every change (``UnmodifiableEntity``), and so
does a configuration user asked to join or leave a database group.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from gateway.db.records import iam_arn
from gateway.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    LimitExceeded,
    NoSuchEntity,
    UnmodifiableEntity,
    ValidationError,
)
from gateway.iam.api.action import ActionContext, Declared, IamAction, Resource
from gateway.iam.api.entities import (
    GROUP,
    configured_user,
    declared,
    group_members,
    group_resource,
    group_shape,
    groups_of,
    groups_page,
    list_resource,
    named_group,
    named_user,
    renamed,
    require_group,
    require_user,
    user_shape,
)
from gateway.iam.api.paging import PAGING, PATH_PREFIX, PageRequest, page_of
from gateway.iam.api.params import Args, Param, name, path
from gateway.iam.api.users import USER_NAME

__all__ = ["ACTIONS", "GROUP_NAME", "MAX_GROUPS_PER_USER", "TITLE"]

#: The heading of this family in docs/iam-actions.md.
TITLE = "Groups and membership"

#: Groups one user may be in (AWS's quota).
MAX_GROUPS_PER_USER = 10

#: ``GroupName`` of the actions that name a group.
GROUP_NAME = Param("GroupName", name(128), "the group's name (1-128 of `[\\w+=,.@-]`)", required=True)


async def _created_group(ctx: ActionContext, args: Args) -> Resource:
    group_name = args.text("GroupName")
    return Resource(
        iam_arn(ctx.account_id, "group", args.optional("Path") or "/", group_name),
        GROUP,
        declared=declared(ctx.snapshot, "group", group_name),
    )


async def _create_group(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    group = await ctx.tx.groups.create(args.text("GroupName"), path=args.optional("Path") or "/")
    return {"Group": group_shape(group)}


async def _get_group(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    group = await require_group(ctx, args.text("GroupName"))
    members = await group_members(ctx, group)
    page = page_of(members, PageRequest.of(args), lambda u: u.name.lower())
    return {"Group": group_shape(group), **page.fields("Users", lambda u: user_shape(u, full=False))}


async def _groups(ctx: ActionContext, args: Args) -> Resource:
    return list_resource(ctx, "group", args.optional("PathPrefix"))


async def _list_groups(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    page = await groups_page(ctx, args.optional("PathPrefix") or "/", PageRequest.of(args))
    return page.fields("Groups", group_shape)


async def _renamed_group(ctx: ActionContext, args: Args) -> Resource:
    found = await group_resource(ctx, args.text("GroupName"))
    group = await ctx.tx.groups.get(args.text("GroupName"))
    return renamed(ctx, found, group, "group", args.optional("NewGroupName"), args.optional("NewPath"))


async def _update_group(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    new_name = args.optional("NewGroupName")
    if new_name is not None and declared(ctx.snapshot, "group", new_name) is not None:
        raise EntityAlreadyExists(f"Group with name {new_name} already exists.")
    await ctx.tx.groups.update(args.text("GroupName"), new_name=new_name, new_path=args.optional("NewPath"))
    return {}


async def _delete_group(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    await ctx.tx.groups.delete(args.text("GroupName"))
    return {}


async def _add_user(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    group = await ctx.tx.groups.require(args.text("GroupName"))
    user = await ctx.tx.users.require(args.text("UserName"))
    current = await ctx.tx.groups.groups_for_user(user.id)
    if group.id not in {g.id for g in current} and len(current) >= MAX_GROUPS_PER_USER:
        raise LimitExceeded(f"Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}")
    await ctx.tx.groups.add_member(group.id, user.id)
    return {}


async def _remove_user(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    group = await ctx.tx.groups.require(args.text("GroupName"))
    user = await ctx.tx.users.require(args.text("UserName"))
    if not await ctx.tx.groups.remove_member(group.id, user.id):
        raise NoSuchEntity(f"The user with name {user.name} is not in the group {group.name}.")
    return {}


async def _membership(ctx: ActionContext, args: Args) -> Resource:
    """The group's resource; a configuration user's membership is the configuration's too."""
    found = await group_resource(ctx, args.text("GroupName"))
    user = configured_user(ctx.snapshot, args.text("UserName"))
    if found.declared is None and user is not None:
        return dataclasses.replace(found, declared=Declared("user", user.name))
    return found


async def _groups_for_user(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    groups = await groups_of(ctx, await require_user(ctx, args.text("UserName")))
    return page_of(groups, PageRequest.of(args), lambda g: g.name.lower()).fields("Groups", group_shape)


ACTIONS = (
    IamAction(
        "CreateGroup",
        "Create a group.",
        (GROUP_NAME, Param("Path", path, "`/` (the default) or `/a/b/`")),
        _created_group,
        "the new group's ARN (`group{Path}{GroupName}`)",
        _create_group,
        writes=True,
        creates=True,
        errors=(EntityAlreadyExists, ValidationError),
    ),
    IamAction(
        "GetGroup",
        "A group and its users (paged).",
        (GROUP_NAME, *PAGING),
        named_group,
        "the group's ARN",
        _get_group,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "ListGroups",
        "Groups (the configuration's and the API's) whose path starts with `PathPrefix`, by name, paged.",
        (PATH_PREFIX, *PAGING),
        _groups,
        "`group{PathPrefix}` (`group/` by default)",
        _list_groups,
        errors=(ValidationError,),
    ),
    IamAction(
        "UpdateGroup",
        "Rename a group (`NewGroupName`) or move it to another path (`NewPath`).",
        (
            GROUP_NAME,
            Param("NewGroupName", name(128), "the new name"),
            Param("NewPath", path, "the new path"),
        ),
        _renamed_group,
        "the group's ARN, and its ARN after the change (both must be allowed)",
        _update_group,
        writes=True,
        errors=(EntityAlreadyExists, NoSuchEntity, ValidationError),
    ),
    IamAction(
        "DeleteGroup",
        "Delete a group that has no members and no policies left.",
        (GROUP_NAME,),
        named_group,
        "the group's ARN",
        _delete_group,
        writes=True,
        errors=(DeleteConflict, NoSuchEntity, ValidationError),
    ),
    IamAction(
        "AddUserToGroup",
        "Put a user in a group (a user may be in at most 10).",
        (GROUP_NAME, USER_NAME),
        _membership,
        "the group's ARN",
        _add_user,
        writes=True,
        errors=(LimitExceeded, NoSuchEntity, UnmodifiableEntity, ValidationError),
    ),
    IamAction(
        "RemoveUserFromGroup",
        "Take a user out of a group.",
        (GROUP_NAME, USER_NAME),
        _membership,
        "the group's ARN",
        _remove_user,
        writes=True,
        errors=(NoSuchEntity, UnmodifiableEntity, ValidationError),
    ),
    IamAction(
        "ListGroupsForUser",
        "The groups a user is in, by name, paged.",
        (USER_NAME, *PAGING),
        named_user,
        "the user's ARN",
        _groups_for_user,
        errors=(NoSuchEntity, ValidationError),
    ),
)
