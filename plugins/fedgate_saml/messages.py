"""What fedgate sends as a SAML service provider: AuthnRequests, logout messages, SP metadata (pure).

Used by :class:`fedgate_saml.service_provider.ServiceProvider`, the SP capability the browser
sign-in pages call; nothing outside the SAML plugin builds SAML messages.

Documents are built with lxml (every value escaped by the serializer, nothing formatted into XML
text). AuthnRequests and single-logout messages travel with the HTTP-Redirect binding (SAML bindings
3.4.4): raw DEFLATE, base64, URL-encoded; the signature is RSA-SHA256 over the exact octets
``SAMLRequest=...&RelayState=...&SigAlg=...`` (or ``SAMLResponse=...``) as they appear in the query.
"""

from __future__ import annotations

import base64
import secrets
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, final
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from fedgate_saml.constants import (
    BINDING_POST,
    BINDING_REDIRECT,
    DS,
    MD,
    NAMEID_FORMATS,
    RSA_SHA256,
    SAML,
    SAMLP,
)

__all__ = [
    "SPKeys",
    "authn_request",
    "logout_request",
    "logout_response",
    "new_request_id",
    "redirect_query",
    "sp_metadata",
]

_MIN_RSA_BITS: Final = 2048


@final
@dataclass(frozen=True, slots=True)
class SPKeys:
    """The SP's signing key and its certificate."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @classmethod
    def from_pem(cls, key_pem: str, cert_pem: str) -> SPKeys:
        """Load a PEM key and certificate; ``ValueError`` (naming no secret) if unusable or unmatched."""
        try:
            key = serialization.load_pem_private_key(key_pem.encode(), password=None)
            cert = x509.load_pem_x509_certificate(cert_pem.encode())
        except (ValueError, TypeError):
            raise ValueError("not a PEM private key and certificate (the key must be unencrypted)") from None
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < _MIN_RSA_BITS:
            raise ValueError("the signing key must be RSA of at least 2048 bits")
        if cert.public_key() != key.public_key():
            raise ValueError("the certificate does not belong to the signing key")
        return cls(key, cert)

    @property
    def cert_b64(self) -> str:
        """The certificate's DER in base64, as metadata carries it."""
        return base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


def new_request_id() -> str:
    """A fresh AuthnRequest ID: 160 random bits, starting with ``_`` (IDs are xs:ID, NCNames)."""
    return "_" + secrets.token_hex(20)


def _instant(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def authn_request(*, request_id: str, now: float, destination: str, acs_url: str, sp_entity_id: str) -> bytes:
    """A ``samlp:AuthnRequest`` asking for a response POSTed to ``acs_url``."""
    root = etree.Element(
        f"{{{SAMLP}}}AuthnRequest",
        nsmap={"samlp": SAMLP, "saml": SAML},
        ID=request_id,
        Version="2.0",
        IssueInstant=_instant(now),
        Destination=destination,
        AssertionConsumerServiceURL=acs_url,
        ProtocolBinding=BINDING_POST,
    )
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = sp_entity_id
    etree.SubElement(root, f"{{{SAMLP}}}NameIDPolicy", AllowCreate="true")
    result: bytes = etree.tostring(root)
    return result


def logout_request(
    *,
    request_id: str,
    now: float,
    destination: str,
    sp_entity_id: str,
    name_id: str,
    name_id_format: str = "",
    name_qualifier: str = "",
    session_index: str = "",
) -> bytes:
    """A ``samlp:LogoutRequest`` for the principal ``name_id`` (as the IdP named it) and its session."""
    root = etree.Element(
        f"{{{SAMLP}}}LogoutRequest",
        nsmap={"samlp": SAMLP, "saml": SAML},
        ID=request_id,
        Version="2.0",
        IssueInstant=_instant(now),
        Destination=destination,
    )
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = sp_entity_id
    name = etree.SubElement(root, f"{{{SAML}}}NameID")
    name.text = name_id
    if name_id_format:
        name.set("Format", name_id_format)
    if name_qualifier:
        name.set("NameQualifier", name_qualifier)
    if session_index:
        etree.SubElement(root, f"{{{SAMLP}}}SessionIndex").text = session_index
    result: bytes = etree.tostring(root)
    return result


def logout_response(
    *, response_id: str, now: float, destination: str, issuer: str, in_response_to: str, status: str
) -> bytes:
    """A ``samlp:LogoutResponse`` answering the LogoutRequest ``in_response_to`` with ``status``."""
    root = etree.Element(
        f"{{{SAMLP}}}LogoutResponse",
        nsmap={"samlp": SAMLP, "saml": SAML},
        ID=response_id,
        Version="2.0",
        IssueInstant=_instant(now),
        Destination=destination,
        InResponseTo=in_response_to,
    )
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = issuer
    element = etree.SubElement(root, f"{{{SAMLP}}}Status")
    etree.SubElement(element, f"{{{SAMLP}}}StatusCode", Value=status)
    result: bytes = etree.tostring(root)
    return result


def redirect_query(
    request_xml: bytes, relay_state: str, keys: SPKeys | None, *, parameter: str = "SAMLRequest"
) -> str:
    """The HTTP-Redirect query string for ``request_xml``, signed with ``keys`` unless ``None``.

    ``parameter`` is ``SAMLRequest`` or ``SAMLResponse``.
    """
    compressor = zlib.compressobj(wbits=-15)  # raw DEFLATE, no zlib header (bindings 3.4.4.1)
    deflated = compressor.compress(request_xml) + compressor.flush()
    parts = [f"{parameter}={quote(base64.b64encode(deflated).decode('ascii'), safe='')}"]
    if relay_state:
        parts.append(f"RelayState={quote(relay_state, safe='')}")
    if keys is None:
        return "&".join(parts)
    parts.append(f"SigAlg={quote(RSA_SHA256, safe='')}")
    signed = "&".join(parts)
    signature = keys.key.sign(signed.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signed}&Signature={quote(base64.b64encode(signature).decode('ascii'), safe='')}"


def sp_metadata(
    *,
    entity_id: str,
    acs_url: str,
    keys: SPKeys,
    authn_requests_signed: bool,
    want_assertions_signed: bool,
    slo_url: str | None = None,
) -> bytes:
    """The SP's ``md:EntityDescriptor``: ACS (HTTP-POST), single logout (HTTP-Redirect, when
    ``slo_url`` is given), NameID formats and signing certificate."""
    root = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap={"md": MD, "ds": DS}, entityID=entity_id)
    sp = etree.SubElement(
        root,
        f"{{{MD}}}SPSSODescriptor",
        protocolSupportEnumeration=SAMLP,
        AuthnRequestsSigned="true" if authn_requests_signed else "false",
        WantAssertionsSigned="true" if want_assertions_signed else "false",
    )
    descriptor = etree.SubElement(sp, f"{{{MD}}}KeyDescriptor", use="signing")
    data = etree.SubElement(etree.SubElement(descriptor, f"{{{DS}}}KeyInfo"), f"{{{DS}}}X509Data")
    etree.SubElement(data, f"{{{DS}}}X509Certificate").text = keys.cert_b64
    if slo_url is not None:  # schema order: SingleLogoutService before NameIDFormat
        etree.SubElement(sp, f"{{{MD}}}SingleLogoutService", Binding=BINDING_REDIRECT, Location=slo_url)
    for name_format in NAMEID_FORMATS:
        etree.SubElement(sp, f"{{{MD}}}NameIDFormat").text = name_format
    etree.SubElement(
        sp,
        f"{{{MD}}}AssertionConsumerService",
        Binding=BINDING_POST,
        Location=acs_url,
        index="0",
        isDefault="true",
    )
    result: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return result
