"""IAM users: create, read, list, delete."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.db.records import iam_arn
from gateway.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    InvalidInput,
    NoSuchEntity,
    ValidationError,
)
from gateway.iam.api.action import ActionContext, IamAction, Resource
from gateway.iam.api.boundary import BOUNDARY, boundary_context, require_boundary
from gateway.iam.api.entities import USER, declared, list_resource, user_resource, user_shape
from gateway.iam.api.paging import PAGING, PATH_PREFIX, Page, PageRequest
from gateway.iam.api.params import Args, Param, name, path, tags

__all__ = ["ACTIONS", "USER_NAME"]

#: ``UserName`` of the actions that name a user.
USER_NAME = Param("UserName", name(64), "the user's name (1-64 of `[\\w+=,.@-]`)", required=True)
_PATH = Param("Path", path, "`/` (the default) or `/a/b/`")
_TAGS = Param("Tags", tags, "`Tags.member.N.Key`/`.Value`, at most 50")


async def _named_user(ctx: ActionContext, args: Args) -> Resource:
    return await user_resource(ctx, args.text("UserName"))


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


async def _self_or_named(ctx: ActionContext, args: Args) -> Resource:
    return await user_resource(ctx, ctx.user_name(args))


async def _get_user(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    return {"User": user_shape(await ctx.tx.users.require(ctx.user_name(args)))}


async def _users(ctx: ActionContext, args: Args) -> Resource:
    return list_resource(ctx, "user", args.optional("PathPrefix"))


async def _list_users(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    page = PageRequest.of(args)
    users = await ctx.tx.users.list(args.optional("PathPrefix") or "/", after=page.marker, limit=page.fetch)
    return Page.cut(users, page, lambda u: u.name).fields("Users", lambda u: user_shape(u, full=False))


async def _delete_user(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    await ctx.tx.users.delete(args.text("UserName"))
    return {}


ACTIONS = (
    IamAction(
        "CreateUser",
        "Create a user.",
        (USER_NAME, _PATH, BOUNDARY, _TAGS),
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
        _self_or_named,
        "the user's ARN",
        _get_user,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "ListUsers",
        "Users whose path starts with `PathPrefix`, by name, paged.",
        (PATH_PREFIX, *PAGING),
        _users,
        "`user{PathPrefix}` (`user/` by default)",
        _list_users,
        errors=(ValidationError,),
    ),
    IamAction(
        "DeleteUser",
        "Delete a user that has no access keys, MFA devices, groups or policies left.",
        (USER_NAME,),
        _named_user,
        "the user's ARN",
        _delete_user,
        writes=True,
        errors=(DeleteConflict, NoSuchEntity, ValidationError),
    ),
)
