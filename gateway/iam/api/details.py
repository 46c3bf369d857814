"""GetAccountAuthorizationDetails: every user, group, role and managed policy with its policies.

One answer describes the account's whole authorization state, as IAM's does: users with their
inline policies, groups and attached policies; groups with theirs; roles with their trust policy,
instance profiles and policies; managed policies with every version. The configuration's users,
groups, roles and policies are included. ``Filter`` picks the kinds; the entries are paged together (users,
then groups, roles and policies, each by name). Documents are URL-encoded, as IAM answers them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.db.records import GroupRecord, UserRecord
from gateway.errors import ValidationError
from gateway.iam.api.action import ActionContext, IamAction, Resource
from gateway.iam.api.attachments import attached_arns
from gateway.iam.api.documents import encoded
from gateway.iam.api.entities import (
    attached_policy_arns,
    group_shape,
    groups_of,
    groups_page,
    inline_documents,
    user_shape,
    users_page,
)
from gateway.iam.api.paging import PAGING, PageRequest, page_of
from gateway.iam.api.params import Args, Param
from gateway.iam.api.policies import PolicyView, find_policy, policy_shape, policy_views
from gateway.iam.api.role_policies import inline_policies
from gateway.iam.api.roles import RoleView, role_shape, role_views
from gateway.iam.api.values import strings

__all__ = ["ACTIONS", "TITLE"]

#: The heading of this family in docs/iam-actions.md.
TITLE = "Account authorization details"

_KINDS = ("User", "Group", "Role", "LocalManagedPolicy", "AWSManagedPolicy")
_FILTER = Param(
    "Filter",
    strings(1, 32, most=5, regex=re.compile(r"^(?:User|Group|Role|LocalManagedPolicy|AWSManagedPolicy)\Z")),
    "`Filter.member.N`: `User`, `Group`, `Role`, `LocalManagedPolicy`, `AWSManagedPolicy` (default: all)",
)
# Entries of one page: (sort key, kind, entity).
_Entry = tuple[str, str, Any]


async def _attached(ctx: ActionContext, arns: list[str]) -> list[dict[str, str]]:
    views = [v for v in [await find_policy(ctx, a) for a in arns] if v is not None]
    return [{"PolicyName": v.name, "PolicyArn": v.arn} for v in views]


def _inline(found: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"PolicyName": n, "PolicyDocument": encoded(d)} for n, d in sorted(found.items())]


async def _user(ctx: ActionContext, user: UserRecord) -> dict[str, Any]:
    out = user_shape(user)  # with its boundary and tags
    out["UserPolicyList"] = _inline(await inline_documents(ctx, user))
    out["GroupList"] = [g.name for g in await groups_of(ctx, user)]
    out["AttachedManagedPolicies"] = await _attached(ctx, await attached_policy_arns(ctx, user))
    return out


async def _group(ctx: ActionContext, group: GroupRecord) -> dict[str, Any]:
    out = group_shape(group)
    out["GroupPolicyList"] = _inline(await inline_documents(ctx, group))
    out["AttachedManagedPolicies"] = await _attached(ctx, await attached_policy_arns(ctx, group))
    return out


async def _role(ctx: ActionContext, view: RoleView) -> dict[str, Any]:
    out = role_shape(view)
    out.pop("Description", None)
    out.pop("MaxSessionDuration", None)
    profiles = [] if view.record is None else await ctx.tx.instance_profiles.for_role(view.id)
    out["InstanceProfileList"] = [
        {
            "Path": p.path,
            "InstanceProfileName": p.name,
            "InstanceProfileId": p.id,
            "Arn": p.arn,
            "CreateDate": p.created_at,
            "Roles": [role_shape(view, full=False)],
        }
        for p in profiles
    ]
    out["RolePolicyList"] = _inline(await inline_policies(ctx, view))
    if view.configured is not None:
        arns = [m.arn for m in view.configured.managed]
    else:
        arns = await attached_arns(ctx, "role", view.id)
    out["AttachedManagedPolicies"] = await _attached(ctx, arns)
    return out


async def _policy(ctx: ActionContext, view: PolicyView) -> dict[str, Any]:
    out = await policy_shape(ctx, view, full=False)
    if view.description:
        out["Description"] = view.description
    if view.record is None:
        versions = [v for v in (view.version("v1"),) if v is not None]
    else:
        versions = await ctx.tx.policies.versions(view.record.id)
    out["PolicyVersionList"] = [
        {
            "Document": encoded(v.document),
            "VersionId": v.version_id,
            "IsDefaultVersion": v.is_default,
            "CreateDate": v.created_at,
        }
        for v in versions
    ]
    return out


async def _everything(ctx: ActionContext, args: Args) -> Resource:
    return Resource("*")


async def _details(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    kinds = set(args.strings("Filter") or _KINDS)
    entries: list[_Entry] = []
    everything = PageRequest(None, 10**9)  # every entity of both sources, paged below with the rest
    if "User" in kinds:
        users = (await users_page(ctx, "/", everything)).items
        entries += [(f"1:{u.name.lower()}", "User", u) for u in users]
    if "Group" in kinds:
        groups = (await groups_page(ctx, "/", everything)).items
        entries += [(f"2:{g.name.lower()}", "Group", g) for g in groups]
    if "Role" in kinds:
        entries += [(f"3:{r.name.lower()}", "Role", r) for r in await role_views(ctx, "/")]
    if "LocalManagedPolicy" in kinds:
        entries += [(f"4:{p.name.lower()}", "Policy", p) for p in await policy_views(ctx, "/")]
    page = page_of(entries, PageRequest.of(args), lambda e: e[0])
    out: dict[str, Any] = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
    for _, kind, entity in page.items:
        if kind == "User":
            out["UserDetailList"].append(await _user(ctx, entity))
        elif kind == "Group":
            out["GroupDetailList"].append(await _group(ctx, entity))
        elif kind == "Role":
            out["RoleDetailList"].append(await _role(ctx, entity))
        else:
            out["Policies"].append(await _policy(ctx, entity))
    out["IsTruncated"] = page.marker is not None
    if page.marker is not None:
        out["Marker"] = page.marker
    return out


ACTIONS = (
    IamAction(
        "GetAccountAuthorizationDetails",
        "Every user, group, role and managed policy of the account with their policies (the "
        "configuration's included), paged; `Filter` picks the kinds.",
        (_FILTER, *PAGING),
        _everything,
        "`*`",
        _details,
        errors=(ValidationError,),
    ),
)
