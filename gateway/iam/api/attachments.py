"""Managed policies attached to users, groups and roles: attach, detach, list, and who holds one.

Attaching changes the principal, so it is authorized on the principal's ARN with the policy's in
the condition key ``iam:PolicyARN`` (as on AWS), and a role the configuration declares refuses it
(``UnmodifiableEntity``); the policy may be the configuration's or the database's. A principal
holds at most ten managed policies (``LimitExceeded``); attaching one already attached changes
nothing; detaching one that is not attached is ``NoSuchEntity``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.db.records import GroupRecord, PrincipalType, UserRecord
from gateway.errors import InvalidInput, LimitExceeded, NoSuchEntity, UnmodifiableEntity, ValidationError
from gateway.iam.api.action import ActionContext, IamAction, Resource
from gateway.iam.api.entities import (
    attached_policy_arns,
    configured_group,
    configured_user,
    group_resource,
    require_group,
    require_user,
    user_resource,
)
from gateway.iam.api.paging import PAGING, PATH_PREFIX, PageRequest, page_of
from gateway.iam.api.params import Args, Param, name
from gateway.iam.api.policies import (
    POLICY_ARN,
    PolicyView,
    configured_bounded,
    configured_holders,
    find_policy,
    require_policy,
)
from gateway.iam.api.roles import require_role, role_resource
from gateway.iam.api.values import enum
from gateway.iam.catalog import Group, Role, User

__all__ = ["ACTIONS", "MAX_ATTACHED", "TITLE", "attached_arns"]

#: The heading of this family in docs/iam-actions.md.
TITLE = "Attached managed policies"

#: Managed policies one principal may hold (AWS's default quota).
MAX_ATTACHED = 10


@dataclass(frozen=True, slots=True)
class _Kind:
    """One kind of principal: its type in the database, its parameter, its quota's name."""

    type: PrincipalType
    noun: str  # User, Group, Role
    param: Param
    resource: Callable[[ActionContext, str], Awaitable[Resource]]

    @property
    def wire(self) -> str:
        return self.param.name


_USER = _Kind("user", "User", Param("UserName", name(64), "the user's name", required=True), user_resource)
_GROUP = _Kind(
    "group", "Group", Param("GroupName", name(128), "the group's name", required=True), group_resource
)
_ROLE = _Kind("role", "Role", Param("RoleName", name(64), "the role's name", required=True), role_resource)


async def _holder(ctx: ActionContext, kind: _Kind, principal: str) -> tuple[str | None, list[str]]:
    """The principal's database id (``None`` for a configuration entity) and attached policy ARNs."""
    if kind.type == "role":
        view = await require_role(ctx, principal)
        if view.configured is not None:
            return None, [m.arn for m in view.configured.managed]
        principal_id = view.id
    else:
        entity: UserRecord | GroupRecord
        if kind.type == "user":
            entity = await require_user(ctx, principal)
            configured = configured_user(ctx.snapshot, principal) is not None
        else:
            entity = await require_group(ctx, principal)
            configured = configured_group(ctx.snapshot, principal) is not None
        return None if configured else entity.id, await attached_policy_arns(ctx, entity)
    return principal_id, [
        a.policy_arn for a in await ctx.tx.attachments.for_principal(kind.type, principal_id)
    ]


async def attached_arns(ctx: ActionContext, principal_type: PrincipalType, principal_id: str) -> list[str]:
    """The ARNs of the managed policies a database principal holds."""
    return [a.policy_arn for a in await ctx.tx.attachments.for_principal(principal_type, principal_id)]


def _resolver(kind: _Kind) -> Callable[[ActionContext, Args], Awaitable[Resource]]:
    async def resolve(ctx: ActionContext, args: Args) -> Resource:
        found = await kind.resource(ctx, args.text(kind.wire))
        policy = args.optional("PolicyArn")
        context = {"iam:PolicyARN": policy} if policy is not None else {}
        return Resource(found.arn, found.type, context=context, declared=found.declared)

    return resolve


def _attach(kind: _Kind) -> Callable[[ActionContext, Args], Awaitable[Mapping[str, Any]]]:
    async def attach(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
        policy = await require_policy(ctx, args.text("PolicyArn"))
        principal_id, arns = await _holder(ctx, kind, args.text(kind.wire))
        assert principal_id is not None, "the configuration's roles are refused before any change"
        if policy.arn in arns:
            return {}
        if len(arns) >= MAX_ATTACHED:
            raise LimitExceeded(f"Cannot exceed quota for PoliciesPer{kind.noun}: {MAX_ATTACHED}")
        await ctx.tx.attachments.attach(kind.type, principal_id, policy.arn)
        return {}

    return attach


def _detach(kind: _Kind) -> Callable[[ActionContext, Args], Awaitable[Mapping[str, Any]]]:
    async def detach(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
        policy = args.text("PolicyArn")
        principal_id, _ = await _holder(ctx, kind, args.text(kind.wire))
        assert principal_id is not None, "the configuration's roles are refused before any change"
        if not await ctx.tx.attachments.detach(kind.type, principal_id, policy):
            raise NoSuchEntity(f"Policy {policy} was not found.")
        return {}

    return detach


def _list(kind: _Kind) -> Callable[[ActionContext, Args], Awaitable[Mapping[str, Any]]]:
    async def list_attached(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
        _, arns = await _holder(ctx, kind, args.text(kind.wire))
        prefix = args.optional("PathPrefix") or "/"
        views = [
            v
            for v in [await find_policy(ctx, a) for a in arns]
            if v is not None and v.path.startswith(prefix)
        ]
        page = page_of(views, PageRequest.of(args), lambda v: v.arn)
        return page.fields("AttachedPolicies", lambda v: {"PolicyName": v.name, "PolicyArn": v.arn})

    return list_attached


# ListEntitiesForPolicy.

_ENTITY_FILTER = enum("User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy")


async def _entities(
    ctx: ActionContext, policy: PolicyView, usage: str | None
) -> list[tuple[str, str, str, str]]:
    """``(type, name, id, path)`` of every principal holding ``policy`` (attached, or as boundary)."""
    found: dict[tuple[str, str], tuple[str, str, str, str]] = {}
    if usage != "PermissionsBoundary":
        for a in await ctx.tx.attachments.for_policy(policy.arn):
            entity = await _entity(ctx, a.principal_type, a.principal_id)
            if entity is not None:
                found[(entity[0], entity[2])] = entity
        for holder in configured_holders(ctx.snapshot, policy.arn):
            entity = _configured_entity(holder)
            found[(entity[0], entity[2])] = entity
    if usage != "PermissionsPolicy":
        for bounded in configured_bounded(ctx.snapshot, policy.arn):
            found[("User", bounded.user_id)] = ("User", bounded.name, bounded.user_id, bounded.path)
        for user in await ctx.tx.users.all():
            if user.boundary_arn == policy.arn:
                found[("User", user.id)] = ("User", user.name, user.id, user.path)
        for r in await ctx.tx.roles.all():
            if r.boundary_arn == policy.arn:
                found[("Role", r.id)] = ("Role", r.name, r.id, r.path)
    return list(found.values())


def _configured_entity(holder: Role | User | Group) -> tuple[str, str, str, str]:
    if isinstance(holder, Role):
        return ("Role", holder.name, holder.role_id, holder.path)
    if isinstance(holder, User):
        return ("User", holder.name, holder.user_id, holder.path)
    return ("Group", holder.name, holder.group_id, holder.path)


async def _entity(
    ctx: ActionContext, principal_type: str, principal_id: str
) -> tuple[str, str, str, str] | None:
    if principal_type == "user":
        user = await ctx.tx.users.get_by_id(principal_id)
        return None if user is None else ("User", user.name, user.id, user.path)
    if principal_type == "group":
        group = await ctx.tx.groups.get_by_id(principal_id)
        return None if group is None else ("Group", group.name, group.id, group.path)
    role = await ctx.tx.roles.get_by_id(principal_id)
    return None if role is None else ("Role", role.name, role.id, role.path)


async def _policy(ctx: ActionContext, args: Args) -> Resource:
    view = await find_policy(ctx, args.text("PolicyArn"))
    return Resource(args.text("PolicyArn") if view is None else view.arn, "AWS::IAM::Policy")


async def _list_entities(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    policy = await require_policy(ctx, args.text("PolicyArn"))
    entities = await _entities(ctx, policy, args.optional("PolicyUsageFilter"))
    wanted = args.optional("EntityFilter")
    if wanted in ("User", "Role", "Group"):
        entities = [e for e in entities if e[0] == wanted]
    prefix = args.optional("PathPrefix") or "/"
    entities = [e for e in entities if e[3].startswith(prefix)]
    page = page_of(entities, PageRequest.of(args), lambda e: f"{e[0]}:{e[1].lower()}")
    out: dict[str, Any] = {
        "PolicyGroups": [{"GroupName": e[1], "GroupId": e[2]} for e in page.items if e[0] == "Group"],
        "PolicyUsers": [{"UserName": e[1], "UserId": e[2]} for e in page.items if e[0] == "User"],
        "PolicyRoles": [{"RoleName": e[1], "RoleId": e[2]} for e in page.items if e[0] == "Role"],
        "IsTruncated": page.marker is not None,
    }
    if page.marker is not None:
        out["Marker"] = page.marker
    return out


def _family(kind: _Kind) -> tuple[IamAction, ...]:
    noun, named = kind.noun, f"the {kind.noun.lower()}'s ARN"
    change = f"{named}; condition key `iam:PolicyARN`"
    return (
        IamAction(
            f"Attach{noun}Policy",
            f"Attach a managed policy to a {noun.lower()} (at most {MAX_ATTACHED}).",
            (kind.param, POLICY_ARN),
            _resolver(kind),
            change,
            _attach(kind),
            writes=True,
            errors=(InvalidInput, LimitExceeded, NoSuchEntity, UnmodifiableEntity, ValidationError),
        ),
        IamAction(
            f"Detach{noun}Policy",
            f"Detach a managed policy from a {noun.lower()}.",
            (kind.param, POLICY_ARN),
            _resolver(kind),
            change,
            _detach(kind),
            writes=True,
            errors=(NoSuchEntity, UnmodifiableEntity, ValidationError),
        ),
        IamAction(
            f"ListAttached{noun}Policies",
            f"The managed policies attached to a {noun.lower()}, paged.",
            (kind.param, PATH_PREFIX, *PAGING),
            _resolver(kind),
            named,
            _list(kind),
            errors=(NoSuchEntity, ValidationError),
        ),
    )


ACTIONS = (
    *_family(_USER),
    *_family(_GROUP),
    *_family(_ROLE),
    IamAction(
        "ListEntitiesForPolicy",
        "The users, groups and roles a managed policy is attached to (or bounds), paged.",
        (
            POLICY_ARN,
            Param("EntityFilter", _ENTITY_FILTER, "`User`, `Role` or `Group` (default: all)"),
            Param(
                "PolicyUsageFilter",
                enum("PermissionsPolicy", "PermissionsBoundary"),
                "attachments only, or boundary uses only (default: both)",
            ),
            PATH_PREFIX,
            *PAGING,
        ),
        _policy,
        "the policy's ARN",
        _list_entities,
        errors=(InvalidInput, NoSuchEntity, ValidationError),
    ),
)
