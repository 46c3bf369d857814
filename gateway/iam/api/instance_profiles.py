"""Instance profiles, as far as tools that manage roles need them.

fedgate has no EC2 instances to hand them to; the Terraform provider and the aws CLI list a role's
instance profiles before they delete it, and a role in one cannot be deleted. A profile holds at
most one role (``LimitExceeded``), which must be one the API created (the configuration's roles
cannot be put in one: ``UnmodifiableEntity``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.db.records import InstanceProfileRecord, iam_arn
from gateway.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    LimitExceeded,
    NoSuchEntity,
    UnmodifiableEntity,
    ValidationError,
)
from gateway.iam.api.action import ActionContext, IamAction, Resource
from gateway.iam.api.entities import list_resource, tag_list
from gateway.iam.api.paging import PAGING, PATH_PREFIX, PageRequest, page_of
from gateway.iam.api.params import Args, Param, name, path
from gateway.iam.api.roles import ROLE_NAME, RoleView, require_role, role_resource, role_shape, view_of
from gateway.iam.api.tagging import TAGS_OPTIONAL

__all__ = ["ACTIONS", "INSTANCE_PROFILE", "TITLE"]

#: The heading of this family in docs/iam-actions.md.
TITLE = "Instance profiles"

#: CloudTrail's resource type.
INSTANCE_PROFILE = "AWS::IAM::InstanceProfile"

_PROFILE_NAME = Param("InstanceProfileName", name(128), "1-128 of `[\\w+=,.@-]`", required=True)


async def _shape(ctx: ActionContext, profile: InstanceProfileRecord) -> dict[str, Any]:
    roles = [r for r in [await ctx.tx.roles.get_by_id(i) for i in profile.role_ids] if r is not None]
    out: dict[str, Any] = {
        "Path": profile.path,
        "InstanceProfileName": profile.name,
        "InstanceProfileId": profile.id,
        "Arn": profile.arn,
        "CreateDate": profile.created_at,
        "Roles": [role_shape(view_of(r), full=False) for r in roles],
    }
    if profile.tags:
        out["Tags"] = tag_list(profile.tags)
    return out


async def _profile(ctx: ActionContext, args: Args) -> Resource:
    profile_name = args.text("InstanceProfileName")
    found = await ctx.tx.instance_profiles.get(profile_name)
    arn = found.arn if found is not None else iam_arn(ctx.account_id, "instance-profile", "/", profile_name)
    return Resource(arn, INSTANCE_PROFILE)


async def _new_profile(ctx: ActionContext, args: Args) -> Resource:
    path_ = args.optional("Path") or "/"
    return Resource(
        iam_arn(ctx.account_id, "instance-profile", path_, args.text("InstanceProfileName")), INSTANCE_PROFILE
    )


async def _profiles(ctx: ActionContext, args: Args) -> Resource:
    return list_resource(ctx, "instance-profile", args.optional("PathPrefix"))


async def _named_role(ctx: ActionContext, args: Args) -> Resource:
    return await role_resource(ctx, args.text("RoleName"))


async def _create(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    profile = await ctx.tx.instance_profiles.create(
        args.text("InstanceProfileName"), path=args.optional("Path") or "/", tags=args.mapping("Tags")
    )
    return {"InstanceProfile": await _shape(ctx, profile)}


async def _get(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    profile = await ctx.tx.instance_profiles.require(args.text("InstanceProfileName"))
    return {"InstanceProfile": await _shape(ctx, profile)}


async def _list(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    profiles = await ctx.tx.instance_profiles.list(args.optional("PathPrefix") or "/")
    page = page_of(profiles, PageRequest.of(args), lambda p: p.name.lower())
    shapes = [await _shape(ctx, p) for p in page.items]
    out: dict[str, Any] = {"InstanceProfiles": shapes, "IsTruncated": page.marker is not None}
    if page.marker is not None:
        out["Marker"] = page.marker
    return out


async def _delete(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    await ctx.tx.instance_profiles.delete(args.text("InstanceProfileName"))
    return {}


async def _stored_role(ctx: ActionContext, args: Args) -> RoleView:
    view = await require_role(ctx, args.text("RoleName"))
    if view.record is None:
        raise UnmodifiableEntity(
            f"Cannot perform the operation on the role {view.name}: it is declared in fedgate's "
            "configuration file."
        )
    return view


async def _add_role(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    profile = await ctx.tx.instance_profiles.require(args.text("InstanceProfileName"))
    role = await _stored_role(ctx, args)
    if role.id in profile.role_ids:
        raise EntityAlreadyExists(f"The role {role.name} is already in instance profile {profile.name}.")
    if profile.role_ids:
        raise LimitExceeded("Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1")
    await ctx.tx.instance_profiles.add_role(profile.id, role.id)
    return {}


async def _remove_role(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    profile = await ctx.tx.instance_profiles.require(args.text("InstanceProfileName"))
    role = await require_role(ctx, args.text("RoleName"))
    if not await ctx.tx.instance_profiles.remove_role(profile.id, role.id):
        raise NoSuchEntity(f"The role {role.name} is not in instance profile {profile.name}.")
    return {}


async def _for_role(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    role = await require_role(ctx, args.text("RoleName"))
    profiles = [] if role.record is None else await ctx.tx.instance_profiles.for_role(role.id)
    page = page_of(profiles, PageRequest.of(args), lambda p: p.name.lower())
    shapes = [await _shape(ctx, p) for p in page.items]
    out: dict[str, Any] = {"InstanceProfiles": shapes, "IsTruncated": page.marker is not None}
    if page.marker is not None:
        out["Marker"] = page.marker
    return out


_NAMED = "the instance profile's ARN"

ACTIONS = (
    IamAction(
        "CreateInstanceProfile",
        "Create an instance profile.",
        (_PROFILE_NAME, Param("Path", path, "`/` (the default) or `/a/b/`"), TAGS_OPTIONAL),
        _new_profile,
        "the new profile's ARN (`instance-profile{Path}{InstanceProfileName}`)",
        _create,
        writes=True,
        errors=(EntityAlreadyExists, ValidationError),
    ),
    IamAction(
        "GetInstanceProfile",
        "An instance profile and its role.",
        (_PROFILE_NAME,),
        _profile,
        _NAMED,
        _get,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "ListInstanceProfiles",
        "Instance profiles whose path starts with `PathPrefix`, by name, paged.",
        (PATH_PREFIX, *PAGING),
        _profiles,
        "`instance-profile{PathPrefix}`",
        _list,
        errors=(ValidationError,),
    ),
    IamAction(
        "DeleteInstanceProfile",
        "Delete an instance profile that holds no role.",
        (_PROFILE_NAME,),
        _profile,
        _NAMED,
        _delete,
        writes=True,
        errors=(DeleteConflict, NoSuchEntity, ValidationError),
    ),
    IamAction(
        "AddRoleToInstanceProfile",
        "Put a role in an instance profile (one at most).",
        (_PROFILE_NAME, ROLE_NAME),
        _profile,
        _NAMED,
        _add_role,
        writes=True,
        errors=(EntityAlreadyExists, LimitExceeded, NoSuchEntity, UnmodifiableEntity, ValidationError),
    ),
    IamAction(
        "RemoveRoleFromInstanceProfile",
        "Take a role out of an instance profile.",
        (_PROFILE_NAME, ROLE_NAME),
        _profile,
        _NAMED,
        _remove_role,
        writes=True,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "ListInstanceProfilesForRole",
        "The instance profiles holding a role (none for the configuration's roles), paged.",
        (ROLE_NAME, *PAGING),
        _named_role,
        "the role's ARN",
        _for_role,
        errors=(NoSuchEntity, ValidationError),
    ),
)
