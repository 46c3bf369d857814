"""Entities as IAM actions see them: their resource ARNs, whether the configuration declares them,
and the shapes IAM answers them in (``User``, ``Group``...), shared by every action family.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from gateway.db.records import GroupRecord, UserRecord, iam_arn
from gateway.iam.api.action import ActionContext, Declared, Resource
from gateway.iam.api.params import Args
from gateway.iam.catalog import CatalogSnapshot

__all__ = [
    "GROUP",
    "USER",
    "Noun",
    "declared",
    "group_resource",
    "group_shape",
    "list_resource",
    "named_group",
    "named_or_calling_user",
    "named_user",
    "renamed",
    "tag_list",
    "user_resource",
    "user_shape",
]

#: CloudTrail's resource types.
USER = "AWS::IAM::User"
GROUP = "AWS::IAM::Group"

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


async def user_resource(ctx: ActionContext, name: str) -> Resource:
    """The user ``name``: its ARN (with its path), or ``user/NAME`` when there is no such user
    (authorized first; the handler then answers NoSuchEntity)."""
    record = await ctx.tx.users.get(name)
    configured = ctx.snapshot.user_named(name)
    arn = (
        record.arn
        if record is not None
        else configured.arn
        if configured is not None
        else iam_arn(ctx.account_id, "user", "/", name)
    )
    return Resource(arn, USER, declared=declared(ctx.snapshot, "user", name))


async def group_resource(ctx: ActionContext, name: str) -> Resource:
    """The group ``name``: its ARN, or ``group/NAME`` when there is no such group."""
    record = await ctx.tx.groups.get(name)
    configured = next((g for g in ctx.snapshot.groups.values() if g.name.lower() == name.lower()), None)
    arn = (
        record.arn
        if record is not None
        else configured.arn
        if configured is not None
        else iam_arn(ctx.account_id, "group", "/", name)
    )
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
            out["PermissionsBoundary"] = {
                "PermissionsBoundaryType": "Policy",
                "PermissionsBoundaryArn": user.boundary_arn,
            }
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
