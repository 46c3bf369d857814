"""IAM users: create, read, list, rename, delete; tags and permissions boundary.

The configuration file's users are read and listed with the database's (in one ordering) and
refuse every change (``UnmodifiableEntity``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from gateway.credentials.revocation import USER as USER_SCOPE
from gateway.db.records import iam_arn
from gateway.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    NoSuchEntity,
    ValidationError,
)
from gateway.iam.api.action import ActionContext, IamAction, Resource
from gateway.iam.api.boundary import BOUNDARY, boundary_context, require_boundary
from gateway.iam.api.entities import (
    USER,
    declared,
    list_resource,
    named_or_calling_user,
    named_user,
    renamed,
    require_user,
    user_resource,
    user_shape,
    users_page,
)
from gateway.iam.api.paging import PAGING, PATH_PREFIX, PageRequest
from gateway.iam.api.params import Args, Param, name, path
from gateway.iam.api.tagging import TAG_KEYS, TAGS, TAGS_OPTIONAL, tag_handlers

__all__ = ["ACTIONS", "TITLE", "USER_NAME"]

#: The heading of this family in docs/iam-actions.md.
TITLE = "Users"

#: ``UserName`` of the actions that name a user.
USER_NAME = Param("UserName", name(64), "the user's name (1-64 of `[\\w+=,.@-]`)", required=True)
_PATH = Param("Path", path, "`/` (the default) or `/a/b/`")


async def _created_user(ctx: ActionContext, args: Args) -> Resource:
    user_name = args.text("UserName")
    boundary = args.optional("PermissionsBoundary")
    return Resource(
        iam_arn(ctx.account_id, "user", args.optional("Path") or "/", user_name),
        USER,
        context=boundary_context(boundary),
        declared=declared(ctx.snapshot, "user", user_name),
    )


async def _create_user(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    boundary = args.optional("PermissionsBoundary")
    if boundary is not None:
        await require_boundary(ctx, boundary)
    user = await ctx.tx.users.create(
        args.text("UserName"),
        path=args.optional("Path") or "/",
        boundary_arn=boundary,
        tags=args.mapping("Tags"),
    )
    return {"User": user_shape(user)}


async def _get_user(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    return {"User": user_shape(await require_user(ctx, ctx.user_name(args)))}


async def _users(ctx: ActionContext, args: Args) -> Resource:
    return list_resource(ctx, "user", args.optional("PathPrefix"))


async def _list_users(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    page = await users_page(ctx, args.optional("PathPrefix") or "/", PageRequest.of(args))
    return page.fields("Users", lambda u: user_shape(u, full=False))


async def _renamed_user(ctx: ActionContext, args: Args) -> Resource:
    found = await user_resource(ctx, args.text("UserName"))
    user = await ctx.tx.users.get(args.text("UserName"))
    return renamed(ctx, found, user, "user", args.optional("NewUserName"), args.optional("NewPath"))


async def _update_user(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    new_name = args.optional("NewUserName")
    if new_name is not None and declared(ctx.snapshot, "user", new_name) is not None:
        raise EntityAlreadyExists(f"User with name {new_name} already exists.")
    await ctx.tx.users.update(args.text("UserName"), new_name=new_name, new_path=args.optional("NewPath"))
    return {}


# Tags are changed on database users only (the configuration's are unmodifiable), read on both.
_tag_user, _untag_user, _list_user_tags = tag_handlers(
    lambda ctx, args: ctx.tx.users.require(args.text("UserName")),
    lambda ctx: ctx.tx.users,
    lambda user: user.name,
    listed=lambda ctx, args: require_user(ctx, args.text("UserName")),
)


async def _bounded_user(ctx: ActionContext, args: Args) -> Resource:
    found = await user_resource(ctx, args.text("UserName"))
    return dataclasses.replace(found, context=boundary_context(args.text("PermissionsBoundary")))


async def _put_boundary(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    user = await ctx.tx.users.require(args.text("UserName"))
    boundary = args.text("PermissionsBoundary")
    await require_boundary(ctx, boundary)
    await ctx.tx.users.set_boundary(user.name, boundary)
    return {}


async def _delete_boundary(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    await ctx.tx.users.set_boundary(args.text("UserName"), None)
    return {}


async def _delete_user(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    user = await ctx.tx.users.require(args.text("UserName"))
    await ctx.tx.users.delete(user.name)
    # The user's sessions (GetSessionToken, GetFederationToken, chained from them) end with it,
    # and a user created again under the same name does not inherit them.
    await ctx.tx.revocations.raise_cutoff(USER_SCOPE, user.arn, ctx.record.now)
    return {}


ACTIONS = (
    IamAction(
        "CreateUser",
        "Create a user.",
        (USER_NAME, _PATH, BOUNDARY, TAGS_OPTIONAL),
        _created_user,
        "the new user's ARN (`user{Path}{UserName}`); condition key `iam:PermissionsBoundary`",
        _create_user,
        writes=True,
        creates=True,
        errors=(EntityAlreadyExists, InvalidInput, NoSuchEntity, ValidationError),
    ),
    IamAction(
        "GetUser",
        "A user: path, id, ARN, creation date, permissions boundary, tags.",
        (Param("UserName", name(64), "the user's name; the calling user when omitted"),),
        named_or_calling_user,
        "the user's ARN",
        _get_user,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "ListUsers",
        "Users (the configuration's and the API's) whose path starts with `PathPrefix`, by name, paged.",
        (PATH_PREFIX, *PAGING),
        _users,
        "`user{PathPrefix}` (`user/` by default)",
        _list_users,
        errors=(ValidationError,),
    ),
    IamAction(
        "DeleteUser",
        "Delete a user that has no access keys, MFA devices, groups or policies left; its sessions "
        "(GetSessionToken, GetFederationToken, chained from them) are revoked.",
        (USER_NAME,),
        named_user,
        "the user's ARN",
        _delete_user,
        writes=True,
        errors=(DeleteConflict, NoSuchEntity, ValidationError),
    ),
    IamAction(
        "UpdateUser",
        "Rename a user (`NewUserName`) or move it to another path (`NewPath`).",
        (
            USER_NAME,
            Param("NewUserName", name(64), "the new name"),
            Param("NewPath", path, "the new path"),
        ),
        _renamed_user,
        "the user's ARN, and its ARN after the change (both must be allowed)",
        _update_user,
        writes=True,
        errors=(EntityAlreadyExists, NoSuchEntity, ValidationError),
    ),
    IamAction(
        "TagUser",
        "Add tags to a user, or overwrite the values of keys it has (in any case).",
        (USER_NAME, TAGS),
        named_user,
        "the user's ARN",
        _tag_user,
        writes=True,
        errors=(InvalidInput, LimitExceeded, NoSuchEntity, ValidationError),
    ),
    IamAction(
        "UntagUser",
        "Remove tags from a user by key (in any case).",
        (USER_NAME, TAG_KEYS),
        named_user,
        "the user's ARN",
        _untag_user,
        writes=True,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "ListUserTags",
        "A user's tags, by key, paged.",
        (USER_NAME, *PAGING),
        named_user,
        "the user's ARN",
        _list_user_tags,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "PutUserPermissionsBoundary",
        "Set the managed policy that bounds a user's permissions.",
        (USER_NAME, dataclasses.replace(BOUNDARY, required=True)),
        _bounded_user,
        "the user's ARN; condition key `iam:PermissionsBoundary`",
        _put_boundary,
        writes=True,
        errors=(InvalidInput, NoSuchEntity, ValidationError),
    ),
    IamAction(
        "DeleteUserPermissionsBoundary",
        "Remove a user's permissions boundary.",
        (USER_NAME,),
        named_user,
        "the user's ARN",
        _delete_boundary,
        writes=True,
        errors=(NoSuchEntity, ValidationError),
    ),
)
