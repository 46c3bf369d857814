"""Inline policies: the four actions (Put, Get, List, Delete ``{Holder}Policy``) of each kind of
entity that holds them, made by :func:`inline_policy_actions` (users and groups here; roles reuse
it with their own quota).

A document is validated by the policy engine (``MalformedPolicyDocument``) and counted against the
holder's quota on the total size of its inline policies, whitespace not counted, as AWS counts
(users 2,048 characters, groups 5,120, roles 10,240): ``LimitExceeded``. Documents are stored as
given and answered URL-encoded, as IAM does (botocore decodes them). A user or group the
configuration file declares shows its inline policies and refuses changes (``UnmodifiableEntity``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.db.records import GroupRecord, PrincipalType, UserRecord
from gateway.errors import LimitExceeded, MalformedPolicyDocument, NoSuchEntity, ValidationError
from gateway.iam.api.action import ActionContext, IamAction, Resource
from gateway.iam.api.documents import encoded, iam_size, total_size
from gateway.iam.api.entities import (
    group_resource,
    inline_documents,
    require_group,
    require_user,
    user_resource,
)
from gateway.iam.api.groups import GROUP_NAME
from gateway.iam.api.paging import PAGING, PageRequest, page_of
from gateway.iam.api.params import Args, Param, name, policy_document
from gateway.iam.api.users import USER_NAME
from gateway.policy import parse_policy

__all__ = [
    "ACTIONS",
    "GROUP_INLINE_QUOTA",
    "TITLE",
    "USER_INLINE_QUOTA",
    "InlineHolder",
    "inline_policy_actions",
]

#: The heading of this family in docs/iam-actions.md.
TITLE = "Inline policies"

#: The total size of one user's (group's) inline policies, whitespace not counted.
USER_INLINE_QUOTA = 2048
GROUP_INLINE_QUOTA = 5120

_POLICY_NAME = Param(
    "PolicyName", name(128), "the inline policy's name (1-128 of `[\\w+=,.@-]`)", required=True
)
_DOCUMENT = Param("PolicyDocument", policy_document, "the policy's JSON text", required=True)


@dataclass(frozen=True, slots=True)
class InlineHolder:
    """A kind of entity that holds inline policies.

    ``noun`` is how action names spell it (``User``), ``name_param`` its name parameter
    (``UserName``); ``resource`` resolves the entity for authorization, ``find`` returns the
    entity with that name, from either source (``NoSuchEntity`` when there is none); ``quota``
    bounds the total size of its inline policies.
    """

    noun: str
    principal_type: PrincipalType
    name_param: Param
    quota: int
    resource: Callable[[ActionContext, str], Awaitable[Resource]]
    find: Callable[[ActionContext, str], Awaitable[UserRecord | GroupRecord]]


def inline_policy_actions(holder: InlineHolder) -> tuple[IamAction, ...]:
    """``Put``, ``Get``, ``List`` and ``Delete`` ``{noun}Policy`` for ``holder``."""
    noun, kind, wire = holder.noun, holder.principal_type, holder.name_param.name
    lower = noun.lower()

    async def resource(ctx: ActionContext, args: Args) -> Resource:
        return await holder.resource(ctx, args.text(wire))

    async def documents(ctx: ActionContext, owner: str) -> dict[str, str]:
        return await inline_documents(ctx, await holder.find(ctx, owner))

    async def put(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
        owner, policy_name, document = args.text(wire), args.text("PolicyName"), args.text("PolicyDocument")
        entity = await holder.find(ctx, owner)
        parse_policy(document, kind="identity", name=policy_name)
        others = await inline_documents(ctx, entity)
        total = iam_size(document) + total_size(d for n, d in others.items() if n != policy_name)
        if total > holder.quota:
            raise LimitExceeded(f"Maximum policy size of {holder.quota} bytes exceeded for {lower} {owner}")
        await ctx.tx.inline_policies.put(kind, entity.id, policy_name, document)
        return {}

    async def get(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
        owner, policy_name = args.text(wire), args.text("PolicyName")
        document = (await documents(ctx, owner)).get(policy_name)
        if document is None:
            raise NoSuchEntity(f"The {lower} policy with name {policy_name} cannot be found.")
        return {wire: owner, "PolicyName": policy_name, "PolicyDocument": encoded(document)}

    async def list_(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
        names = sorted(await documents(ctx, args.text(wire)))
        return page_of(names, PageRequest.of(args), lambda n: n).fields("PolicyNames", lambda n: n)

    async def delete(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
        policy_name = args.text("PolicyName")
        if not await ctx.tx.inline_policies.delete(
            kind, (await holder.find(ctx, args.text(wire))).id, policy_name
        ):
            raise NoSuchEntity(f"The {lower} policy with name {policy_name} cannot be found.")
        return {}

    arn = f"the {lower}'s ARN"
    return (
        IamAction(
            f"Put{noun}Policy",
            f"Create or replace an inline policy of a {lower} (all its inline policies: at most "
            f"{holder.quota:,} characters, whitespace not counted).",
            (holder.name_param, _POLICY_NAME, _DOCUMENT),
            resource,
            arn,
            put,
            writes=True,
            errors=(LimitExceeded, MalformedPolicyDocument, NoSuchEntity, ValidationError),
        ),
        IamAction(
            f"Get{noun}Policy",
            f"One inline policy of a {lower}; the document URL-encoded.",
            (holder.name_param, _POLICY_NAME),
            resource,
            arn,
            get,
            errors=(NoSuchEntity, ValidationError),
        ),
        IamAction(
            f"List{noun}Policies",
            f"The names of a {lower}'s inline policies, paged.",
            (holder.name_param, *PAGING),
            resource,
            arn,
            list_,
            errors=(NoSuchEntity, ValidationError),
        ),
        IamAction(
            f"Delete{noun}Policy",
            f"Delete an inline policy of a {lower}.",
            (holder.name_param, _POLICY_NAME),
            resource,
            arn,
            delete,
            writes=True,
            errors=(NoSuchEntity, ValidationError),
        ),
    )


ACTIONS = (
    *inline_policy_actions(
        InlineHolder("User", "user", USER_NAME, USER_INLINE_QUOTA, user_resource, require_user)
    ),
    *inline_policy_actions(
        InlineHolder("Group", "group", GROUP_NAME, GROUP_INLINE_QUOTA, group_resource, require_group)
    ),
)
