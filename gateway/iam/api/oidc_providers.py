"""OpenID Connect identity providers: create, read, list, delete; client ids, thumbprints, tags.

A provider is named by its ARN, ``arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH``: its issuer URL
without the ``https://`` (the URL must be https, without query or fragment). It carries at most
100 client ids (the audiences its tokens may name) and at most five certificate thumbprints
(40 hexadecimal characters each; AWS no longer needs them for well-known CAs, and fedgate checks
the issuer's TLS certificate against the system's trust store instead).

The OIDC providers the configuration file declares (``providers:`` of the OIDC plugin's type, if
it offers the :class:`~gateway.capabilities.IamListed` capability) are listed and read beside the
database's, their audiences as client ids; they refuse every change (``UnmodifiableEntity``), and
creating one of their URL is ``EntityAlreadyExists``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from gateway.arns import oidc_provider_arn
from gateway.capabilities import IamListed
from gateway.db.records import OidcProviderRecord
from gateway.errors import (
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    NoSuchEntity,
    UnmodifiableEntity,
    ValidationError,
)
from gateway.iam.api.action import ActionContext, Declared, IamAction, Resource
from gateway.iam.api.entities import CONFIG_EPOCH, tag_list
from gateway.iam.api.paging import PAGING
from gateway.iam.api.params import Args, Param, arn, length
from gateway.iam.api.tagging import TAG_KEYS, TAGS, TAGS_OPTIONAL, tag_handlers
from gateway.iam.api.values import strings
from gateway.sts.params import QueryParams

__all__ = ["ACTIONS", "OIDC_PROVIDER", "TITLE", "configured_oidc", "provider_url"]

#: The heading of this family in docs/iam-actions.md.
TITLE = "OpenID Connect providers"
#: CloudTrail's resource type.
OIDC_PROVIDER = "AWS::IAM::OIDCProvider"

MAX_CLIENT_IDS = 100
MAX_THUMBPRINTS = 5
_ARN_RE = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):oidc-provider/([\x21-\x7e]{1,255})\Z")
_THUMBPRINT_RE = re.compile(r"^[0-9A-Fa-f]{40}\Z")

_PROVIDER_ARN = Param("OpenIDConnectProviderArn", arn, "the provider's ARN", required=True)
_CLIENT_IDS = Param(
    "ClientIDList", strings(1, 255, most=MAX_CLIENT_IDS), "`ClientIDList.member.N`: audiences (at most 100)"
)
_THUMBPRINTS = strings(40, 40, most=MAX_THUMBPRINTS, regex=_THUMBPRINT_RE)


def _text_255(params: QueryParams, wire: str) -> str | None:
    raw = params.get(wire)
    return None if raw is None else length(wire, raw, 1, 255)


_CLIENT_ID = Param("ClientID", _text_255, "one client id (1-255 characters)", required=True)


def provider_url(url: str) -> str:
    """The key of the provider of issuer ``url``: the URL without ``https://`` (as in its ARN);
    ``InvalidInput`` for anything but an https URL with a host and no query or fragment."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname or parts.query or parts.fragment:
        raise InvalidInput("Invalid OpenID Connect provider URL: it must be https://HOST[/PATH].")
    if parts.username is not None or parts.password is not None or any(c.isspace() for c in url):
        raise InvalidInput("Invalid OpenID Connect provider URL: it must be https://HOST[/PATH].")
    return url.split("://", 1)[1].rstrip("/")


def _key_of(ctx: ActionContext, provider_arn: str) -> str:
    match = _ARN_RE.match(provider_arn)
    if match is None:
        raise InvalidInput(f"ARN {provider_arn[:256]} is not valid.")
    if match.group(1) != ctx.account_id:
        raise NoSuchEntity(f"OpenIDConnect Provider not found for arn {provider_arn}")
    return match.group(2)


def configured_oidc(ctx: ActionContext) -> dict[str, OidcProviderRecord]:
    """The configuration's OIDC providers, by URL without the scheme (as the database keys them)."""
    found: dict[str, OidcProviderRecord] = {}
    for provider in ctx.providers:
        if provider.kind == "oidc" and isinstance(provider, IamListed):
            view = provider.iam_view()
            record = OidcProviderRecord(view.url, provider.arn, view.client_ids, (), CONFIG_EPOCH)
            found.setdefault(view.url, record)
    return found


async def _require(ctx: ActionContext, args: Args) -> OidcProviderRecord:
    key = _key_of(ctx, args.text("OpenIDConnectProviderArn"))
    configured = configured_oidc(ctx).get(key)
    return configured if configured is not None else await ctx.tx.oidc_providers.require(key)


async def _named(ctx: ActionContext, args: Args) -> Resource:
    provider_arn = args.text("OpenIDConnectProviderArn")
    key = _key_of(ctx, provider_arn)
    configured = (
        Declared("OpenID Connect provider", f"https://{key}") if key in configured_oidc(ctx) else None
    )
    return Resource(provider_arn, OIDC_PROVIDER, declared=configured)


async def _new(ctx: ActionContext, args: Args) -> Resource:
    return Resource(oidc_provider_arn(ctx.account_id, provider_url(args.text("Url"))), OIDC_PROVIDER)


async def _all(ctx: ActionContext, args: Args) -> Resource:
    return Resource(f"arn:aws:iam::{ctx.account_id}:oidc-provider/*")


async def _create(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    key = provider_url(args.text("Url"))
    if key in configured_oidc(ctx) or await ctx.tx.oidc_providers.get(key) is not None:
        raise EntityAlreadyExists(f"Provider with url https://{key} already exists.")
    client_ids = list(dict.fromkeys(args.strings("ClientIDList")))
    record = await ctx.tx.oidc_providers.create(
        key, client_ids=client_ids, thumbprints=args.strings("ThumbprintList"), tags=args.mapping("Tags")
    )
    out: dict[str, Any] = {"OpenIDConnectProviderArn": record.arn}
    if record.tags:
        out["Tags"] = tag_list(record.tags)
    return out


async def _get(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    record = await _require(ctx, args)
    out: dict[str, Any] = {
        "Url": record.url,
        "ClientIDList": list(record.client_ids),
        "ThumbprintList": list(record.thumbprints),
        "CreateDate": record.created_at,
    }
    if record.tags:
        out["Tags"] = tag_list(record.tags)
    return out


async def _list(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    configured = configured_oidc(ctx)
    stored = [r for r in await ctx.tx.oidc_providers.all() if r.url not in configured]
    return {"OpenIDConnectProviderList": [{"Arn": r.arn} for r in [*configured.values(), *stored]]}


async def _delete(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    await ctx.tx.oidc_providers.delete((await _require(ctx, args)).url)
    return {}


async def _add_client(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    record = await _require(ctx, args)
    client = args.text("ClientID")
    if client in record.client_ids:
        return {}
    if len(record.client_ids) >= MAX_CLIENT_IDS:
        raise LimitExceeded(f"Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}")
    await ctx.tx.oidc_providers.set_client_ids(record.url, [*record.client_ids, client])
    return {}


async def _remove_client(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    record = await _require(ctx, args)
    client = args.text("ClientID")
    if client in record.client_ids:  # removing one that is not there succeeds, as on AWS
        await ctx.tx.oidc_providers.set_client_ids(record.url, [c for c in record.client_ids if c != client])
    return {}


async def _update_thumbprints(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    record = await _require(ctx, args)
    await ctx.tx.oidc_providers.set_thumbprints(record.url, args.strings("ThumbprintList"))
    return {}


_tag, _untag, _list_tags = tag_handlers(
    _require, lambda ctx: ctx.tx.oidc_providers, lambda record: record.url
)


_NAMED = "the provider's ARN"
_ERRORS = (InvalidInput, NoSuchEntity, ValidationError)
_CHANGE_ERRORS = (*_ERRORS, UnmodifiableEntity)

ACTIONS = (
    IamAction(
        "CreateOpenIDConnectProvider",
        "Register an OIDC issuer: its https URL, the client ids (audiences) its tokens may name, "
        "optionally thumbprints and tags.",
        (
            Param("Url", _text_255, "the issuer's URL, `https://HOST[/PATH]`", required=True),
            _CLIENT_IDS,
            Param("ThumbprintList", _THUMBPRINTS, "`ThumbprintList.member.N`: 40 hex characters, at most 5"),
            TAGS_OPTIONAL,
        ),
        _new,
        "the new provider's ARN (`oidc-provider/HOST/PATH`)",
        _create,
        writes=True,
        creates=True,
        errors=(EntityAlreadyExists, InvalidInput, ValidationError),
    ),
    IamAction(
        "GetOpenIDConnectProvider",
        "A provider: its URL (without the scheme), client ids, thumbprints, creation date, tags.",
        (_PROVIDER_ARN,),
        _named,
        _NAMED,
        _get,
        errors=_ERRORS,
    ),
    IamAction(
        "ListOpenIDConnectProviders",
        "The ARNs of every OIDC provider: the configuration's and those registered through the API.",
        (),
        _all,
        "`oidc-provider/*`",
        _list,
    ),
    IamAction(
        "DeleteOpenIDConnectProvider",
        "Delete a provider (its tokens are refused from then on).",
        (_PROVIDER_ARN,),
        _named,
        _NAMED,
        _delete,
        writes=True,
        errors=_CHANGE_ERRORS,
    ),
    IamAction(
        "AddClientIDToOpenIDConnectProvider",
        "Add a client id (at most 100; adding one already there changes nothing).",
        (_PROVIDER_ARN, _CLIENT_ID),
        _named,
        _NAMED,
        _add_client,
        writes=True,
        errors=(*_CHANGE_ERRORS, LimitExceeded),
    ),
    IamAction(
        "RemoveClientIDFromOpenIDConnectProvider",
        "Remove a client id (removing one that is not there succeeds).",
        (_PROVIDER_ARN, _CLIENT_ID),
        _named,
        _NAMED,
        _remove_client,
        writes=True,
        errors=_CHANGE_ERRORS,
    ),
    IamAction(
        "UpdateOpenIDConnectProviderThumbprint",
        "Replace a provider's thumbprints.",
        (_PROVIDER_ARN, Param("ThumbprintList", _THUMBPRINTS, "40 hex characters each, 1-5", required=True)),
        _named,
        _NAMED,
        _update_thumbprints,
        writes=True,
        errors=_CHANGE_ERRORS,
    ),
    IamAction(
        "TagOpenIDConnectProvider",
        "Add or overwrite tags of a provider (at most 50 in all).",
        (_PROVIDER_ARN, TAGS),
        _named,
        _NAMED,
        _tag,
        writes=True,
        errors=(*_CHANGE_ERRORS, LimitExceeded),
    ),
    IamAction(
        "UntagOpenIDConnectProvider",
        "Remove tags from a provider.",
        (_PROVIDER_ARN, TAG_KEYS),
        _named,
        _NAMED,
        _untag,
        writes=True,
        errors=_CHANGE_ERRORS,
    ),
    IamAction(
        "ListOpenIDConnectProviderTags",
        "A provider's tags, by key, paged.",
        (_PROVIDER_ARN, *PAGING),
        _named,
        _NAMED,
        _list_tags,
        errors=_ERRORS,
    ),
)
