"""SAML identity providers: create, read, list, update (the metadata document), delete.

A provider is named ``arn:aws:iam::ACCOUNT:saml-provider/NAME`` and holds its IdP's SAML 2.0
metadata document (1,000 to 10,000,000 characters). The document is read as untrusted XML (no DTD,
no entities, no network, UTF-8 only) and must describe an identity provider: an
``EntityDescriptor`` (alone or in an ``EntitiesDescriptor``) with an ``IDPSSODescriptor`` holding
at least one X.509 signing certificate that parses; otherwise ``InvalidInput``, nothing stored.
Its ``validUntil`` becomes the provider's ``ValidUntil``.

The SAML providers the configuration file declares (``providers:`` of the SAML plugin's type, if
it offers the :class:`~gateway.capabilities.IamListed` capability) are listed and read beside the
database's, with the metadata document in force; they refuse every change
(``UnmodifiableEntity``), and creating one of their name is ``EntityAlreadyExists``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography import x509

from gateway.arns import saml_provider_arn
from gateway.capabilities import IamListed
from gateway.db.records import SamlProviderRecord
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
from gateway.iam.api.params import Args, Param, arn
from gateway.iam.api.tagging import TAGS_OPTIONAL
from gateway.iam.api.values import pattern, text
from gateway.xmlsafe import UnsafeXML, parse_untrusted

if TYPE_CHECKING:
    from lxml import etree

__all__ = ["ACTIONS", "SAML_PROVIDER", "TITLE", "configured_saml", "metadata_valid_until"]

#: The heading of this family in docs/iam-actions.md.
TITLE = "SAML providers"
#: CloudTrail's resource type.
SAML_PROVIDER = "AWS::IAM::SAMLProvider"
MAX_SAML_PROVIDERS = 100

_MD = "urn:oasis:names:tc:SAML:2.0:metadata"
_DS = "http://www.w3.org/2000/09/xmldsig#"
_ARN_RE = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):saml-provider/([\w._-]{1,128})\Z", re.ASCII)
_NAME = Param(
    "Name",
    pattern(re.compile(r"^[\w._-]+\Z", re.ASCII), r"[\w._-]+", 1, 128),
    "1-128 of `[\\w._-]`",
    required=True,
)
_DOCUMENT_TEXT = text(1000, 10_000_000, re.compile(r"^[\s\S]*\Z"), ".*")
# The document is large and no secret; the audit trail records the provider's name, not it.
_DOCUMENT = Param(
    "SAMLMetadataDocument", _DOCUMENT_TEXT, "the IdP's SAML metadata (XML)", required=True, audit=False
)
_PROVIDER_ARN = Param("SAMLProviderArn", arn, "the provider's ARN", required=True)


def _certificate(element: etree._Element) -> bool:
    try:
        der = base64.b64decode("".join((element.text or "").split()), validate=True)
        x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError):
        return False
    return True


def metadata_valid_until(document: str) -> datetime | None:
    """The ``validUntil`` of an IdP's metadata document, once it is found usable; ``InvalidInput``
    (never quoting the document) when it is not."""
    try:
        root = parse_untrusted(document.encode("utf-8", "surrogatepass"))
    except UnsafeXML as exc:
        raise InvalidInput(f"The SAML metadata document cannot be used: {exc}.") from None
    if root.tag == f"{{{_MD}}}EntityDescriptor":
        entities = [root]
    elif root.tag == f"{{{_MD}}}EntitiesDescriptor":
        entities = root.findall(f".//{{{_MD}}}EntityDescriptor")
    else:
        raise InvalidInput("The SAML metadata document is not an EntityDescriptor or EntitiesDescriptor.")
    idps = [e for e in entities if e.find(f"{{{_MD}}}IDPSSODescriptor") is not None]
    if len(idps) != 1:
        raise InvalidInput("The SAML metadata document must describe exactly one identity provider.")
    certificates = [
        c
        for key in idps[0].iterfind(f"{{{_MD}}}IDPSSODescriptor/{{{_MD}}}KeyDescriptor")
        if key.get("use") in (None, "signing")
        for c in key.iterfind(f".//{{{_DS}}}X509Certificate")
    ]
    if not any(_certificate(c) for c in certificates):
        raise InvalidInput("The SAML metadata document lists no signing certificate that can be read.")
    until = idps[0].get("validUntil") or root.get("validUntil")
    if until is None:
        return None
    try:
        moment = datetime.fromisoformat(until.replace("Z", "+00:00"))
        return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # 9999-12-31T23:59:59-23:59 is past the last date there is
        raise InvalidInput("The SAML metadata document's validUntil is not a date.") from None


def _name_of(ctx: ActionContext, provider_arn: str) -> str:
    match = _ARN_RE.match(provider_arn)
    if match is None:
        raise InvalidInput(f"ARN {provider_arn[:256]} is not valid.")
    if match.group(1) != ctx.account_id:
        raise NoSuchEntity(f"SAMLProvider not found for arn {provider_arn}")
    return match.group(2)


def _shown_until(document: str) -> datetime | None:
    """A configuration provider's ``ValidUntil`` (its document was checked by its plugin)."""
    try:
        return metadata_valid_until(document) if document else None
    except InvalidInput:
        return None


def configured_saml(ctx: ActionContext) -> dict[str, SamlProviderRecord]:
    """The configuration's SAML providers, by name."""
    found: dict[str, SamlProviderRecord] = {}
    prefix = saml_provider_arn(ctx.account_id, "")
    for provider in ctx.providers:
        if provider.kind == "saml" and isinstance(provider, IamListed) and provider.arn.startswith(prefix):
            document = provider.iam_view().metadata_document
            name = provider.arn.removeprefix(prefix)
            found.setdefault(
                name, SamlProviderRecord(name, provider.arn, document, _shown_until(document), CONFIG_EPOCH)
            )
    return found


async def _require(ctx: ActionContext, name: str) -> SamlProviderRecord:
    configured = configured_saml(ctx).get(name)
    return configured if configured is not None else await ctx.tx.saml_providers.require(name)


async def _named(ctx: ActionContext, args: Args) -> Resource:
    provider_arn = args.text("SAMLProviderArn")
    name = _name_of(ctx, provider_arn)
    configured = Declared("SAML provider", name) if name in configured_saml(ctx) else None
    return Resource(provider_arn, SAML_PROVIDER, declared=configured)


async def _new(ctx: ActionContext, args: Args) -> Resource:
    return Resource(saml_provider_arn(ctx.account_id, args.text("Name")), SAML_PROVIDER)


async def _all(ctx: ActionContext, args: Args) -> Resource:
    return Resource(f"arn:aws:iam::{ctx.account_id}:saml-provider/*")


async def _create(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    document = args.text("SAMLMetadataDocument")
    valid_until = metadata_valid_until(document)
    if args.text("Name") in configured_saml(ctx):
        raise EntityAlreadyExists(f"SAMLProvider {args.text('Name')} already exists.")
    if len(await ctx.tx.saml_providers.all()) >= MAX_SAML_PROVIDERS:
        raise LimitExceeded(f"Cannot exceed quota for SamlProvidersPerAccount: {MAX_SAML_PROVIDERS}")
    record = await ctx.tx.saml_providers.create(
        args.text("Name"), metadata_document=document, valid_until=valid_until, tags=args.mapping("Tags")
    )
    out: dict[str, Any] = {"SAMLProviderArn": record.arn}
    if record.tags:
        out["Tags"] = tag_list(record.tags)
    return out


async def _get(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    record = await _require(ctx, _name_of(ctx, args.text("SAMLProviderArn")))
    out: dict[str, Any] = {"SAMLMetadataDocument": record.metadata_document, "CreateDate": record.created_at}
    if record.valid_until is not None:
        out["ValidUntil"] = record.valid_until
    if record.tags:
        out["Tags"] = tag_list(record.tags)
    return out


async def _list(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    configured = configured_saml(ctx)
    stored = [r for r in await ctx.tx.saml_providers.all() if r.name not in configured]
    listed = []
    for record in [*configured.values(), *stored]:
        entry: dict[str, Any] = {"Arn": record.arn, "CreateDate": record.created_at}
        if record.valid_until is not None:
            entry["ValidUntil"] = record.valid_until
        listed.append(entry)
    return {"SAMLProviderList": listed}


async def _update(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    name = _name_of(ctx, args.text("SAMLProviderArn"))
    document = args.text("SAMLMetadataDocument")
    record = await ctx.tx.saml_providers.update(
        name, metadata_document=document, valid_until=metadata_valid_until(document)
    )
    return {"SAMLProviderArn": record.arn}


async def _delete(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    await ctx.tx.saml_providers.delete(_name_of(ctx, args.text("SAMLProviderArn")))
    return {}


_NAMED = "the provider's ARN"
_ERRORS = (InvalidInput, NoSuchEntity, ValidationError)
_CHANGE_ERRORS = (*_ERRORS, UnmodifiableEntity)

ACTIONS = (
    IamAction(
        "CreateSAMLProvider",
        "Register a SAML identity provider from its metadata document (checked: one IdP with a "
        "readable signing certificate).",
        (_DOCUMENT, _NAME, TAGS_OPTIONAL),
        _new,
        "the new provider's ARN (`saml-provider/NAME`)",
        _create,
        writes=True,
        creates=True,
        errors=(EntityAlreadyExists, InvalidInput, LimitExceeded, ValidationError),
    ),
    IamAction(
        "GetSAMLProvider",
        "A provider's metadata document, creation date, validity and tags.",
        (_PROVIDER_ARN,),
        _named,
        _NAMED,
        _get,
        errors=_ERRORS,
    ),
    IamAction(
        "ListSAMLProviders",
        "Every SAML provider (the configuration's and those registered through the API): ARN, "
        "creation date, validity.",
        (),
        _all,
        "`saml-provider/*`",
        _list,
    ),
    IamAction(
        "UpdateSAMLProvider",
        "Replace a provider's metadata document (checked as at creation).",
        (_DOCUMENT, _PROVIDER_ARN),
        _named,
        _NAMED,
        _update,
        writes=True,
        errors=_CHANGE_ERRORS,
    ),
    IamAction(
        "DeleteSAMLProvider",
        "Delete a SAML provider.",
        (_PROVIDER_ARN,),
        _named,
        _NAMED,
        _delete,
        writes=True,
        errors=_CHANGE_ERRORS,
    ),
)
