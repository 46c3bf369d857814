"""Hardened XML parsing and XML-signature verification (pure, synchronous, no I/O).

Signatures are verified in process by signxml (lxml + cryptography). Its verifier returns only the
canonical bytes the signature covers, re-parsed: that element, and nothing else from the message, is
what callers read. Wrapping attacks (XSW) therefore find nothing to smuggle: an element the
signature does not cover is simply not in the result. Comments are gone too (exclusive c14n without
comments), so ``<NameID>a@evil.com<!---->.example.com</NameID>`` reads as the whole address.

On top of that, fail-fast structural rules give clear errors: the signature must be a direct child
of the element it signs and reference it by its ``ID``; one reference; only enveloped-signature and
exclusive/inclusive c14n transforms; asymmetric algorithms only (HMAC never), SHA-1 only when
allowed; keys only from the provider's metadata (``KeyInfo`` in the message is ignored).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidDigest, InvalidSignature, SignXMLException
from signxml.verifier import SignatureConfiguration, XMLVerifier

from fedgate_saml.constants import DS, ENVELOPED_SIGNATURE, EXC_C14N
from gateway.errors import InvalidIdentityToken

__all__ = [
    "TrustedCert",
    "has_dtd",
    "parse_xml",
    "verify_enveloped",
    "verify_metadata_signature",
]

_C14N: Final = frozenset(
    {
        EXC_C14N,
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        "http://www.w3.org/2006/12/xml-c14n11",
    }
)
_STRONG_SIGNATURES: Final = frozenset(
    {
        SignatureMethod.RSA_SHA256,
        SignatureMethod.RSA_SHA384,
        SignatureMethod.RSA_SHA512,
        SignatureMethod.ECDSA_SHA256,
        SignatureMethod.ECDSA_SHA384,
        SignatureMethod.ECDSA_SHA512,
        SignatureMethod.SHA256_RSA_MGF1,
        SignatureMethod.SHA384_RSA_MGF1,
        SignatureMethod.SHA512_RSA_MGF1,
    }
)
_SHA1_SIGNATURES: Final = frozenset({SignatureMethod.RSA_SHA1, SignatureMethod.ECDSA_SHA1})
_STRONG_DIGESTS: Final = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})
_SHA1_DIGESTS: Final = frozenset({DigestAlgorithm.SHA1})
_SHA1_URIS: Final = frozenset(m.value for m in _SHA1_SIGNATURES) | frozenset(m.value for m in _SHA1_DIGESTS)


@dataclass(frozen=True, slots=True)
class TrustedCert:
    """A signing certificate from the IdP's metadata, with what verification needs precomputed."""

    cert: x509.Certificate
    der: bytes
    b64: str
    not_before: datetime
    not_after: datetime

    @classmethod
    def of(cls, cert: x509.Certificate) -> TrustedCert:
        """Wrap ``cert``."""
        der = cert.public_bytes(Encoding.DER)
        b64 = base64.b64encode(der).decode("ascii")
        return cls(cert, der, b64, cert.not_valid_before_utc, cert.not_valid_after_utc)

    def valid_at(self, when: datetime) -> bool:
        """Whether ``when`` lies in the certificate's validity period."""
        return self.not_before <= when <= self.not_after


def has_dtd(document: bytes) -> bool:
    """Whether ``document`` declares a DTD or entities (refused outright, defusedxml-style)."""
    return b"<!DOCTYPE" in document or b"<!ENTITY" in document


def _parser() -> etree.XMLParser:
    # The encoding is forced: a declaration naming UTF-7 or UTF-16 must not hide markup from has_dtd.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        encoding="utf-8",
    )


def parse_xml(document: bytes) -> etree._Element:
    """Parse untrusted XML: no DTD, no entities, UTF-8 only. Raises :class:`InvalidIdentityToken`."""
    if has_dtd(document):
        raise InvalidIdentityToken(
            "SAML response contains a DTD or entity declarations, which are not allowed"
        )
    if b"\x00" in document:
        raise InvalidIdentityToken("SAML response is not UTF-8 XML")
    try:
        root = etree.fromstring(document, _parser())
    except etree.XMLSyntaxError:
        raise InvalidIdentityToken("SAML response is not well-formed XML") from None
    info = root.getroottree().docinfo
    if info.internalDTD is not None or info.externalDTD is not None or next(root.iter(etree.Entity), None):
        raise InvalidIdentityToken(
            "SAML response contains a DTD or entity declarations, which are not allowed"
        )
    return root


def _config(allow_sha1: bool) -> SignatureConfiguration:
    return SignatureConfiguration(
        require_x509=True,
        location="./",
        expect_references=1,
        signature_methods=_STRONG_SIGNATURES | (_SHA1_SIGNATURES if allow_sha1 else frozenset()),
        digest_algorithms=_STRONG_DIGESTS | (_SHA1_DIGESTS if allow_sha1 else frozenset()),
        # Keys come from metadata only: whatever KeyInfo the message carries plays no part.
        ignore_ambiguous_key_info=True,
    )


_CONFIGS: Final = {False: _config(False), True: _config(True)}


def _check_signature_shape(element: etree._Element, signature: etree._Element, allow_sha1: bool) -> str:
    """Structural checks on the (not yet verified) signature, for fail-fast and clear messages.

    Returns the signature algorithm URI.
    """
    info = signature.find(f"{{{DS}}}SignedInfo")
    method = info.find(f"{{{DS}}}SignatureMethod") if info is not None else None
    if info is None or method is None:
        raise InvalidIdentityToken("SAML signature is malformed (no SignedInfo/SignatureMethod)")
    algorithm = method.get("Algorithm", "")
    if "hmac" in algorithm.lower():
        raise InvalidIdentityToken(
            "SAML response is signed with HMAC; only the IdP's public-key signatures count"
        )
    refs = info.findall(f"{{{DS}}}Reference")
    if len(refs) != 1:
        raise InvalidIdentityToken("SAML signature must have exactly one Reference")
    digest = refs[0].find(f"{{{DS}}}DigestMethod")
    digest_alg = digest.get("Algorithm", "") if digest is not None else ""
    if not allow_sha1 and (algorithm in _SHA1_URIS or digest_alg in _SHA1_URIS):
        raise InvalidIdentityToken("SAML response is signed with SHA-1, which this provider does not allow")
    element_id = element.get("ID")
    if not element_id or refs[0].get("URI") != f"#{element_id}":
        raise InvalidIdentityToken("SAML signature does not reference the element that contains it")
    for transform in refs[0].iterfind(f"{{{DS}}}Transforms/{{{DS}}}Transform"):
        if transform.get("Algorithm") != ENVELOPED_SIGNATURE and transform.get("Algorithm") not in _C14N:
            raise InvalidIdentityToken("SAML signature uses a transform that is not allowed")
    return algorithm


def _fits(cert: TrustedCert, algorithm: str) -> bool:
    # During a rollover between key types, a key of the other type is not a candidate at all.
    key = cert.cert.public_key()
    if "ecdsa" in algorithm:
        return isinstance(key, ec.EllipticCurvePublicKey)
    return isinstance(key, rsa.RSAPublicKey)


def verify_enveloped(
    element: etree._Element,
    certs: Sequence[TrustedCert],
    *,
    allow_sha1: bool,
    now: datetime,
    check_validity: bool,
) -> etree._Element:
    """Verify the signature that is a direct child of ``element`` and covers it.

    Returns the signed element re-parsed from the bytes the signature covers: the only thing the
    caller may read. Tries the metadata certificates valid at ``now`` (or all of them, without
    ``check_validity``); KeyInfo in the message plays no part. Raises :class:`InvalidIdentityToken`.
    """
    signatures = element.findall(f"{{{DS}}}Signature")
    if len(signatures) != 1:
        raise InvalidIdentityToken("SAML element must carry exactly one signature")
    algorithm = _check_signature_shape(element, signatures[0], allow_sha1)
    certs = [c for c in certs if _fits(c, algorithm)]
    usable = [c for c in certs if c.valid_at(now)] if check_validity else list(certs)
    # KeyInfo only orders the attempts (the named metadata certificate first, saving a try during a
    # rollover); it never adds a key.
    named = {
        "".join((c.text or "").split())
        for c in signatures[0].iterfind(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")
    }
    if named:
        usable.sort(key=lambda c: c.b64 not in named)
    signed = _try_certs(element, usable, allow_sha1)
    if signed is not None:
        return _check_signed(element, signed)
    outdated = [c for c in certs if c not in usable]
    if outdated and _try_certs(element, outdated, allow_sha1) is not None:
        raise InvalidIdentityToken(
            "SAML response is signed with a metadata certificate that has expired or is not yet valid"
        )
    raise InvalidIdentityToken(
        "SAML signature does not verify with any signing certificate in the provider's metadata"
    )


def _try_certs(
    element: etree._Element, certs: Sequence[TrustedCert], allow_sha1: bool
) -> etree._Element | None:
    base = _CONFIGS[allow_sha1]
    for trusted in certs:
        # Validity was decided by the caller; signxml's own check is pinned inside the certificate's period.
        config = replace(base, verification_time=trusted.not_before)
        try:
            result = XMLVerifier().verify(element, x509_cert=trusted.cert, expect_config=config)
        except InvalidDigest:
            raise InvalidIdentityToken("SAML signature does not match the signed content") from None
        except InvalidSignature:
            continue  # another key of the rollover set may have signed it
        except (SignXMLException, etree.LxmlError, ValueError, TypeError) as exc:
            raise InvalidIdentityToken(f"SAML signature is malformed ({type(exc).__name__})") from None
        signed = result.signed_xml  # type: ignore[union-attr]
        if signed is None:
            raise InvalidIdentityToken("SAML signed content is not XML")
        assert isinstance(signed, etree._Element)
        return signed
    return None


def _check_signed(element: etree._Element, signed: etree._Element) -> etree._Element:
    if signed.tag != element.tag or signed.get("ID") != element.get("ID"):
        raise InvalidIdentityToken("SAML signature covers a different element than the one that carries it")
    return signed


def verify_metadata_signature(document: bytes, signer: x509.Certificate) -> bytes:
    """The canonical bytes of a metadata document signed by ``signer``; ``ValueError`` otherwise."""
    if has_dtd(document):
        raise ValueError("DTDs are not allowed")
    try:
        root = etree.fromstring(document, _parser())
        result = XMLVerifier().verify(root, x509_cert=signer, expect_config=_CONFIGS[False])
    except (SignXMLException, etree.LxmlError) as exc:
        raise ValueError(type(exc).__name__) from None
    signed = result.signed_xml  # type: ignore[union-attr]
    if signed is None or signed.tag != root.tag or signed.get("ID") != root.get("ID"):
        raise ValueError("the signature does not cover the whole document")
    data: bytes = result.signed_data  # type: ignore[union-attr]
    return data
