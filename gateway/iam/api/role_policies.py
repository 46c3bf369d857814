"""A role's inline policies: put, get, list, delete.

Each document is validated by the policy engine as an identity policy. All of a role's inline
policies together may hold 10,240 characters not counting white space (``LimitExceeded``,
nothing changed). The configuration's roles show their inline policies and refuse changes
(``UnmodifiableEntity``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import (
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
    UnmodifiableEntity,
    ValidationError,
)
from gateway.iam.api.action import ActionContext, IamAction, Resource
from gateway.iam.api.documents import ROLE_INLINE_CHARS, config_text, encoded, iam_size, total_size
from gateway.iam.api.paging import PAGING, PageRequest, page_of
from gateway.iam.api.params import Args, Param, name, policy_document
from gateway.iam.api.roles import ROLE_NAME, RoleView, require_role, role_resource, stored
from gateway.policy import parse_policy

__all__ = ["ACTIONS", "TITLE", "inline_policies"]

#: The heading of this family in docs/iam-actions.md.
TITLE = "Inline policies of roles"

_POLICY_NAME = Param("PolicyName", name(128), "1-128 of `[\\w+=,.@-]`", required=True)


async def inline_policies(ctx: ActionContext, view: RoleView) -> dict[str, str]:
    """The role's inline policies by name, as text."""
    if view.configured is not None:
        return {p.name: config_text(p.document) for p in view.configured.inline}
    found = await ctx.tx.inline_policies.for_principal("role", stored(view).id)
    return {p.name: p.document for p in found}


async def _named_role(ctx: ActionContext, args: Args) -> Resource:
    return await role_resource(ctx, args.text("RoleName"))


async def _put(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    view = await require_role(ctx, args.text("RoleName"))
    policy_name = args.text("PolicyName")
    document = args.text("PolicyDocument")
    others = {k: v for k, v in (await inline_policies(ctx, view)).items() if k != policy_name}
    parse_policy(document, kind="identity", name=policy_name)
    if total_size(others.values()) + iam_size(document) > ROLE_INLINE_CHARS:
        raise LimitExceeded(f"Maximum policy size of {ROLE_INLINE_CHARS} bytes exceeded for role {view.name}")
    await ctx.tx.inline_policies.put("role", stored(view).id, policy_name, document)
    return {}


async def _get(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    view = await require_role(ctx, args.text("RoleName"))
    policy_name = args.text("PolicyName")
    document = (await inline_policies(ctx, view)).get(policy_name)
    if document is None:
        raise NoSuchEntity(f"The role policy with name {policy_name} cannot be found.")
    return {"RoleName": view.name, "PolicyName": policy_name, "PolicyDocument": encoded(document)}


async def _list(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    view = await require_role(ctx, args.text("RoleName"))
    names = sorted(await inline_policies(ctx, view))
    return page_of(names, PageRequest.of(args), lambda n: n).fields("PolicyNames", lambda n: n)


async def _delete(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    view = await require_role(ctx, args.text("RoleName"))
    policy_name = args.text("PolicyName")
    if not await ctx.tx.inline_policies.delete("role", stored(view).id, policy_name):
        raise NoSuchEntity(f"The role policy with name {policy_name} cannot be found.")
    return {}


_NAMED = "the role's ARN"

ACTIONS = (
    IamAction(
        "PutRolePolicy",
        "Create or replace an inline policy of a role (all of them together: 10,240 characters).",
        (
            ROLE_NAME,
            _POLICY_NAME,
            Param("PolicyDocument", policy_document, "the policy's JSON text", required=True),
        ),
        _named_role,
        _NAMED,
        _put,
        writes=True,
        errors=(LimitExceeded, MalformedPolicyDocument, NoSuchEntity, UnmodifiableEntity, ValidationError),
    ),
    IamAction(
        "GetRolePolicy",
        "One inline policy of a role (URL-encoded, as IAM returns it).",
        (ROLE_NAME, _POLICY_NAME),
        _named_role,
        _NAMED,
        _get,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "ListRolePolicies",
        "The names of a role's inline policies, paged.",
        (ROLE_NAME, *PAGING),
        _named_role,
        _NAMED,
        _list,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "DeleteRolePolicy",
        "Delete an inline policy of a role.",
        (ROLE_NAME, _POLICY_NAME),
        _named_role,
        _NAMED,
        _delete,
        writes=True,
        errors=(NoSuchEntity, UnmodifiableEntity, ValidationError),
    ),
)
