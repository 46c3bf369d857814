"""Roles: create, read, list, update, delete; trust policy, permissions boundary, tags.

A role is the configuration file's (visible to every read; any change is ``UnmodifiableEntity``,
and creating one of its name ``EntityAlreadyExists``) or the database's. Its trust policy is
validated by the policy engine as a trust policy and may hold 2,048 characters not counting white
space (AWS's default ``ACLSizePerRole``); its longest session is 3,600 to 43,200 seconds. Deleting
a role needs it out of every instance profile and stripped of its policies (``DeleteConflict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.arns import role_arn
from gateway.db.records import RoleRecord, Tags
from gateway.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
    UnmodifiableEntity,
    ValidationError,
)
from gateway.iam.api.action import ActionContext, Declared, IamAction, Resource
from gateway.iam.api.boundary import BOUNDARY, boundary_context, require_boundary
from gateway.iam.api.documents import TRUST_POLICY_CHARS, checked, config_text, encoded
from gateway.iam.api.entities import CONFIG_EPOCH, boundary_shape, list_resource, tag_list
from gateway.iam.api.paging import PAGING, PATH_PREFIX, PageRequest, page_of
from gateway.iam.api.params import Args, Param, name, path, policy_document
from gateway.iam.api.tagging import TAG_KEYS, TAGS, TAGS_OPTIONAL, tag_handlers
from gateway.iam.api.values import integer, text
from gateway.iam.catalog import Role
from gateway.iam.records import EntitySource

__all__ = [
    "ACTIONS",
    "ROLE",
    "ROLE_NAME",
    "TITLE",
    "RoleView",
    "find_role",
    "require_role",
    "role_resource",
    "role_shape",
    "role_views",
    "stored",
    "view_of",
]

#: The heading of this family in docs/iam-actions.md.
TITLE = "Roles"

#: CloudTrail's resource type.
ROLE = "AWS::IAM::Role"

ROLE_NAME = Param("RoleName", name(64), "the role's name (1-64 of `[\\w+=,.@-]`)", required=True)
_DESCRIPTION = Param("Description", text(0, 1000), "up to 1,000 characters")
_MAX_SESSION = Param("MaxSessionDuration", integer(3600, 43200), "3,600-43,200 seconds (default 3,600)")


@dataclass(frozen=True, slots=True)
class RoleView:
    """A role as the actions show it, whichever source holds it.

    ``record`` is the database's row (``None`` for the configuration's); ``configured`` is the
    catalog's compiled role when the configuration declares it.
    """

    arn: str
    name: str
    path: str
    id: str
    description: str
    trust_policy: str
    max_session_duration: int
    boundary_arn: str | None
    created_at: datetime
    tags: Tags
    source: EntitySource
    record: RoleRecord | None = None
    configured: Role | None = None


def _from_config(role: Role) -> RoleView:
    return RoleView(
        arn=role.arn,
        name=role.name,
        path=role.path,
        id=role.role_id,
        description=role.description,
        trust_policy=config_text(role.trust_document),
        max_session_duration=role.max_session_duration,
        boundary_arn=None,
        created_at=CONFIG_EPOCH,
        tags=tuple(sorted(role.tags.items(), key=lambda t: t[0].lower())),
        source="config",
        configured=role,
    )


def view_of(record: RoleRecord) -> RoleView:
    """The view of a role the database holds."""
    return RoleView(
        arn=record.arn,
        name=record.name,
        path=record.path,
        id=record.id,
        description=record.description,
        trust_policy=record.trust_policy,
        max_session_duration=record.max_session_duration,
        boundary_arn=record.boundary_arn,
        created_at=record.created_at,
        tags=record.tags,
        source="api",
        record=record,
    )


def _configured(ctx: ActionContext, role_name: str) -> Role | None:
    role = ctx.snapshot.role_named(role_name)
    if role is None:  # names are unique case-insensitively
        lowered = role_name.lower()
        role = next((r for r in ctx.snapshot if r.name.lower() == lowered), None)
    return role if role is not None and role.source == "config" else None


async def find_role(ctx: ActionContext, role_name: str) -> RoleView | None:
    """The role called ``role_name`` (in any case): the configuration's, the database's, or ``None``."""
    configured = _configured(ctx, role_name)
    if configured is not None:
        return _from_config(configured)
    record = await ctx.tx.roles.get(role_name)
    return None if record is None else view_of(record)


async def require_role(ctx: ActionContext, role_name: str) -> RoleView:
    """The role called ``role_name``; ``NoSuchEntity`` otherwise."""
    found = await find_role(ctx, role_name)
    if found is None:
        raise NoSuchEntity(f"The role with name {role_name} cannot be found.")
    return found


def stored(view: RoleView) -> RoleRecord:
    """The database's row of a role an action changes (the configuration's are refused before)."""
    assert view.record is not None, "the configuration's roles are refused before any change"
    return view.record


async def role_resource(ctx: ActionContext, role_name: str) -> Resource:
    """The role ``role_name``: its ARN (with its path), or ``role/NAME`` when there is none."""
    view = await find_role(ctx, role_name)
    arn = view.arn if view is not None else role_arn(ctx.account_id, "/", role_name)
    configured = Declared("role", view.name) if view is not None and view.source == "config" else None
    return Resource(arn, ROLE, declared=configured)


def role_shape(view: RoleView, *, full: bool = True) -> dict[str, Any]:
    """IAM's ``Role``; ``full`` adds what GetRole and CreateRole return beyond ListRoles."""
    out: dict[str, Any] = {
        "Path": view.path,
        "RoleName": view.name,
        "RoleId": view.id,
        "Arn": view.arn,
        "CreateDate": view.created_at,
        "AssumeRolePolicyDocument": encoded(view.trust_policy),
    }
    if view.description:
        out["Description"] = view.description
    out["MaxSessionDuration"] = view.max_session_duration
    if full:
        if view.boundary_arn is not None:
            out["PermissionsBoundary"] = boundary_shape(view.boundary_arn)
        if view.tags:
            out["Tags"] = tag_list(view.tags)
        out["RoleLastUsed"] = {}
    return out


def _trust(document: str) -> str:
    return checked(
        document,
        kind="trust",
        name="AssumeRolePolicyDocument",
        limit=TRUST_POLICY_CHARS,
        quota="ACLSizePerRole",
    )


# Resolvers.


async def _named_role(ctx: ActionContext, args: Args) -> Resource:
    return await role_resource(ctx, args.text("RoleName"))


async def _new_role(ctx: ActionContext, args: Args) -> Resource:
    role_name = args.text("RoleName")
    configured = _configured(ctx, role_name)
    return Resource(
        role_arn(ctx.account_id, args.optional("Path") or "/", role_name),
        ROLE,
        context=boundary_context(args.optional("PermissionsBoundary")),
        declared=Declared("role", configured.name) if configured is not None else None,
    )


async def _bounded_role(ctx: ActionContext, args: Args) -> Resource:
    found = await role_resource(ctx, args.text("RoleName"))
    boundary = boundary_context(args.optional("PermissionsBoundary"))
    return Resource(found.arn, found.type, context=boundary, declared=found.declared)


async def _roles(ctx: ActionContext, args: Args) -> Resource:
    return list_resource(ctx, "role", args.optional("PathPrefix"))


# Handlers.


async def _create_role(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    trust = _trust(args.text("AssumeRolePolicyDocument"))
    boundary = args.optional("PermissionsBoundary")
    if boundary is not None:
        await require_boundary(ctx, boundary)
    record = await ctx.tx.roles.create(
        args.text("RoleName"),
        trust_policy=trust,
        path=args.optional("Path") or "/",
        description=args.optional("Description") or "",
        max_session_duration=args.number("MaxSessionDuration") or 3600,
        boundary_arn=boundary,
        tags=args.mapping("Tags"),
    )
    shape = role_shape(view_of(record))
    del shape["RoleLastUsed"]
    return {"Role": shape}


async def _get_role(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    return {"Role": role_shape(await require_role(ctx, args.text("RoleName")))}


async def role_views(ctx: ActionContext, prefix: str) -> list[RoleView]:
    """Every role whose path starts with ``prefix``: the configuration's, then the API's."""
    views = [_from_config(r) for r in ctx.snapshot if r.source == "config" and r.path.startswith(prefix)]
    return views + [view_of(r) for r in await ctx.tx.roles.list(prefix)]


async def _list_roles(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    views = await role_views(ctx, args.optional("PathPrefix") or "/")
    page = page_of(views, PageRequest.of(args), lambda v: v.name.lower())
    return page.fields("Roles", lambda v: role_shape(v, full=False))


async def _update_role(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    view = await require_role(ctx, args.text("RoleName"))
    await ctx.tx.roles.update(
        view.name,
        description=args.optional("Description"),
        max_session_duration=args.number("MaxSessionDuration"),
    )
    return {}


async def _update_description(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    view = await require_role(ctx, args.text("RoleName"))
    record = await ctx.tx.roles.update(view.name, description=args.text("Description"))
    return {"Role": role_shape(view_of(record))}


async def _delete_role(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    view = await require_role(ctx, args.text("RoleName"))
    await ctx.tx.roles.delete(view.name)
    return {}


async def _update_trust(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    view = await require_role(ctx, args.text("RoleName"))
    await ctx.tx.roles.set_trust_policy(view.name, _trust(args.text("PolicyDocument")))
    return {}


async def _put_boundary(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    view = await require_role(ctx, args.text("RoleName"))
    boundary = args.text("PermissionsBoundary")
    await require_boundary(ctx, boundary)
    await ctx.tx.roles.set_boundary(view.name, boundary)
    return {}


async def _delete_boundary(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    view = await require_role(ctx, args.text("RoleName"))
    await ctx.tx.roles.set_boundary(view.name, None)
    return {}


_tag_role, _untag_role, _list_tags = tag_handlers(
    lambda ctx, args: require_role(ctx, args.text("RoleName")),
    lambda ctx: ctx.tx.roles,
    lambda view: view.name,
)


_NAMED = "the role's ARN"
_READ_ERRORS = (NoSuchEntity, ValidationError)
_CHANGE_ERRORS = (NoSuchEntity, UnmodifiableEntity, ValidationError)

ACTIONS = (
    IamAction(
        "CreateRole",
        "Create a role with a trust policy, optionally a description, longest session, boundary and tags.",
        (
            ROLE_NAME,
            Param("AssumeRolePolicyDocument", policy_document, "the trust policy's JSON text", required=True),
            Param("Path", path, "`/` (the default) or `/a/b/`"),
            _DESCRIPTION,
            _MAX_SESSION,
            BOUNDARY,
            TAGS_OPTIONAL,
        ),
        _new_role,
        "the new role's ARN (`role{Path}{RoleName}`); condition key `iam:PermissionsBoundary`",
        _create_role,
        writes=True,
        creates=True,
        errors=(
            EntityAlreadyExists,
            InvalidInput,
            LimitExceeded,
            MalformedPolicyDocument,
            NoSuchEntity,
            ValidationError,
        ),
    ),
    IamAction(
        "GetRole",
        "A role: id, ARN, trust policy (URL-encoded), description, longest session, boundary, tags.",
        (ROLE_NAME,),
        _named_role,
        _NAMED,
        _get_role,
        errors=_READ_ERRORS,
    ),
    IamAction(
        "ListRoles",
        "Roles (the configuration's and the API's) whose path starts with `PathPrefix`, by name, paged.",
        (PATH_PREFIX, *PAGING),
        _roles,
        "`role{PathPrefix}`",
        _list_roles,
        errors=(ValidationError,),
    ),
    IamAction(
        "UpdateRole",
        "Change a role's description or longest session.",
        (ROLE_NAME, _DESCRIPTION, _MAX_SESSION),
        _named_role,
        _NAMED,
        _update_role,
        writes=True,
        errors=_CHANGE_ERRORS,
    ),
    IamAction(
        "UpdateRoleDescription",
        "Change a role's description; answers the role.",
        (ROLE_NAME, Param("Description", _DESCRIPTION.validate, _DESCRIPTION.doc, required=True)),
        _named_role,
        _NAMED,
        _update_description,
        writes=True,
        errors=_CHANGE_ERRORS,
    ),
    IamAction(
        "DeleteRole",
        "Delete a role that is in no instance profile and has no policies left.",
        (ROLE_NAME,),
        _named_role,
        _NAMED,
        _delete_role,
        writes=True,
        errors=(*_CHANGE_ERRORS, DeleteConflict),
    ),
    IamAction(
        "UpdateAssumeRolePolicy",
        "Replace a role's trust policy.",
        (ROLE_NAME, Param("PolicyDocument", policy_document, "the trust policy's JSON text", required=True)),
        _named_role,
        _NAMED,
        _update_trust,
        writes=True,
        errors=(*_CHANGE_ERRORS, LimitExceeded, MalformedPolicyDocument),
    ),
    IamAction(
        "PutRolePermissionsBoundary",
        "Set a role's permissions boundary (a managed policy).",
        (ROLE_NAME, Param("PermissionsBoundary", BOUNDARY.validate, BOUNDARY.doc, required=True)),
        _bounded_role,
        "the role's ARN; condition key `iam:PermissionsBoundary`",
        _put_boundary,
        writes=True,
        errors=(*_CHANGE_ERRORS, InvalidInput),
    ),
    IamAction(
        "DeleteRolePermissionsBoundary",
        "Remove a role's permissions boundary.",
        (ROLE_NAME,),
        _named_role,
        _NAMED,
        _delete_boundary,
        writes=True,
        errors=_CHANGE_ERRORS,
    ),
    IamAction(
        "TagRole",
        "Add or overwrite tags of a role (at most 50 in all).",
        (ROLE_NAME, TAGS),
        _named_role,
        _NAMED,
        _tag_role,
        writes=True,
        errors=(*_CHANGE_ERRORS, InvalidInput, LimitExceeded),
    ),
    IamAction(
        "UntagRole",
        "Remove tags from a role.",
        (ROLE_NAME, TAG_KEYS),
        _named_role,
        _NAMED,
        _untag_role,
        writes=True,
        errors=_CHANGE_ERRORS,
    ),
    IamAction(
        "ListRoleTags",
        "A role's tags, by key, paged.",
        (ROLE_NAME, *PAGING),
        _named_role,
        _NAMED,
        _list_tags,
        errors=_READ_ERRORS,
    ),
)
