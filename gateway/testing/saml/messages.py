"""The test IdP's messages: keys, XML signatures, logout messages, the HTTP-Redirect and POST bindings.

Built with lxml and python-xmlsec on the IdP's side of the protocol, independently of the SAML
plugin's own builders (they share only the names in :mod:`fedgate_saml.constants`), so a mistake in
one side cannot hide in the other. :class:`~gateway.testing.saml.SAMLTestIdP` uses these; tests use
them directly to build attacks (any element signed with any key and algorithm, HMAC signatures).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import html
import secrets
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote

import xmlsec
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from fedgate_saml.constants import (
    AWS_ROLE_ATTRIBUTE,
    AWS_SESSION_DURATION_ATTRIBUTE,
    AWS_SESSION_NAME_ATTRIBUTE,
    BINDING_POST,
    DS,
    ECDSA_SHA256,
    ENVELOPED_SIGNATURE,
    EXC_C14N,
    MD,
    NAMEID_PERSISTENT,
    RSA_SHA1,
    RSA_SHA256,
    SAML,
    SAMLP,
    SHA256,
    STATUS_SUCCESS,
)

__all__ = [
    "AWS_ACS",
    "AWS_AUDIENCE",
    "DS_NS",
    "ECDSA_SHA256",
    "EXC_C14N",
    "HMAC_SHA256",
    "MFA_CLASS",
    "PASSWORD_CLASS",
    "ROLE_ATTR",
    "RSA_SHA256",
    "SAMLP_NS",
    "SAML_NS",
    "SAML_STATUS_SUCCESS",
    "SESSION_DURATION_ATTR",
    "SESSION_NAME_ATTR",
    "SHA256",
    "TestKey",
    "find_by_id",
    "hmac_sign_element",
    "inflate",
    "logout_request",
    "logout_response",
    "make_key",
    "page",
    "post_page",
    "redirect_url",
    "sign_element",
    "sign_template",
    "sp_metadata",
    "verify_redirect_signature",
]

SAMLP_NS: Final = SAMLP
SAML_NS: Final = SAML
DS_NS: Final = DS
SAML_STATUS_SUCCESS: Final = STATUS_SUCCESS
ROLE_ATTR: Final = AWS_ROLE_ATTRIBUTE
SESSION_NAME_ATTR: Final = AWS_SESSION_NAME_ATTRIBUTE
SESSION_DURATION_ATTR: Final = AWS_SESSION_DURATION_ATTRIBUTE
#: AWS's sign-in endpoint: the Recipient and audience AWS's own SAML federation expects.
AWS_ACS: Final = "https://signin.aws.amazon.com/saml"
AWS_AUDIENCE: Final = "https://signin.aws.amazon.com/saml"
PASSWORD_CLASS: Final = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"  # noqa: S105 - an AuthnContext class, not a password
MFA_CLASS: Final = "http://schemas.microsoft.com/claims/multipleauthn"
HMAC_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
_REDIRECT_HASHES: Final = {RSA_SHA256: hashes.SHA256, RSA_SHA1: hashes.SHA1}
_MAX_INFLATED: Final = 100_000


@dataclass(frozen=True, slots=True)
class TestKey:
    """One signing key of the test IdP: PEM private key and self-signed certificate, and their files."""

    __test__ = False  # not a pytest test class

    key_pem: bytes
    cert_pem: bytes
    key_file: Path
    cert_file: Path

    @property
    def cert_b64(self) -> str:
        """The certificate's DER in base64, as metadata and KeyInfo carry it."""
        return "".join(self.cert_pem.decode().strip().splitlines()[1:-1])


def make_key(
    directory: Path, name: str, *, valid_days: int, not_before_days: int = -1, kind: str = "RSA"
) -> TestKey:
    """A new RSA 2048 (or ``kind="EC"``: P-256) key and self-signed certificate, written to ``directory``."""
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "EC":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"fedgate test IdP {name}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=not_before_days))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .sign(private, hashes.SHA256())
    )
    key_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_file, cert_file = directory / f"{name}.key", directory / f"{name}.crt"
    key_file.write_bytes(key_pem)
    cert_file.write_bytes(cert_pem)
    return TestKey(key_pem, cert_pem, key_file, cert_file)


def find_by_id(root: etree._Element, element_id: str) -> etree._Element:
    """The one element of ``root`` whose ``ID`` is ``element_id``."""
    found = root.xpath("//*[@ID=$id]", id=element_id)
    assert isinstance(found, list) and len(found) == 1, f"expected one element with ID {element_id}"
    element = found[0]
    assert isinstance(element, etree._Element)
    return element


def sign_template(xml: bytes, element_id: str, key_pem: bytes) -> bytes:
    """Fill in the signature template that is a child of the element ``element_id``."""
    root = etree.fromstring(xml)
    node = find_by_id(root, element_id)
    template = node.find(f"{{{DS}}}Signature")
    assert template is not None, "the element has no signature template"
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem)
    ctx.register_id(node, "ID")
    ctx.sign(template)
    result: bytes = etree.tostring(root)
    return result


def sign_element(
    xml: bytes,
    element_id: str,
    key: TestKey,
    *,
    sign_alg: str = RSA_SHA256,
    digest_alg: str = SHA256,
    with_cert: bool = True,
) -> bytes:
    """Sign the element ``element_id`` of ``xml`` (any document) with ``key``, replacing a signature
    it has. The signature goes where SAML puts it, right after the element's ``Issuer``."""
    root = etree.fromstring(xml)
    node = find_by_id(root, element_id)
    _insert_template(node, element_id, sign_alg, digest_alg, key if with_cert else None)
    return sign_template(etree.tostring(root), element_id, key.key_pem)


def _insert_template(
    node: etree._Element, element_id: str, sign_alg: str, digest_alg: str, key: TestKey | None
) -> etree._Element:
    for old in node.findall(f"{{{DS}}}Signature"):
        node.remove(old)
    sig = etree.Element(f"{{{DS}}}Signature", nsmap={"ds": DS})
    info = etree.SubElement(sig, f"{{{DS}}}SignedInfo")
    etree.SubElement(info, f"{{{DS}}}CanonicalizationMethod", Algorithm=EXC_C14N)
    etree.SubElement(info, f"{{{DS}}}SignatureMethod", Algorithm=sign_alg)
    ref = etree.SubElement(info, f"{{{DS}}}Reference", URI=f"#{element_id}")
    transforms = etree.SubElement(ref, f"{{{DS}}}Transforms")
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=ENVELOPED_SIGNATURE)
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=EXC_C14N)
    etree.SubElement(ref, f"{{{DS}}}DigestMethod", Algorithm=digest_alg)
    etree.SubElement(ref, f"{{{DS}}}DigestValue")
    etree.SubElement(sig, f"{{{DS}}}SignatureValue")
    if key is not None:
        data = etree.SubElement(etree.SubElement(sig, f"{{{DS}}}KeyInfo"), f"{{{DS}}}X509Data")
        etree.SubElement(data, f"{{{DS}}}X509Certificate").text = key.cert_b64
    issuer = node.find(f"{{{SAML}}}Issuer")
    node.insert(0 if issuer is None else node.index(issuer) + 1, sig)
    return sig


def hmac_sign_element(xml: bytes, element_id: str, secret: bytes) -> bytes:
    """Sign the element ``element_id`` with HMAC-SHA256 under ``secret`` (algorithm confusion)."""
    root = etree.fromstring(xml)
    node = find_by_id(root, element_id)
    sig = _insert_template(
        node, element_id, "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256", SHA256, None
    )
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataHmac, secret)
    ctx.register_id(node, "ID")
    ctx.sign(sig)
    result: bytes = etree.tostring(root)
    return result


def _logout_element(
    tag: str, issuer: str, element_id: str, destination: str, issue_instant: datetime.datetime | None
) -> etree._Element:
    when = issue_instant or datetime.datetime.now(datetime.UTC)
    root = etree.Element(
        f"{{{SAMLP}}}{tag}",
        nsmap={"samlp": SAMLP, "saml": SAML},
        ID=element_id,
        Version="2.0",
        IssueInstant=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        Destination=destination,
    )
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = issuer
    return root


def logout_request(
    *,
    issuer: str,
    destination: str,
    name_id: str,
    request_id: str | None = None,
    session_index: str | None = None,
    name_id_format: str = NAMEID_PERSISTENT,
    issue_instant: datetime.datetime | None = None,
) -> tuple[bytes, str]:
    """An IdP-initiated ``LogoutRequest`` for ``name_id`` and its ID."""
    request_id = request_id or "_" + secrets.token_hex(20)
    root = _logout_element("LogoutRequest", issuer, request_id, destination, issue_instant)
    etree.SubElement(root, f"{{{SAML}}}NameID", Format=name_id_format).text = name_id
    if session_index is not None:
        etree.SubElement(root, f"{{{SAMLP}}}SessionIndex").text = session_index
    return etree.tostring(root), request_id


def logout_response(
    *,
    issuer: str,
    destination: str,
    in_response_to: str,
    status: str = STATUS_SUCCESS,
    issue_instant: datetime.datetime | None = None,
) -> bytes:
    """A ``LogoutResponse`` answering ``in_response_to`` with ``status``."""
    root = _logout_element("LogoutResponse", issuer, "_" + secrets.token_hex(20), destination, issue_instant)
    root.set("InResponseTo", in_response_to)
    code = etree.SubElement(etree.SubElement(root, f"{{{SAMLP}}}Status"), f"{{{SAMLP}}}StatusCode")
    code.set("Value", status)
    result: bytes = etree.tostring(root)
    return result


def redirect_url(
    destination: str,
    parameter: str,
    xml: bytes,
    *,
    relay_state: str = "",
    key: TestKey | None = None,
    sign_alg: str = RSA_SHA256,
) -> str:
    """``destination`` carrying ``xml`` with the HTTP-Redirect binding, signed with ``key`` (RSA) unless
    ``None``; ``parameter`` is ``SAMLRequest`` or ``SAMLResponse``."""
    compressor = zlib.compressobj(wbits=-15)
    deflated = compressor.compress(xml) + compressor.flush()
    parts = [f"{parameter}={quote(base64.b64encode(deflated).decode('ascii'), safe='')}"]
    if relay_state:
        parts.append(f"RelayState={quote(relay_state, safe='')}")
    if key is not None:
        parts.append(f"SigAlg={quote(sign_alg, safe='')}")
        private = serialization.load_pem_private_key(key.key_pem, None)
        assert isinstance(private, rsa.RSAPrivateKey), "redirect signatures here are RSA"
        data = "&".join(parts).encode("ascii")
        signature = private.sign(data, padding.PKCS1v15(), _REDIRECT_HASHES[sign_alg]())
        parts.append(f"Signature={quote(base64.b64encode(signature).decode('ascii'), safe='')}")
    return f"{destination}{'&' if '?' in destination else '?'}{'&'.join(parts)}"


def verify_redirect_signature(
    certificate: bytes | None, signed_part: str, sig_alg: str | None, signature: str | None
) -> bool:
    """Whether ``signature`` (base64) over ``signed_part`` verifies with the PEM ``certificate``."""
    if certificate is None or sig_alg != RSA_SHA256 or not signature:
        return False
    key = x509.load_pem_x509_certificate(certificate).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(base64.b64decode(signature), signed_part.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def inflate(encoded: str) -> etree._Element:
    """An HTTP-Redirect message's XML; ``ValueError`` if it is not deflated XML."""
    try:
        xml = zlib.decompressobj(wbits=-15).decompress(base64.b64decode(encoded), _MAX_INFLATED)
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        return etree.fromstring(xml, parser)
    except (binascii.Error, zlib.error, etree.XMLSyntaxError) as exc:
        raise ValueError("not a deflated SAML message") from exc


def page(body: str) -> str:
    """A minimal HTML page around ``body``."""
    head = "<!doctype html><html lang=en><head><meta charset=utf-8><title>Test IdP</title></head>"
    return f"{head}<body>{body}</body></html>"


def post_page(xml: bytes, acs: str, relay_state: str = "") -> str:
    """An HTML page whose form POSTs ``xml`` (base64) and ``relay_state`` to ``acs`` (HTTP-POST)."""
    relay = f'<input type=hidden name=RelayState value="{html.escape(relay_state)}">' if relay_state else ""
    return page(
        f'<form method=post action="{html.escape(acs)}"><p>Signed in. Continue to the application.</p>'
        f'<input type=hidden name=SAMLResponse value="{base64.b64encode(xml).decode("ascii")}">{relay}'
        "<button type=submit>Continue</button></form>"
    )


def sp_metadata(entity_id: str, acs: str) -> str:
    """Minimal metadata of an SP posting to ``acs`` (what pysaml2 needs to answer it)."""
    return (
        f'<md:EntityDescriptor xmlns:md="{MD}" entityID="{html.escape(entity_id)}">'
        f'<md:SPSSODescriptor protocolSupportEnumeration="{SAMLP}">'
        f'<md:AssertionConsumerService Binding="{BINDING_POST}" '
        f'Location="{html.escape(acs)}" index="0"/>'
        "</md:SPSSODescriptor></md:EntityDescriptor>"
    )
