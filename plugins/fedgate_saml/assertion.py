"""From a SAML Response to the one verified assertion in it, with every protocol check (pure, no I/O).

Order: structure (exactly one assertion, none encrypted, a signature somewhere) -> signature, which
yields the signed element re-parsed from the bytes it covers -> checks on that element only (issuer,
subject confirmation, recipient, audience, times). The unsigned outer Response of an assertion-signed
message is read for ``Status``, ``Destination`` and ``InResponseTo`` only, where a forgery can only
make a check fail, never pass.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from fedgate_saml.constants import BEARER, DS, SAML, SAMLP, STATUS_SUCCESS
from fedgate_saml.xmlsig import TrustedCert, parse_xml, verify_enveloped
from gateway.errors import ExpiredToken, IDPRejectedClaim, InvalidIdentityToken

__all__ = ["VerifiedAssertion", "check_response", "parse_instant"]

_INSTANT: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)?")
_MAX_ID: Final = 256


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    """What a verified assertion says; every field comes from the signed bytes."""

    assertion_id: str
    issuer: str
    name_id: str
    name_id_format: str | None
    name_qualifier: str | None
    recipient: str
    audience: str
    issued_at: float
    expires_at: float
    session_not_on_or_after: float | None
    authn_context_classes: tuple[str, ...]
    attributes: dict[str, list[str]]
    in_response_to: str | None = None
    session_index: str | None = None


def parse_instant(value: str | None, what: str) -> float:
    """An ``xs:dateTime`` (UTC if no zone) as epoch seconds; :class:`InvalidIdentityToken` if malformed."""
    if value is None or not _INSTANT.fullmatch(value):
        raise InvalidIdentityToken(f"SAML {what} is not a valid dateTime")
    text = value.replace("Z", "+00:00")
    if "." in text:  # Python takes at most 6 fractional digits
        head, _, rest = text.partition(".")
        digits = re.match(r"\d+", rest)
        assert digits is not None
        text = f"{head}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end() :]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:  # matched the shape, but month 13 or the like
        raise InvalidIdentityToken(f"SAML {what} is not a valid dateTime") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _text(element: etree._Element, what: str) -> str:
    # Verified elements come from comment-free canonical XML; a child element still means a forgery or
    # a structure we do not understand, never something to read part of.
    if len(element):
        raise InvalidIdentityToken(f"SAML {what} must be plain text")
    return (element.text or "").strip()


def _one(parent: etree._Element, tag: str, what: str) -> etree._Element:
    found = parent.findall(tag)
    if len(found) != 1:
        raise InvalidIdentityToken(f"SAML assertion must contain exactly one {what}")
    return found[0]


def check_response(
    document: bytes,
    *,
    entity_id: str,
    certs: Sequence[TrustedCert],
    audiences: Collection[str],
    recipients: Collection[str],
    allow_sha1: bool,
    require_signed_assertion: bool,
    allow_in_response_to: bool,
    check_validity: bool,
    now: float,
    leeway: float,
    max_age: float,
) -> VerifiedAssertion:
    """Verify a SAML Response and return its one assertion.

    Raises :class:`InvalidIdentityToken` for anything forged, malformed or not meant for us,
    :class:`ExpiredToken` past ``NotOnOrAfter`` or more than ``max_age`` seconds after the
    assertion's ``IssueInstant`` (each plus ``leeway``), and :class:`IDPRejectedClaim` when the IdP
    reports a failed authentication.
    """
    root = parse_xml(document)
    if root.tag != f"{{{SAMLP}}}Response" or root.get("Version") != "2.0":
        raise InvalidIdentityToken("SAML token is not a SAML 2.0 samlp:Response")
    if next(root.iter(f"{{{SAML}}}EncryptedAssertion"), None) is not None:
        raise InvalidIdentityToken(
            "SAML response carries an EncryptedAssertion; fedgate does not decrypt, configure the IdP "
            "to sign the assertion without encrypting it"
        )
    # Counted over the whole document: wrapping attacks hide a second assertion in Extensions,
    # Object or Advice, and nothing legitimate needs two.
    assertions = list(root.iter(f"{{{SAML}}}Assertion"))
    if len(assertions) != 1:
        raise InvalidIdentityToken("SAML response must contain exactly one assertion")
    assertion = assertions[0]
    if assertion.getparent() is not root:
        raise InvalidIdentityToken("SAML assertion must be a direct child of the Response")
    response_signed = root.find(f"{{{DS}}}Signature") is not None
    assertion_signed = assertion.find(f"{{{DS}}}Signature") is not None
    if not response_signed and not assertion_signed:
        raise InvalidIdentityToken("SAML response is not signed (neither the Response nor the Assertion)")
    if require_signed_assertion and not assertion_signed:
        raise InvalidIdentityToken("SAML assertion is not signed, and this provider requires it")
    when = datetime.fromtimestamp(now, UTC)

    def verify(element: etree._Element) -> etree._Element:
        return verify_enveloped(
            element, certs, allow_sha1=allow_sha1, now=when, check_validity=check_validity
        )

    if response_signed:
        response = verify(root)
        inner = response.findall(f"{{{SAML}}}Assertion")
        if len(inner) != 1:
            raise InvalidIdentityToken("signed SAML response must contain exactly one assertion")
        signed = verify(inner[0]) if require_signed_assertion else inner[0]
    else:
        response = root
        signed = verify(assertion)
    _check_envelope(response, entity_id, recipients, allow_in_response_to)
    verified = _read_assertion(
        signed,
        entity_id=entity_id,
        audiences=audiences,
        recipients=recipients,
        allow_in_response_to=allow_in_response_to,
        now=now,
        leeway=leeway,
        max_age=max_age,
    )
    # The signed SubjectConfirmationData is what callers read; an unsigned envelope that names
    # another request (or one the assertion does not name) is a forgery or a confused IdP.
    envelope_irt = response.get("InResponseTo")
    if envelope_irt is not None and envelope_irt != verified.in_response_to:
        raise InvalidIdentityToken("SAML Response and assertion answer different requests (InResponseTo)")
    return verified


def _check_envelope(
    response: etree._Element, entity_id: str, recipients: Collection[str], allow_in_response_to: bool
) -> None:
    code = response.find(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusCode")
    value = code.get("Value") if code is not None else None
    if value != STATUS_SUCCESS:
        short = (value or "missing").rsplit(":", 1)[-1]
        short = short if re.fullmatch(r"[A-Za-z]{1,64}", short) else "unknown"
        raise IDPRejectedClaim(f"the identity provider reports that authentication failed (status {short})")
    destination = response.get("Destination")
    if destination is not None and destination not in recipients:
        raise InvalidIdentityToken("SAML response Destination is not an ACS URL this provider accepts")
    if response.get("InResponseTo") is not None and not allow_in_response_to:
        raise InvalidIdentityToken(
            "SAML response answers an AuthnRequest (InResponseTo); this provider accepts "
            "IdP-initiated responses only"
        )
    issuer = response.find(f"{{{SAML}}}Issuer")
    if issuer is not None and _text(issuer, "Issuer") != entity_id:
        raise InvalidIdentityToken("SAML response Issuer is not this provider's IdP")


def _read_assertion(
    assertion: etree._Element,
    *,
    entity_id: str,
    audiences: Collection[str],
    recipients: Collection[str],
    allow_in_response_to: bool,
    now: float,
    leeway: float,
    max_age: float,
) -> VerifiedAssertion:
    assertion_id = assertion.get("ID") or ""
    if assertion.get("Version") != "2.0" or not 0 < len(assertion_id) <= _MAX_ID:
        raise InvalidIdentityToken("SAML assertion must be version 2.0 with an ID")
    issued_at = parse_instant(assertion.get("IssueInstant"), "assertion IssueInstant")
    if issued_at > now + leeway:
        raise InvalidIdentityToken("SAML assertion was issued in the future (IssueInstant)")
    if _text(_one(assertion, f"{{{SAML}}}Issuer", "Issuer"), "Issuer") != entity_id:
        raise InvalidIdentityToken("SAML assertion Issuer is not this provider's IdP")

    subject = _one(assertion, f"{{{SAML}}}Subject", "Subject")
    if subject.find(f"{{{SAML}}}EncryptedID") is not None:
        raise InvalidIdentityToken("SAML assertion has an encrypted NameID, which fedgate does not decrypt")
    name_id_element = _one(subject, f"{{{SAML}}}NameID", "NameID")
    name_id = _text(name_id_element, "NameID")
    if not name_id:
        raise InvalidIdentityToken("SAML NameID is empty")

    confirmation = _one(subject, f"{{{SAML}}}SubjectConfirmation", "SubjectConfirmation")
    if confirmation.get("Method") != BEARER:
        raise InvalidIdentityToken("SAML SubjectConfirmation must use the bearer method")
    data = _one(confirmation, f"{{{SAML}}}SubjectConfirmationData", "SubjectConfirmationData")
    recipient = data.get("Recipient")
    if recipient is None or recipient not in recipients:
        raise InvalidIdentityToken("SAML Recipient is not an ACS URL this provider accepts")
    in_response_to = data.get("InResponseTo")
    if in_response_to is not None and not 0 < len(in_response_to) <= _MAX_ID:
        raise InvalidIdentityToken("SAML InResponseTo is empty or too long")
    if in_response_to is not None and not allow_in_response_to:
        raise InvalidIdentityToken(
            "SAML assertion answers an AuthnRequest (InResponseTo); this provider accepts "
            "IdP-initiated responses only"
        )
    deadlines = [parse_instant(data.get("NotOnOrAfter"), "SubjectConfirmationData NotOnOrAfter")]
    starts = []
    if data.get("NotBefore") is not None:
        starts.append(parse_instant(data.get("NotBefore"), "SubjectConfirmationData NotBefore"))

    conditions = _one(assertion, f"{{{SAML}}}Conditions", "Conditions")
    if conditions.get("NotOnOrAfter") is not None:
        deadlines.append(parse_instant(conditions.get("NotOnOrAfter"), "Conditions NotOnOrAfter"))
    if conditions.get("NotBefore") is not None:
        starts.append(parse_instant(conditions.get("NotBefore"), "Conditions NotBefore"))
    audience = _match_audiences(conditions, audiences)
    expires_at = min(deadlines)
    if now >= expires_at + leeway:
        raise ExpiredToken("SAML assertion has expired (NotOnOrAfter)")
    # A response is meant to be posted as soon as it is issued, whatever NotOnOrAfter allows.
    if now > issued_at + max_age + leeway:
        raise ExpiredToken(f"SAML assertion was issued more than {max_age:g} seconds ago (IssueInstant)")
    if any(start > now + leeway for start in starts):
        raise InvalidIdentityToken("SAML assertion is not valid yet (NotBefore)")

    session_ends: list[float] = []
    classes: list[str] = []
    session_index: str | None = None
    for statement in assertion.iterfind(f"{{{SAML}}}AuthnStatement"):
        index = statement.get("SessionIndex")
        if session_index is None and index and len(index) <= _MAX_ID:
            session_index = index
        if statement.get("SessionNotOnOrAfter") is not None:
            session_ends.append(parse_instant(statement.get("SessionNotOnOrAfter"), "SessionNotOnOrAfter"))
        for ref in statement.iterfind(f"{{{SAML}}}AuthnContext/{{{SAML}}}AuthnContextClassRef"):
            classes.append(_text(ref, "AuthnContextClassRef"))

    return VerifiedAssertion(
        assertion_id=assertion_id,
        issuer=entity_id,
        name_id=name_id,
        name_id_format=name_id_element.get("Format"),
        name_qualifier=name_id_element.get("NameQualifier"),
        recipient=recipient,
        audience=audience,
        issued_at=issued_at,
        expires_at=expires_at,
        session_not_on_or_after=min(session_ends) if session_ends else None,
        authn_context_classes=tuple(classes),
        attributes=_attributes(assertion),
        in_response_to=in_response_to,
        session_index=session_index,
    )


def _match_audiences(conditions: etree._Element, audiences: Collection[str]) -> str:
    restrictions = conditions.findall(f"{{{SAML}}}AudienceRestriction")
    if not restrictions:
        raise InvalidIdentityToken("SAML assertion has no AudienceRestriction")
    matched: str | None = None
    # Every restriction must be satisfied (SAML core 2.5.1.4).
    for restriction in restrictions:
        named = [_text(a, "Audience") for a in restriction.iterfind(f"{{{SAML}}}Audience")]
        accepted = [a for a in named if a in audiences]
        if not accepted:
            raise InvalidIdentityToken("SAML assertion Audience is not one this provider accepts")
        matched = matched or accepted[0]
    assert matched is not None
    return matched


def _attributes(assertion: etree._Element) -> dict[str, list[str]]:
    attributes: dict[str, list[str]] = {}
    for attribute in assertion.iterfind(f"{{{SAML}}}AttributeStatement/{{{SAML}}}Attribute"):
        name = attribute.get("Name")
        if not name:
            continue
        values = attributes.setdefault(name, [])
        for value in attribute.iterfind(f"{{{SAML}}}AttributeValue"):
            if len(value):
                continue  # structured values (a NameID, XML) are not claims we map
            values.append((value.text or "").strip())
    if (
        next(assertion.iterfind(f"{{{SAML}}}AttributeStatement/{{{SAML}}}EncryptedAttribute"), None)
        is not None
    ):
        raise InvalidIdentityToken("SAML assertion has encrypted attributes, which fedgate does not decrypt")
    return attributes
