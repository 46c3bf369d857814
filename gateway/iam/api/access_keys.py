"""Users' long-term access keys: create (the secret is answered once), activate or deactivate,
delete, list, and when each was last used.

The database seals the secret under the key ring as it stores it; nothing here keeps it, and the
audit trail records the key's id, never the secret. ``UserName`` defaults to the calling user.

Making a key inactive or deleting it also revokes, in the same transaction, every session it asked
for (``GetSessionToken``, ``GetFederationToken``, and the sessions chained from them): they stay
revoked if the key is made active again, as their cutoff only moves forward.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.credentials import new_secret_access_key
from gateway.credentials.revocation import ACCESS_KEY
from gateway.db.records import AccessKeyRecord, UserRecord
from gateway.errors import LimitExceeded, NoSuchEntity, ValidationError
from gateway.iam.api.action import ActionContext, IamAction, Resource
from gateway.iam.api.entities import (
    CONFIG_EPOCH,
    configured_user,
    named_or_calling_user,
    require_user,
    user_resource,
)
from gateway.iam.api.paging import PAGING, PageRequest, page_of
from gateway.iam.api.params import Args, Param, access_key_id, name, status
from gateway.sts.xml import iso8601

__all__ = ["ACTIONS", "MAX_ACCESS_KEYS", "TITLE"]

#: The heading of this family in docs/iam-actions.md.
TITLE = "Access keys"

#: Access keys one user may have (AWS's quota).
MAX_ACCESS_KEYS = 2

_USER_NAME = Param("UserName", name(64), "the user's name; the calling user when omitted")
_KEY_ID = Param("AccessKeyId", access_key_id, "the key's id (`AKIA...`)", required=True)


def _shape(user: UserRecord, key: AccessKeyRecord) -> dict[str, Any]:
    return {"UserName": user.name, "AccessKeyId": key.id, "Status": key.status, "CreateDate": key.created_at}


async def _users_key(ctx: ActionContext, args: Args) -> tuple[UserRecord, AccessKeyRecord]:
    user = await ctx.tx.users.require(ctx.user_name(args))
    key_id = args.text("AccessKeyId")
    key = await ctx.tx.access_keys.get(key_id)
    if key is None or key.user_id != user.id:
        raise NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")
    return user, key


async def _create(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    user = await ctx.tx.users.require(ctx.user_name(args))
    if len(await ctx.tx.access_keys.for_user(user.id)) >= MAX_ACCESS_KEYS:
        raise LimitExceeded(f"Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS}")
    secret = new_secret_access_key()
    key = await ctx.tx.access_keys.create(user.id, secret)
    ctx.record.response_elements = {
        "accessKey": {
            "accessKeyId": key.id,
            "status": key.status,
            "userName": user.name,
            "createDate": iso8601(key.created_at),
        }
    }
    return {"AccessKey": {**_shape(user, key), "SecretAccessKey": secret}}


async def _revoke_key_sessions(ctx: ActionContext, key_id: str) -> None:
    # The sessions this key asked for until now end with it (the cutoff is the call's time).
    await ctx.tx.revocations.raise_cutoff(ACCESS_KEY, key_id, ctx.record.now)


async def _update(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    _, key = await _users_key(ctx, args)
    active = args.text("Status") == "Active"
    await ctx.tx.access_keys.set_status(key.id, "Active" if active else "Inactive")
    if not active:
        await _revoke_key_sessions(ctx, key.id)
    return {}


async def _delete(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    _, key = await _users_key(ctx, args)
    await ctx.tx.access_keys.delete(key.id)
    await _revoke_key_sessions(ctx, key.id)
    return {}


def _configured_keys(ctx: ActionContext, user: UserRecord) -> list[AccessKeyRecord]:
    """The keys the configuration file declares for its user ``user`` (their secrets stay there)."""
    return [
        AccessKeyRecord(k.access_key_id, user.id, k.status, CONFIG_EPOCH, None, None, None, sealed_secret="")
        for k in ctx.snapshot.access_keys.values()
        if k.source == "config" and k.user_arn == user.arn
    ]


async def _list(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    user = await require_user(ctx, ctx.user_name(args))
    if configured_user(ctx.snapshot, user.name) is not None:
        keys = _configured_keys(ctx, user)
    else:
        keys = await ctx.tx.access_keys.for_user(user.id)
    page = page_of(keys, PageRequest.of(args), lambda k: k.id)
    return page.fields("AccessKeyMetadata", lambda k: _shape(user, k))


async def _key_owner(ctx: ActionContext, args: Args) -> Resource:
    key = await ctx.tx.access_keys.get(args.text("AccessKeyId"))
    user = None if key is None else await ctx.tx.users.get_by_id(key.user_id)
    if user is None:
        # No such key: only a caller allowed the action on every resource learns that.
        return Resource("*")
    return await user_resource(ctx, user.name)


async def _last_used(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    key_id = args.text("AccessKeyId")
    key = await ctx.tx.access_keys.get(key_id)
    user = None if key is None else await ctx.tx.users.get_by_id(key.user_id)
    if key is None or user is None:
        raise NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")
    used: dict[str, Any] = {
        "ServiceName": key.last_used_service or "N/A",
        "Region": key.last_used_region or "N/A",
    }
    if key.last_used_at is not None:
        used["LastUsedDate"] = key.last_used_at
    return {"UserName": user.name, "AccessKeyLastUsed": used}


ACTIONS = (
    IamAction(
        "CreateAccessKey",
        "Create an access key (`AKIA` and 16 characters) for a user; its 40-character secret is "
        "returned this once. At most 2 per user.",
        (_USER_NAME,),
        named_or_calling_user,
        "the user's ARN",
        _create,
        writes=True,
        errors=(LimitExceeded, NoSuchEntity, ValidationError),
    ),
    IamAction(
        "UpdateAccessKey",
        "Make a user's access key `Active` or `Inactive`; `Inactive` revokes the sessions it asked for "
        "(GetSessionToken, GetFederationToken, chained from them), for good.",
        (_USER_NAME, _KEY_ID, Param("Status", status, "`Active` or `Inactive`", required=True)),
        named_or_calling_user,
        "the user's ARN",
        _update,
        writes=True,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "DeleteAccessKey",
        "Delete a user's access key, revoking the sessions it asked for.",
        (_USER_NAME, _KEY_ID),
        named_or_calling_user,
        "the user's ARN",
        _delete,
        writes=True,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "ListAccessKeys",
        "A user's access keys (id, status, creation date; never a secret), the configuration's "
        "users' too, paged.",
        (_USER_NAME, *PAGING),
        named_or_calling_user,
        "the user's ARN",
        _list,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "GetAccessKeyLastUsed",
        "When, where and for which service an access key was last used, and whose it is.",
        (_KEY_ID,),
        _key_owner,
        "the ARN of the key's user (`*` for a key that does not exist)",
        _last_used,
        errors=(NoSuchEntity, ValidationError),
    ),
)
