"""Messages an IdP sends to fedgate's single-logout endpoint (HTTP-Redirect binding), distrusted until proven.

The query is size-limited and split by hand (a repeated parameter is refused, so the signed octets
and the values read are the same); :meth:`RedirectMessage.verify` checks the signature over the exact
octets received with the IdP's metadata certificates only; :meth:`RedirectMessage.inflate` inflates
the DEFLATE stream with a cap and parses it with the plugin's hardened parser; :func:`read_logout`
reads a LogoutRequest or LogoutResponse. Every refusal is an ``InvalidIdentityToken`` whose message
says why, fit to show the user.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import unquote_plus

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from fedgate_saml.constants import SAML, SAMLP
from fedgate_saml.xmlsig import TrustedCert, parse_xml
from gateway.errors import InvalidIdentityToken, ServiceError

__all__ = [
    "CLOCK_SKEW",
    "MAX_AGE",
    "LogoutMessage",
    "RedirectMessage",
    "parse_redirect",
    "read_logout",
    "refuse",
]

#: How old a logout message may be (its IssueInstant), and how far in the future, in seconds.
MAX_AGE: Final = 600
CLOCK_SKEW: Final = 180
_MAX_QUERY: Final = 16_384
_MAX_XML: Final = 65_536
_MAX_ID: Final = 256
_MAX_RELAY_STATE: Final = 80
_PARAMETERS: Final = frozenset({"SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature"})
_ALGORITHMS: Final[dict[str, tuple[str, type[hashes.HashAlgorithm]]]] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": ("rsa", hashes.SHA256),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": ("rsa", hashes.SHA384),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": ("rsa", hashes.SHA512),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": ("ec", hashes.SHA256),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": ("ec", hashes.SHA384),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": ("ec", hashes.SHA512),
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": ("rsa", hashes.SHA1),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1": ("ec", hashes.SHA1),
}


def refuse(message: str) -> InvalidIdentityToken:
    """The error for a refused single-logout message (``message`` says why, for the user)."""
    return InvalidIdentityToken(f"The single-logout message was refused: {message}.")


@dataclass(frozen=True, slots=True)
class RedirectMessage:
    """A SAML message received with the HTTP-Redirect binding, not yet verified."""

    parameter: str
    """``SAMLRequest`` or ``SAMLResponse``."""
    encoded: str
    relay_state: str
    sig_alg: str | None
    signature: bytes | None
    signed_octets: bytes
    """``SAMLRequest=...&RelayState=...&SigAlg=...`` exactly as received: what the signature covers."""

    def verify(
        self, certs: Sequence[TrustedCert], *, allow_sha1: bool, now: datetime, check_validity: bool
    ) -> None:
        """Check the signature with one of ``certs`` (the IdP's metadata); raise :func:`refuse`'s error."""
        if self.signature is None or self.sig_alg is None:
            raise refuse("it is not signed")
        algorithm = _ALGORITHMS.get(self.sig_alg)
        if algorithm is None:
            raise refuse("its signature algorithm is not allowed")
        kind, digest_type = algorithm
        if digest_type is hashes.SHA1 and not allow_sha1:
            raise refuse("it is signed with SHA-1, which this provider does not allow")
        for trusted in certs:
            if check_validity and not trusted.valid_at(now):
                continue
            if _verifies(trusted, kind, digest_type(), self.signature, self.signed_octets):
                return
        raise refuse("its signature does not verify with the identity provider's certificates")

    def inflate(self) -> etree._Element:
        """The message's XML, inflated with a size cap and parsed without DTDs or entities."""
        try:
            deflated = base64.b64decode(self.encoded, validate=True)
            inflater = zlib.decompressobj(wbits=-15)
            xml = inflater.decompress(deflated, _MAX_XML)
        except (binascii.Error, zlib.error, ValueError):
            raise refuse("it is not DEFLATE-encoded XML") from None
        if inflater.unconsumed_tail or not inflater.eof:
            raise refuse("it is too large or truncated")
        try:
            return parse_xml(xml)
        except ServiceError as exc:
            raise refuse(exc.message.removeprefix("SAML response ")) from None


def _verifies(
    trusted: TrustedCert, kind: str, digest_type: hashes.HashAlgorithm, signature: bytes, data: bytes
) -> bool:
    key = trusted.cert.public_key()
    try:
        if kind == "rsa" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), digest_type)
            return True
        if kind == "ec" and isinstance(key, ec.EllipticCurvePublicKey):
            # XML DSig carries ECDSA signatures as r || s, each the curve's size.
            size = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                return False
            r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest_type))
            return True
    except InvalidSignature:
        return False
    return False


def parse_redirect(raw_query: str) -> RedirectMessage:
    """Split an HTTP-Redirect query (as received, still URL-encoded); raise :func:`refuse`'s error."""
    if len(raw_query) > _MAX_QUERY:
        raise refuse("it is too large")
    raw: dict[str, str] = {}
    for part in raw_query.split("&") if raw_query else []:
        name, _, value = part.partition("=")
        if name in _PARAMETERS:
            if name in raw:  # the signature would cover one value and the reader see another
                raise refuse(f"{name} is repeated")
            raw[name] = value
    if ("SAMLRequest" in raw) == ("SAMLResponse" in raw):
        raise refuse("it carries neither or both of SAMLRequest and SAMLResponse")
    parameter = "SAMLRequest" if "SAMLRequest" in raw else "SAMLResponse"
    signed = "&".join(f"{n}={raw[n]}" for n in (parameter, "RelayState", "SigAlg") if n in raw)
    signature: bytes | None = None
    if "Signature" in raw:
        try:
            signature = base64.b64decode(unquote_plus(raw["Signature"]), validate=True)
        except (binascii.Error, ValueError):
            raise refuse("its signature is not base64") from None
    relay_state = unquote_plus(raw.get("RelayState", ""))
    if len(relay_state) > _MAX_RELAY_STATE:
        raise refuse("its RelayState is too long")
    return RedirectMessage(
        parameter=parameter,
        encoded=unquote_plus(raw[parameter]),
        relay_state=relay_state,
        sig_alg=unquote_plus(raw["SigAlg"]) if "SigAlg" in raw else None,
        signature=signature,
        signed_octets=signed.encode("utf-8"),
    )


@dataclass(frozen=True, slots=True)
class LogoutMessage:
    """What fedgate reads from a LogoutRequest or LogoutResponse."""

    id: str
    issuer: str
    destination: str | None
    issued: float
    in_response_to: str | None = None
    status: str | None = None
    name_id: str | None = None
    session_indexes: tuple[str, ...] = ()
    not_on_or_after: float | None = None


def _instant(value: str | None, what: str) -> float:
    try:
        parsed = datetime.fromisoformat(value or "")
    except ValueError:
        raise refuse(f"its {what} is not a time") from None
    if parsed.tzinfo is None:
        raise refuse(f"its {what} has no time zone")
    return parsed.timestamp()


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def read_logout(root: etree._Element, parameter: str) -> LogoutMessage:
    """Read a ``LogoutRequest`` (``parameter`` ``SAMLRequest``) or ``LogoutResponse``."""
    expected = "LogoutRequest" if parameter == "SAMLRequest" else "LogoutResponse"
    if root.tag != f"{{{SAMLP}}}{expected}" or root.get("Version") != "2.0":
        raise refuse(f"it is not a SAML 2.0 {expected}")
    message_id = root.get("ID", "")
    issuers = root.findall(f"{{{SAML}}}Issuer")
    if not message_id or len(message_id) > _MAX_ID or len(issuers) != 1:
        raise refuse("it lacks an ID or a single Issuer")
    common = {
        "id": message_id,
        "issuer": _text(issuers[0]),
        "destination": root.get("Destination"),
        "issued": _instant(root.get("IssueInstant"), "IssueInstant"),
    }
    if expected == "LogoutResponse":
        codes = root.findall(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusCode")
        if len(codes) != 1:
            raise refuse("it has no single status")
        return LogoutMessage(
            **common,  # type: ignore[arg-type]
            in_response_to=root.get("InResponseTo"),
            status=codes[0].get("Value", ""),
        )
    names = root.findall(f"{{{SAML}}}NameID")
    if len(names) != 1 or not _text(names[0]):
        raise refuse("it names no single subject (an encrypted NameID is not supported)")
    after = root.get("NotOnOrAfter")
    return LogoutMessage(
        **common,  # type: ignore[arg-type]
        name_id=_text(names[0]),
        session_indexes=tuple(_text(s) for s in root.findall(f"{{{SAMLP}}}SessionIndex") if _text(s)),
        not_on_or_after=_instant(after, "NotOnOrAfter") if after is not None else None,
    )
