"""AWS's SAML attributes and condition keys, from a verified assertion (pure, no I/O).

Attributes under ``https://aws.amazon.com/SAML/Attributes/``: ``Role`` (``roleArn,providerArn`` in
either order, one pair per value), ``RoleSessionName`` (required), ``SessionDuration`` (900-43200),
``PrincipalTag:KEY``, ``TransitiveTagKeys`` and ``SourceIdentity``. Condition keys are AWS's
``saml:*`` keys, lower-cased, with the eduPerson/eduOrg and X.500 attributes found by OID (or by
their ``urn:mace:dir:attribute-def:`` or plain names); the multi-valued ones are always lists.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from fedgate_saml.assertion import VerifiedAssertion
from fedgate_saml.constants import NAMEID_PERSISTENT, NAMEID_TRANSIENT, NAMEID_UNSPECIFIED
from gateway.errors import InvalidIdentityToken

__all__ = ["AWS_ATTRIBUTES", "AwsClaims", "aws_claims", "condition_keys", "name_qualifier", "subject_type"]

AWS_ATTRIBUTES: Final = "https://aws.amazon.com/SAML/Attributes/"
_ROLE: Final = AWS_ATTRIBUTES + "Role"
_SESSION_NAME: Final = AWS_ATTRIBUTES + "RoleSessionName"
_DURATION: Final = AWS_ATTRIBUTES + "SessionDuration"
_TAG_PREFIX: Final = AWS_ATTRIBUTES + "PrincipalTag:"
_TRANSITIVE: Final = AWS_ATTRIBUTES + "TransitiveTagKeys"
_SOURCE_IDENTITY: Final = AWS_ATTRIBUTES + "SourceIdentity"
_ROLE_ARN: Final = re.compile(r"arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
_PROVIDER_ARN: Final = re.compile(r"arn:aws[\w-]*:iam::\d{12}:saml-provider/[\w.-]{1,128}")
_SESSION_NAME_RE: Final = re.compile(r"[\w+=,.@-]{2,64}")
_TAG_KEY: Final = re.compile(r"[\w\s.:/=+\-@]{1,128}")
_TAG_VALUE: Final = re.compile(r"[\w\s.:/=+\-@]{0,256}")
_MAX_TAGS: Final = 50
_MAX_ROLES: Final = 1000

_EDU_PERSON: Final = "urn:oid:1.3.6.1.4.1.5923.1.1.1."
_EDU_ORG: Final = "urn:oid:1.3.6.1.4.1.5923.1.2.1."
# condition key -> (attribute names, in order of preference; multi-valued?)
_MAPPED: Final[Mapping[str, tuple[tuple[str, ...], bool]]] = {
    "edupersonaffiliation": ((_EDU_PERSON + "1", "eduPersonAffiliation"), True),
    "edupersonnickname": ((_EDU_PERSON + "2", "eduPersonNickname"), True),
    "edupersonorgdn": ((_EDU_PERSON + "3", "eduPersonOrgDN"), False),
    "edupersonorgunitdn": ((_EDU_PERSON + "4", "eduPersonOrgUnitDN"), True),
    "edupersonprimaryaffiliation": ((_EDU_PERSON + "5", "eduPersonPrimaryAffiliation"), False),
    "edupersonprincipalname": ((_EDU_PERSON + "6", "eduPersonPrincipalName"), False),
    "edupersonentitlement": ((_EDU_PERSON + "7", "eduPersonEntitlement"), True),
    "edupersonprimaryorgunitdn": ((_EDU_PERSON + "8", "eduPersonPrimaryOrgUnitDN"), False),
    "edupersonscopedaffiliation": ((_EDU_PERSON + "9", "eduPersonScopedAffiliation"), True),
    "edupersontargetedid": ((_EDU_PERSON + "10", "eduPersonTargetedID"), True),
    "edupersonassurance": ((_EDU_PERSON + "11", "eduPersonAssurance"), True),
    "eduorghomepageuri": ((_EDU_ORG + "2", "eduOrgHomePageURI"), True),
    "eduorgidentityauthnpolicyuri": ((_EDU_ORG + "3", "eduOrgIdentityAuthNPolicyURI"), True),
    "eduorglegalname": ((_EDU_ORG + "4", "eduOrgLegalName"), True),
    "eduorgsuperioruri": ((_EDU_ORG + "5", "eduOrgSuperiorURI"), True),
    "eduorgwhitepagesuri": ((_EDU_ORG + "6", "eduOrgWhitePagesURI"), True),
    "cn": (("urn:oid:2.5.4.3", "cn"), False),
    "commonname": (("urn:oid:2.5.4.3", "commonName", "cn"), False),
    "givenname": (("urn:oid:2.5.4.42", "givenName"), False),
    "sn": (("urn:oid:2.5.4.4", "sn", "surname"), False),
    "surname": (("urn:oid:2.5.4.4", "surname", "sn"), False),
    "name": (("urn:oid:2.5.4.41", "name"), False),
    "x500uniqueidentifier": (("urn:oid:2.5.4.45", "x500UniqueIdentifier"), False),
    "mail": (("urn:oid:0.9.2342.19200300.100.1.3", "mail"), False),
    "uid": (("urn:oid:0.9.2342.19200300.100.1.1", "uid"), False),
    "organizationstatus": (("urn:oid:0.9.2342.19200300.100.1.45", "organizationStatus"), False),
    "displayname": (("urn:oid:2.16.840.1.113730.3.1.241", "displayName"), False),
    "primarygroupsid": (("http://schemas.microsoft.com/ws/2008/06/identity/claims/primarygroupsid",), False),
}
_SHORT_FORMATS: Final = {
    NAMEID_PERSISTENT: "persistent",
    NAMEID_TRANSIENT: "transient",
}


@dataclass(frozen=True, slots=True)
class AwsClaims:
    """The AWS-specific attributes of an assertion, validated."""

    roles: tuple[tuple[str, str], ...]
    session_name: str
    max_session_duration: int | None
    session_tags: dict[str, str]
    transitive_tag_keys: tuple[str, ...]
    source_identity: str | None


def _single(attributes: Mapping[str, list[str]], name: str, label: str) -> str | None:
    values = attributes.get(name)
    if not values:
        return None
    if len(values) != 1:
        raise InvalidIdentityToken(f"SAML attribute {label} must have exactly one value")
    return values[0]


def _roles(values: list[str]) -> tuple[tuple[str, str], ...]:
    if len(values) > _MAX_ROLES:
        raise InvalidIdentityToken("SAML Role attribute has too many values")
    pairs: list[tuple[str, str]] = []
    for value in values:
        parts = [p.strip() for p in value.split(",")]
        if len(parts) != 2:
            raise InvalidIdentityToken("SAML Role attribute values must be 'role ARN,provider ARN'")
        first, second = parts
        if _ROLE_ARN.fullmatch(first) and _PROVIDER_ARN.fullmatch(second):
            pair = (first, second)
        elif _PROVIDER_ARN.fullmatch(first) and _ROLE_ARN.fullmatch(second):
            pair = (second, first)
        else:
            raise InvalidIdentityToken("SAML Role attribute value is not a role ARN and a saml-provider ARN")
        if pair not in pairs:
            pairs.append(pair)
    return tuple(pairs)


def aws_claims(attributes: Mapping[str, list[str]]) -> AwsClaims:
    """Validate and extract the ``https://aws.amazon.com/SAML/Attributes/`` attributes."""
    role_values = attributes.get(_ROLE) or []
    if not role_values:
        raise InvalidIdentityToken(f"SAML assertion has no {_ROLE} attribute")
    session_name = _single(attributes, _SESSION_NAME, "RoleSessionName")
    if session_name is None:
        raise InvalidIdentityToken("RoleSessionName is required in the SAML assertion")
    if not _SESSION_NAME_RE.fullmatch(session_name):
        raise InvalidIdentityToken(
            "SAML RoleSessionName must be 2-64 characters of letters, digits and +=,.@_-"
        )
    duration_text = _single(attributes, _DURATION, "SessionDuration")
    duration = None
    if duration_text is not None:
        if not duration_text.isdigit() or not 900 <= int(duration_text) <= 43200:
            raise InvalidIdentityToken("SAML SessionDuration must be a number of seconds from 900 to 43200")
        duration = int(duration_text)
    source = _single(attributes, _SOURCE_IDENTITY, "SourceIdentity")
    if source is not None and (not _SESSION_NAME_RE.fullmatch(source) or source.lower().startswith("aws:")):
        raise InvalidIdentityToken(
            "SAML SourceIdentity must be 2-64 characters of letters, digits and +=,.@_-"
        )
    tags, transitive = _tags(attributes)
    return AwsClaims(_roles(role_values), session_name, duration, tags, transitive, source)


def _tags(attributes: Mapping[str, list[str]]) -> tuple[dict[str, str], tuple[str, ...]]:
    tags: dict[str, str] = {}
    for name, values in attributes.items():
        if not name.startswith(_TAG_PREFIX):
            continue
        key = name[len(_TAG_PREFIX) :]
        if not _TAG_KEY.fullmatch(key) or key.lower().startswith("aws:"):
            raise InvalidIdentityToken("SAML PrincipalTag key is not a valid tag key")
        if len(values) != 1 or not _TAG_VALUE.fullmatch(values[0]):
            raise InvalidIdentityToken(f"SAML PrincipalTag:{key} must have one valid tag value")
        if any(k.lower() == key.lower() for k in tags):
            raise InvalidIdentityToken("SAML PrincipalTag keys must be unique (case-insensitively)")
        tags[key] = values[0]
    if len(tags) > _MAX_TAGS:
        raise InvalidIdentityToken(f"SAML assertion carries more than {_MAX_TAGS} session tags")
    transitive: list[str] = []
    known = {k.lower(): k for k in tags}
    for key in attributes.get(_TRANSITIVE) or []:
        if key.lower() not in known:
            raise InvalidIdentityToken(
                "SAML TransitiveTagKeys names a tag that is not among the PrincipalTags"
            )
        if known[key.lower()] not in transitive:
            transitive.append(known[key.lower()])
    return tags, tuple(transitive)


def name_qualifier(issuer: str, account_id: str, provider_name: str) -> str:
    """AWS's NameQualifier: ``base64(sha1(issuer + account_id + "/" + provider_name))``."""
    digest = hashlib.sha1(f"{issuer}{account_id}/{provider_name}".encode(), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def subject_type(name_id_format: str | None) -> str:
    """``persistent``, ``transient`` or the full NameID format URI (``unspecified`` when absent)."""
    if name_id_format is None:
        return NAMEID_UNSPECIFIED
    return _SHORT_FORMATS.get(name_id_format, name_id_format)


def _lookup(attributes: Mapping[str, list[str]], names: tuple[str, ...]) -> list[str] | None:
    for candidate in names:
        for name in (candidate, f"urn:mace:dir:attribute-def:{candidate}"):
            values = attributes.get(name)
            if values:
                return values
    return None


def condition_keys(
    verified: VerifiedAssertion, *, account_id: str, provider_name: str, qualifier: str
) -> dict[str, str | list[str]]:
    """AWS's ``saml:*`` trust-policy condition keys (lower-cased) for ``verified``."""
    keys: dict[str, str | list[str]] = {
        "saml:aud": verified.recipient,
        "saml:iss": verified.issuer,
        "saml:sub": verified.name_id,
        "saml:sub_type": subject_type(verified.name_id_format),
        "saml:namequalifier": qualifier,
        "saml:doc": f"{account_id}/{provider_name}",
    }
    for key, (names, multi) in _MAPPED.items():
        values = _lookup(verified.attributes, names)
        if values is None:
            continue
        keys[f"saml:{key}"] = list(values) if multi or len(values) > 1 else values[0]
    return keys
