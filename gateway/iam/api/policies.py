"""Customer managed policies and their versions: create, read, list, delete, version, tag.

A policy is named by its ARN. It is the configuration file's (read-only: any change is
``UnmodifiableEntity``; it has one version, ``v1``) or the database's. A version's document is
validated by the policy engine as an identity policy and may hold 6,144 characters not counting
white space; a policy has at most five versions (``LimitExceeded``), one of them the default, which
cannot be deleted. Deleting a policy needs it detached from everything and stripped of its other
versions (``DeleteConflict``). AWS managed policies (``arn:aws:iam::aws:policy/...``) do not exist
here: they are ``NoSuchEntity``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.arns import policy_arn
from gateway.db.records import ManagedPolicyRecord, PolicyVersionRecord, Tags
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
from gateway.iam.api.documents import MANAGED_POLICY_CHARS, checked, config_text, encoded
from gateway.iam.api.entities import CONFIG_EPOCH, declared, list_resource, tag_list
from gateway.iam.api.paging import PAGING, PATH_PREFIX, PageRequest, page_of
from gateway.iam.api.params import Args, Param, arn, name, path, policy_document
from gateway.iam.api.tagging import TAG_KEYS, TAGS, TAGS_OPTIONAL, tag_handlers
from gateway.iam.api.values import boolean, enum, flag, pattern, text
from gateway.iam.catalog import CatalogSnapshot, Group, ManagedPolicy, Role, User
from gateway.iam.records import EntitySource

__all__ = [
    "ACTIONS",
    "POLICY",
    "POLICY_ARN",
    "TITLE",
    "PolicyView",
    "attachment_count",
    "check_policy_arn",
    "configured_bounded",
    "configured_holders",
    "find_policy",
    "policy_shape",
    "policy_views",
    "require_policy",
]

#: The heading of this family in docs/iam-actions.md.
TITLE = "Managed policies"
#: CloudTrail's resource type.
POLICY = "AWS::IAM::Policy"
MAX_VERSIONS = 5

POLICY_ARN = Param("PolicyArn", arn, "the policy's ARN", required=True)
_POLICY_ARN_RE = re.compile(
    r"^arn:aws[\w-]*:iam::(?:\d{12}|aws):policy/(?:[\x21-\x7e]*/)?[\w+=,.@-]{1,128}\Z"
)
_VERSION_RE = re.compile(r"^v[1-9][0-9]*(?:\.[A-Za-z0-9-]*)?\Z")
_VERSION_ID = Param(
    "VersionId",
    pattern(_VERSION_RE, r"v[1-9][0-9]*(\.[A-Za-z0-9-]*)?", 1, 128),
    "`v1`, `v2`...",
    required=True,
)
_DOCUMENT = Param("PolicyDocument", policy_document, "the policy's JSON text", required=True)


@dataclass(frozen=True, slots=True)
class PolicyView:
    """A managed policy as the actions show it, whichever source holds it.

    ``record`` is the database's row (``None`` for the configuration's); ``document`` is the
    configuration's decoded document (``None`` for the database's, whose versions hold them).
    """

    arn: str
    name: str
    path: str
    id: str
    description: str
    default_version: str
    created_at: datetime
    updated_at: datetime
    tags: Tags
    source: EntitySource
    record: ManagedPolicyRecord | None = None
    document: Mapping[str, Any] | None = None

    def version(self, version_id: str) -> PolicyVersionRecord | None:
        """The configuration's one version (``v1``); the database's are read with the repository."""
        if self.document is None or version_id != "v1":
            return None
        return PolicyVersionRecord(self.id, "v1", config_text(self.document), self.created_at, True)


def _config_id(policy: str) -> str:
    digest = hashlib.sha256(b"fedgate policy id\x00" + policy.encode()).digest()
    return "ANPA" + base64.b32encode(digest[:11]).decode()[:17]


def _from_config(policy: ManagedPolicy) -> PolicyView:
    return PolicyView(
        arn=policy.arn,
        name=policy.name,
        path=policy.path,
        id=_config_id(policy.arn),
        description=policy.description,
        default_version="v1",
        created_at=CONFIG_EPOCH,
        updated_at=CONFIG_EPOCH,
        tags=(),
        source="config",
        document=policy.document,
    )


def _from_db(record: ManagedPolicyRecord) -> PolicyView:
    return PolicyView(
        arn=record.arn,
        name=record.name,
        path=record.path,
        id=record.id,
        description=record.description,
        default_version=record.default_version,
        created_at=record.created_at,
        updated_at=record.updated_at,
        tags=record.tags,
        source="api",
        record=record,
    )


def check_policy_arn(value: str) -> str:
    """``value`` if it is spelled as a managed policy's ARN; ``InvalidInput`` otherwise."""
    if not _POLICY_ARN_RE.match(value):
        raise InvalidInput(f"ARN {value[:256]} is not valid.")
    return value


async def find_policy(ctx: ActionContext, arn_: str) -> PolicyView | None:
    """The managed policy at ``arn_``: the configuration's, or the database's, or ``None``."""
    configured = ctx.snapshot.policy(arn_)
    if configured is not None and configured.source == "config":
        return _from_config(configured)
    record = await ctx.tx.policies.get_by_arn(arn_)
    return None if record is None else _from_db(record)


async def require_policy(ctx: ActionContext, arn_: str) -> PolicyView:
    """The managed policy at ``arn_``; ``NoSuchEntity`` naming the ARN otherwise."""
    found = await find_policy(ctx, check_policy_arn(arn_))
    if found is None:
        raise NoSuchEntity(f"Policy {arn_} does not exist or is not attachable.")
    return found


def _record(view: PolicyView) -> ManagedPolicyRecord:
    assert view.record is not None, "the configuration's policies are refused before any change"
    return view.record


def configured_holders(snapshot: CatalogSnapshot, policy: str) -> list[Role | User | Group]:
    """The configuration's roles, users and groups the managed policy ``policy`` is attached to."""
    holders: list[Role | User | Group] = [*snapshot.roles.values(), *snapshot.users.values()]
    holders += snapshot.groups.values()
    return [h for h in holders if h.source == "config" and any(m.arn == policy for m in h.managed)]


def configured_bounded(snapshot: CatalogSnapshot, policy: str) -> list[User]:
    """The configuration's users the managed policy ``policy`` is the permissions boundary of."""
    return [u for u in snapshot.users.values() if u.source == "config" and u.boundary_arn == policy]


async def attachment_count(ctx: ActionContext, view: PolicyView) -> int:
    """How many users, groups and roles the policy is attached to (the configuration's too)."""
    stored = len(await ctx.tx.attachments.for_policy(view.arn))
    return stored + len(configured_holders(ctx.snapshot, view.arn))


async def _boundary_count(ctx: ActionContext, view: PolicyView) -> int:
    users = sum(1 for u in await ctx.tx.users.all() if u.boundary_arn == view.arn)
    roles = sum(1 for r in await ctx.tx.roles.all() if r.boundary_arn == view.arn)
    return users + roles + len(configured_bounded(ctx.snapshot, view.arn))


async def policy_shape(ctx: ActionContext, view: PolicyView, *, full: bool) -> dict[str, Any]:
    """IAM's ``Policy``; ``full`` adds the description and tags (GetPolicy, CreatePolicy)."""
    out: dict[str, Any] = {
        "PolicyName": view.name,
        "PolicyId": view.id,
        "Arn": view.arn,
        "Path": view.path,
        "DefaultVersionId": view.default_version,
        "AttachmentCount": await attachment_count(ctx, view),
        "PermissionsBoundaryUsageCount": await _boundary_count(ctx, view),
        "IsAttachable": True,
        "CreateDate": view.created_at,
        "UpdateDate": view.updated_at,
    }
    if full:
        if view.description:
            out["Description"] = view.description
        if view.tags:
            out["Tags"] = tag_list(view.tags)
    return out


def _version_shape(version: PolicyVersionRecord, *, document: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "VersionId": version.version_id,
        "IsDefaultVersion": version.is_default,
        "CreateDate": version.created_at,
    }
    if document:
        out["Document"] = encoded(version.document)
    return out


def _document(args: Args) -> str:
    return checked(
        args.text("PolicyDocument"),
        kind="identity",
        name="PolicyDocument",
        limit=MANAGED_POLICY_CHARS,
        quota="PolicySize",
    )


# Resolvers.


async def _named_policy(ctx: ActionContext, args: Args) -> Resource:
    policy = check_policy_arn(args.text("PolicyArn"))
    view = await find_policy(ctx, policy)
    configured = Declared("policy", view.name) if view is not None and view.source == "config" else None
    return Resource(policy, POLICY, declared=configured)


async def _new_policy(ctx: ActionContext, args: Args) -> Resource:
    policy_name = args.text("PolicyName")
    return Resource(
        policy_arn(ctx.account_id, args.optional("Path") or "/", policy_name),
        POLICY,
        declared=declared(ctx.snapshot, "policy", policy_name),
    )


async def _policies(ctx: ActionContext, args: Args) -> Resource:
    return list_resource(ctx, "policy", args.optional("PathPrefix"))


# Handlers.


async def _create_policy(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    record = await ctx.tx.policies.create(
        args.text("PolicyName"),
        document=_document(args),
        path=args.optional("Path") or "/",
        description=args.optional("Description") or "",
        tags=args.mapping("Tags"),
    )
    return {"Policy": await policy_shape(ctx, _from_db(record), full=True)}


async def _get_policy(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    return {"Policy": await policy_shape(ctx, await require_policy(ctx, args.text("PolicyArn")), full=True)}


async def policy_views(ctx: ActionContext, prefix: str) -> list[PolicyView]:
    """Every managed policy whose path starts with ``prefix``: the configuration's, then the API's."""
    views = [
        _from_config(p)
        for p in ctx.snapshot.policies.values()
        if p.source == "config" and p.path.startswith(prefix)
    ]
    return views + [_from_db(r) for r in await ctx.tx.policies.list(prefix)]


async def _list_policies(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    prefix = args.optional("PathPrefix") or "/"
    views = [] if args.optional("Scope") == "AWS" else await policy_views(ctx, prefix)
    usage = args.optional("PolicyUsageFilter")
    if flag(args, "OnlyAttached") or usage == "PermissionsPolicy":
        views = [v for v in views if await attachment_count(ctx, v) > 0]
    if usage == "PermissionsBoundary":
        views = [v for v in views if await _boundary_count(ctx, v) > 0]
    page = page_of(views, PageRequest.of(args), lambda v: v.name.lower())
    shapes = [await policy_shape(ctx, v, full=False) for v in page.items]
    out: dict[str, Any] = {"Policies": shapes, "IsTruncated": page.marker is not None}
    if page.marker is not None:
        out["Marker"] = page.marker
    return out


async def _delete_policy(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    view = await require_policy(ctx, args.text("PolicyArn"))
    await ctx.tx.policies.delete(view.arn)
    return {}


async def _create_version(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    record = _record(await require_policy(ctx, args.text("PolicyArn")))
    document = _document(args)
    if await ctx.tx.policies.count_versions(record.id) >= MAX_VERSIONS:
        raise LimitExceeded(
            f"A managed policy can have up to {MAX_VERSIONS} versions. Before you create a new version, "
            "you must delete an existing version."
        )
    version = await ctx.tx.policies.create_version(
        record.id, document, set_default=flag(args, "SetAsDefault")
    )
    return {"PolicyVersion": _version_shape(version, document=False)}


async def _version(ctx: ActionContext, args: Args) -> tuple[PolicyView, PolicyVersionRecord]:
    view = await require_policy(ctx, args.text("PolicyArn"))
    version_id = args.text("VersionId")
    found = (
        view.version(version_id)
        if view.record is None
        else await ctx.tx.policies.get_version(view.record.id, version_id)
    )
    if found is None:
        raise NoSuchEntity(f"Policy {view.arn} version {version_id} does not exist or is not attachable.")
    return view, found


async def _get_version(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    _, version = await _version(ctx, args)
    return {"PolicyVersion": _version_shape(version, document=True)}


async def _list_versions(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    view = await require_policy(ctx, args.text("PolicyArn"))
    if view.record is None:
        versions = [v for v in (view.version("v1"),) if v is not None]
    else:
        versions = await ctx.tx.policies.versions(view.record.id)
    # Newest first, as IAM lists them; the marker is the last version number shown.
    page = page_of(
        versions, PageRequest.of(args), lambda v: f"{10**9 - int(v.version_id[1:].split('.')[0]):010d}"
    )
    return page.fields("Versions", lambda v: _version_shape(v, document=False))


async def _delete_version(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    view, version = await _version(ctx, args)
    if version.is_default:
        raise DeleteConflict("Cannot delete the default version of a policy.")
    await ctx.tx.policies.delete_version(_record(view).id, version.version_id)
    return {}


async def _set_default(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    view, version = await _version(ctx, args)
    await ctx.tx.policies.set_default_version(_record(view).id, version.version_id)
    return {}


_tag_policy, _untag_policy, _list_tags = tag_handlers(
    lambda ctx, args: require_policy(ctx, args.text("PolicyArn")),
    lambda ctx: ctx.tx.policies,
    lambda view: view.name,
)


_NAMED = "the policy's ARN"
_COMMON_ERRORS = (InvalidInput, NoSuchEntity, ValidationError)
_CHANGE_ERRORS = (*_COMMON_ERRORS, UnmodifiableEntity)

ACTIONS = (
    IamAction(
        "CreatePolicy",
        "Create a customer managed policy; its document is version `v1`, the default.",
        (
            Param("PolicyName", name(128), "1-128 of `[\\w+=,.@-]`", required=True),
            _DOCUMENT,
            Param("Path", path, "`/` (the default) or `/a/b/`"),
            Param("Description", text(0, 1000), "up to 1,000 characters; cannot be changed later"),
            TAGS_OPTIONAL,
        ),
        _new_policy,
        "the new policy's ARN (`policy{Path}{PolicyName}`)",
        _create_policy,
        writes=True,
        creates=True,
        errors=(EntityAlreadyExists, LimitExceeded, MalformedPolicyDocument, InvalidInput, ValidationError),
    ),
    IamAction(
        "GetPolicy",
        "A managed policy: id, path, default version, attachment counts, description, tags.",
        (POLICY_ARN,),
        _named_policy,
        _NAMED,
        _get_policy,
        errors=_COMMON_ERRORS,
    ),
    IamAction(
        "ListPolicies",
        "Managed policies (the configuration's and the API's; `Scope=AWS` lists none), by name, paged.",
        (
            Param("Scope", enum("All", "AWS", "Local"), "`All` (default), `Local` or `AWS`"),
            Param("OnlyAttached", boolean, "only policies attached to something"),
            Param(
                "PolicyUsageFilter",
                enum("PermissionsPolicy", "PermissionsBoundary"),
                "only policies used as permissions policies, or as boundaries",
            ),
            PATH_PREFIX,
            *PAGING,
        ),
        _policies,
        "`policy{PathPrefix}`",
        _list_policies,
        errors=(ValidationError,),
    ),
    IamAction(
        "DeletePolicy",
        "Delete a managed policy attached to nothing and with no version but the default.",
        (POLICY_ARN,),
        _named_policy,
        _NAMED,
        _delete_policy,
        writes=True,
        errors=(*_CHANGE_ERRORS, DeleteConflict),
    ),
    IamAction(
        "CreatePolicyVersion",
        "Add a version (at most five), optionally making it the default.",
        (POLICY_ARN, _DOCUMENT, Param("SetAsDefault", boolean, "make it the version in force")),
        _named_policy,
        _NAMED,
        _create_version,
        writes=True,
        errors=(*_CHANGE_ERRORS, LimitExceeded, MalformedPolicyDocument),
    ),
    IamAction(
        "GetPolicyVersion",
        "One version of a managed policy, with its document (URL-encoded, as IAM returns it).",
        (POLICY_ARN, _VERSION_ID),
        _named_policy,
        _NAMED,
        _get_version,
        errors=_COMMON_ERRORS,
    ),
    IamAction(
        "ListPolicyVersions",
        "A managed policy's versions, newest first, paged.",
        (POLICY_ARN, *PAGING),
        _named_policy,
        _NAMED,
        _list_versions,
        errors=_COMMON_ERRORS,
    ),
    IamAction(
        "DeletePolicyVersion",
        "Delete a version that is not the default.",
        (POLICY_ARN, _VERSION_ID),
        _named_policy,
        _NAMED,
        _delete_version,
        writes=True,
        errors=(*_CHANGE_ERRORS, DeleteConflict),
    ),
    IamAction(
        "SetDefaultPolicyVersion",
        "Make a version the one in force.",
        (POLICY_ARN, _VERSION_ID),
        _named_policy,
        _NAMED,
        _set_default,
        writes=True,
        errors=_CHANGE_ERRORS,
    ),
    IamAction(
        "TagPolicy",
        "Add or overwrite tags of a managed policy (at most 50 in all).",
        (POLICY_ARN, TAGS),
        _named_policy,
        _NAMED,
        _tag_policy,
        writes=True,
        errors=(*_CHANGE_ERRORS, LimitExceeded),
    ),
    IamAction(
        "UntagPolicy",
        "Remove tags from a managed policy.",
        (POLICY_ARN, TAG_KEYS),
        _named_policy,
        _NAMED,
        _untag_policy,
        writes=True,
        errors=_CHANGE_ERRORS,
    ),
    IamAction(
        "ListPolicyTags",
        "A managed policy's tags, by key, paged.",
        (POLICY_ARN, *PAGING),
        _named_policy,
        _NAMED,
        _list_tags,
        errors=_COMMON_ERRORS,
    ),
)
