"""Every attack on SAML response validation is refused, with the right error and without echoing it.

The XML-signature-wrapping corpus follows Somorovsky et al., "On Breaking SAML" (2012), in the
numbering SAML Raider uses: XSW1-2 wrap the signed Response, XSW3-8 the signed Assertion. Each
variant keeps the IdP's genuine signature valid over the original element and smuggles an evil
element (NameID ``admin@evil.example``) where a naive consumer would read it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from lxml import etree

from fedgate_saml import SAMLProvider
from gateway.errors import ExpiredToken, IDPRejectedClaim, InvalidIdentityToken, ServiceError
from gateway.store.base import Store
from gateway.testing.saml import DS_NS, SAML_NS, SAMLP_NS, SAMLTestIdP
from tests.conftest import StoreFactory
from tests.plugins.fedgate_saml.conftest import PROVIDER_ARN, ROLE_ARN, Clock, Make

EVIL = "admin@evil.example"
SHA1_SIG = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA1_DIGEST = "http://www.w3.org/2000/09/xmldsig#sha1"


def signed(idp: SAMLTestIdP, *, response: bool, assertion: bool, **kwargs: Any) -> bytes:
    kwargs.setdefault("roles", [(ROLE_ARN, PROVIDER_ARN)])
    return idp.response(sign_response=response, sign_assertion=assertion, **kwargs)


async def rejects(
    provider: SAMLProvider, document: bytes | str, error: type[ServiceError] = InvalidIdentityToken
) -> ServiceError:
    """Assert ``provider`` refuses the response with exactly ``error``, not quoting the response."""
    token = document if isinstance(document, str) else SAMLTestIdP.b64(document)
    with pytest.raises(ServiceError) as info:
        await provider.authenticate(token)
    exc = info.value
    assert type(exc) is error, f"{type(exc).__name__}: {exc.message}"
    assert exc.message and len(exc.message) < 300
    assert token[:40] not in exc.message and "<" not in exc.message
    assert EVIL not in exc.message and "alice@example.com" not in exc.message
    return exc


def tree(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


def q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def evil_copy(element: etree._Element, new_id: str, *, keep_signature: bool = False) -> etree._Element:
    clone = copy.deepcopy(element)
    clone.set("ID", new_id)
    if not keep_signature:
        for sig in clone.findall(q(DS_NS, "Signature")):
            clone.remove(sig)
    for name_id in clone.iter(q(SAML_NS, "NameID")):
        name_id.text = EVIL
    return clone


def strip_signature(element: etree._Element) -> etree._Element:
    clone = copy.deepcopy(element)
    for sig in clone.findall(q(DS_NS, "Signature")):
        clone.remove(sig)
    return clone


# -- XSW1-2: the signed Response -----------------------------------------------------------------


def xsw1(xml: bytes) -> bytes:
    """Evil Response at the root; the original Response inside its (moved) Signature."""
    original = tree(xml)
    evil = evil_copy(original, "_evil", keep_signature=True)
    sig = evil.find(q(DS_NS, "Signature"))
    assert sig is not None
    etree.SubElement(sig, q(DS_NS, "Object")).append(strip_signature(original))
    return etree.tostring(evil)


def xsw2(xml: bytes) -> bytes:
    """Evil Response at the root; the original Response as a detached sibling before the Signature."""
    original = tree(xml)
    evil = evil_copy(original, "_evil", keep_signature=True)
    sig = evil.find(q(DS_NS, "Signature"))
    assert sig is not None
    sig.addprevious(strip_signature(original))
    return etree.tostring(evil)


# -- XSW3-8: the signed Assertion ----------------------------------------------------------------


def _parts(xml: bytes) -> tuple[etree._Element, etree._Element]:
    root = tree(xml)
    assertion = root.find(q(SAML_NS, "Assertion"))
    assert assertion is not None
    return root, assertion


def xsw3(xml: bytes) -> bytes:
    """Evil Assertion (no signature) inserted before the signed original."""
    root, original = _parts(xml)
    original.addprevious(evil_copy(original, "_evil"))
    return etree.tostring(root)


def xsw4(xml: bytes) -> bytes:
    """Evil Assertion replaces the original, which is wrapped inside it."""
    root, original = _parts(xml)
    evil = evil_copy(original, "_evil")
    root.replace(original, evil)
    evil.append(original)
    return etree.tostring(root)


def xsw5(xml: bytes) -> bytes:
    """Evil Assertion keeps the original Signature; the original (unsigned) is appended at the end."""
    root, original = _parts(xml)
    evil = evil_copy(original, "_evil", keep_signature=True)
    root.replace(original, evil)
    root.append(strip_signature(original))
    return etree.tostring(root)


def xsw6(xml: bytes) -> bytes:
    """Evil Assertion keeps the Signature; the original (unsigned) hides inside that Signature."""
    root, original = _parts(xml)
    evil = evil_copy(original, "_evil", keep_signature=True)
    root.replace(original, evil)
    sig = evil.find(q(DS_NS, "Signature"))
    assert sig is not None
    sig.append(strip_signature(original))
    return etree.tostring(root)


def xsw7(xml: bytes) -> bytes:
    """Evil Assertion in an Extensions block before the signed original."""
    root, original = _parts(xml)
    extensions = etree.Element(q(SAMLP_NS, "Extensions"))
    extensions.append(evil_copy(original, "_evil"))
    issuer = root.find(q(SAML_NS, "Issuer"))
    assert issuer is not None
    issuer.addnext(extensions)
    return etree.tostring(root)


def xsw8(xml: bytes) -> bytes:
    """Evil Assertion keeps the Signature; the original (unsigned) in a ds:Object inside it."""
    root, original = _parts(xml)
    evil = evil_copy(original, "_evil", keep_signature=True)
    root.replace(original, evil)
    sig = evil.find(q(DS_NS, "Signature"))
    assert sig is not None
    etree.SubElement(sig, q(DS_NS, "Object")).append(strip_signature(original))
    return etree.tostring(root)


XSW: dict[str, tuple[Callable[[bytes], bytes], bool]] = {
    "XSW1": (xsw1, True),
    "XSW2": (xsw2, True),
    "XSW3": (xsw3, False),
    "XSW4": (xsw4, False),
    "XSW5": (xsw5, False),
    "XSW6": (xsw6, False),
    "XSW7": (xsw7, False),
    "XSW8": (xsw8, False),
}


@pytest.mark.parametrize("variant", sorted(XSW))
async def test_signature_wrapping_is_refused(provider: SAMLProvider, idp: SAMLTestIdP, variant: str) -> None:
    attack, response_signed = XSW[variant]
    original = signed(idp, response=response_signed, assertion=not response_signed)
    assert (await provider.authenticate(SAMLTestIdP.b64(original))).subject == "alice@example.com"
    await rejects(provider, attack(signed(idp, response=response_signed, assertion=not response_signed)))


async def test_wrapped_response_with_single_assertion_reads_only_signed_bytes(
    provider: SAMLProvider, idp: SAMLTestIdP
) -> None:
    # XSW1 without the second assertion: the evil root has none, the signed original one. Refused
    # because the signature does not cover the element that carries it.
    original = tree(signed(idp, response=True, assertion=False))
    evil = evil_copy(original, "_evil", keep_signature=True)
    evil_assertion = evil.find(q(SAML_NS, "Assertion"))
    assert evil_assertion is not None
    evil.remove(evil_assertion)
    sig = evil.find(q(DS_NS, "Signature"))
    assert sig is not None
    etree.SubElement(sig, q(DS_NS, "Object")).append(strip_signature(original))
    exc = await rejects(provider, etree.tostring(evil))
    assert "assertion" in exc.message or "reference" in exc.message


async def test_tampered_signed_content_is_refused(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    xml = signed(idp, response=False, assertion=True).replace(
        b"alice@example.com</", EVIL.encode() + b"</", 1
    )
    exc = await rejects(provider, xml)
    assert "does not match" in exc.message


async def test_comment_in_name_id_cannot_truncate_it(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    for response_signed in (True, False):
        xml = signed(
            idp, response=response_signed, assertion=not response_signed, name_id="admin@evil.com.example.com"
        )
        forged = xml.replace(b"admin@evil.com.example.com", b"admin@evil.com<!---->.example.com", 1)
        assert forged != xml
        identity = await provider.authenticate(SAMLTestIdP.b64(forged))
        assert identity.subject == "admin@evil.com.example.com"
        assert identity.condition_keys["saml:sub"] == "admin@evil.com.example.com"


async def test_unsigned_response_is_refused(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    exc = await rejects(provider, signed(idp, response=False, assertion=False))
    assert "not signed" in exc.message


async def test_signature_by_key_not_in_metadata_is_refused(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    with SAMLTestIdP(entity_id=idp.entity_id) as impostor:  # same entityID, its own key and cert in KeyInfo
        for response_signed in (True, False):
            xml = signed(impostor, response=response_signed, assertion=not response_signed)
            assert impostor.keys[0].cert_b64.encode() in xml
            exc = await rejects(provider, xml)
            assert "does not verify" in exc.message


async def test_hmac_signature_is_refused(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    xml = signed(idp, response=False, assertion=False)
    response_id = tree(xml).get("ID")
    assert response_id is not None
    # Algorithm confusion: the "secret" is the IdP's public certificate, which anyone has.
    forged = idp.hmac_sign_element(xml, response_id, idp.keys[0].cert_pem)
    exc = await rejects(provider, forged)
    assert "HMAC" in exc.message


async def test_sha1_refused_by_default_and_accepted_when_allowed(make: Make, idp: SAMLTestIdP) -> None:
    strict = await make()
    lenient = await make(allow_sha1=True)
    for kwargs in (
        {"sign_alg": SHA1_SIG},
        {"digest_alg": SHA1_DIGEST},
        {"sign_alg": SHA1_SIG, "digest_alg": SHA1_DIGEST},
    ):
        exc = await rejects(strict, signed(idp, response=True, assertion=False, **kwargs))
        assert "SHA-1" in exc.message
        identity = await lenient.authenticate(
            SAMLTestIdP.b64(signed(idp, response=True, assertion=False, **kwargs))
        )
        assert identity.subject == "alice@example.com"


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
)
XXE = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


@pytest.mark.parametrize("variant", ["billion-laughs", "xxe", "doctype-only", "utf16-doctype"])
async def test_dtd_and_entities_are_refused(provider: SAMLProvider, idp: SAMLTestIdP, variant: str) -> None:
    xml = signed(idp, response=True, assertion=False)
    if variant == "billion-laughs":
        document = BILLION_LAUGHS + xml.replace(b"alice@example.com</", b"&d;</", 1)
    elif variant == "xxe":
        document = XXE + xml.replace(b"alice@example.com</", b"&xxe;</", 1)
    elif variant == "doctype-only":
        document = b"<!DOCTYPE Response>" + xml
    else:
        document = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE Response>' + xml.decode()).encode(
            "utf-16"
        )
    exc = await rejects(provider, document)
    assert "DTD" in exc.message or "UTF-8" in exc.message


async def test_oversized_assertion_is_refused_before_decoding(make: Make) -> None:
    provider = await make(max_assertion_chars=2048)
    exc = await rejects(provider, "!" * 2049)  # not even base64: never looked at
    assert "larger than 2048" in exc.message
    exc = await rejects(provider, "not base64 at all!")
    assert "base64" in exc.message
    exc = await rejects(provider, SAMLTestIdP.b64(b"<not-closed"))
    assert "well-formed" in exc.message


async def test_wrong_audience_is_refused(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    exc = await rejects(
        provider, signed(idp, response=True, assertion=False, sp_entity_id="https://sp.other.test/saml")
    )
    assert "Audience" in exc.message


async def test_wrong_destination_is_refused(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    xml = signed(idp, response=False, assertion=True)  # the Response envelope is unsigned: edit it
    root = tree(xml)
    root.set("Destination", "https://evil.example/acs")
    exc = await rejects(provider, etree.tostring(root))
    assert "Destination" in exc.message


async def test_wrong_recipient_is_refused(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    xml = signed(idp, response=False, assertion=True, destination="https://evil.example/acs")
    root = tree(xml)
    root.set("Destination", "https://signin.aws.amazon.com/saml")  # only the signed Recipient is wrong
    exc = await rejects(provider, etree.tostring(root))
    assert "Recipient" in exc.message


async def test_expired_assertion_is_refused(provider: SAMLProvider, idp: SAMLTestIdP, clock: Clock) -> None:
    xml = signed(idp, response=True, assertion=False)
    clock.offset = 5 * 60 + 61  # lifetime 5 minutes, leeway 60 s
    exc = await rejects(provider, xml, ExpiredToken)
    assert exc.code == "ExpiredTokenException"
    clock.offset = 5 * 60 + 30  # within the leeway
    assert (await provider.authenticate(SAMLTestIdP.b64(xml))).subject == "alice@example.com"


async def test_not_yet_valid_assertion_is_refused(
    provider: SAMLProvider, idp: SAMLTestIdP, clock: Clock
) -> None:
    xml = signed(idp, response=True, assertion=False)
    clock.offset = -120
    exc = await rejects(provider, xml)
    assert "future" in exc.message or "not valid yet" in exc.message


async def test_two_assertions_are_refused(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    root, assertion = _parts(signed(idp, response=False, assertion=False))
    assertion.addnext(evil_copy(assertion, "_second"))
    response_id = root.get("ID")
    assert response_id is not None
    exc = await rejects(provider, idp.sign_element(etree.tostring(root), response_id))
    assert "exactly one assertion" in exc.message


async def test_encrypted_assertion_is_refused_clearly(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    root, assertion = _parts(signed(idp, response=False, assertion=False))
    encrypted = etree.Element(q(SAML_NS, "EncryptedAssertion"))
    etree.SubElement(encrypted, "{http://www.w3.org/2001/04/xmlenc#}EncryptedData")
    root.replace(assertion, encrypted)
    response_id = root.get("ID")
    assert response_id is not None
    exc = await rejects(provider, idp.sign_element(etree.tostring(root), response_id))
    assert "EncryptedAssertion" in exc.message


async def test_missing_role_and_session_name_are_refused(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    exc = await rejects(provider, signed(idp, response=True, assertion=False, roles=[]))
    assert "Role" in exc.message
    exc = await rejects(provider, signed(idp, response=True, assertion=False, session_name=None))
    assert "RoleSessionName is required" in exc.message
    exc = await rejects(
        provider, signed(idp, response=True, assertion=False, roles=[f"{ROLE_ARN},{ROLE_ARN}"])
    )
    assert "Role" in exc.message
    exc = await rejects(provider, signed(idp, response=True, assertion=False, session_name="x"))
    assert "RoleSessionName" in exc.message
    exc = await rejects(
        provider,
        signed(
            idp,
            response=True,
            assertion=False,
            attributes={"https://aws.amazon.com/SAML/Attributes/SessionDuration": ["60"]},
        ),
    )
    assert "SessionDuration" in exc.message


async def test_failed_status_is_idp_rejected_claim(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    root = tree(signed(idp, response=False, assertion=True))
    code = root.find(f"{q(SAMLP_NS, 'Status')}/{q(SAMLP_NS, 'StatusCode')}")
    assert code is not None
    code.set("Value", "urn:oasis:names:tc:SAML:2.0:status:Responder")
    exc = await rejects(provider, etree.tostring(root), IDPRejectedClaim)
    assert "Responder" in exc.message


async def test_in_response_to_is_refused_by_default(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    exc = await rejects(provider, signed(idp, response=True, assertion=False, in_response_to="_req-1"))
    assert "InResponseTo" in exc.message


async def test_require_signed_assertion(make: Make, idp: SAMLTestIdP) -> None:
    provider = await make(require_signed_assertion=True)
    await rejects(provider, signed(idp, response=True, assertion=False))
    identity = await provider.authenticate(SAMLTestIdP.b64(signed(idp, response=True, assertion=True)))
    assert identity.subject == "alice@example.com"


async def test_replay_is_refused_across_replicas(
    make: Make, idp: SAMLTestIdP, store_factory: StoreFactory
) -> None:
    stores: list[Store] = [await store_factory(), await store_factory()]
    first, second = await make(store=stores[0]), await make(store=stores[1])
    xml = signed(idp, response=True, assertion=False)
    assert (await first.authenticate(SAMLTestIdP.b64(xml))).subject == "alice@example.com"
    exc = await rejects(second, xml)
    assert "already used" in exc.message
    await rejects(first, xml)
    # A rejected response does not spend the ID of a valid one.
    fresh = signed(idp, response=True, assertion=False)
    await rejects(first, fresh.replace(b"alice@example.com</", EVIL.encode() + b"</", 1))
    assert (await second.authenticate(SAMLTestIdP.b64(fresh))).subject == "alice@example.com"


@pytest.mark.parametrize("variant", sorted(XSW))
def test_signature_layer_alone_refuses_wrapped_elements(idp: SAMLTestIdP, variant: str) -> None:
    """Defence in depth: even without the one-assertion rule, the evil element never verifies."""
    import datetime

    from cryptography import x509

    from fedgate_saml.xmlsig import TrustedCert, parse_xml, verify_enveloped

    attack, response_signed = XSW[variant]
    root = parse_xml(attack(signed(idp, response=response_signed, assertion=not response_signed)))
    evil = (
        root
        if response_signed
        else next(a for a in root.iter(q(SAML_NS, "Assertion")) if a.get("ID") == "_evil")
    )
    certs = [TrustedCert.of(x509.load_pem_x509_certificate(idp.keys[0].cert_pem))]
    with pytest.raises(InvalidIdentityToken) as info:
        verify_enveloped(
            evil, certs, allow_sha1=False, now=datetime.datetime.now(datetime.UTC), check_validity=True
        )
    assert "signature" in info.value.message
