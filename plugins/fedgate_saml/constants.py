"""SAML 2.0 and XML Signature names, in one place for the plugin and the test IdP.

Namespaces, bindings, status codes, NameID formats, AWS's attribute names and the signature
algorithm URIs that appear in messages fedgate reads or writes.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AWS_ROLE_ATTRIBUTE",
    "AWS_SESSION_DURATION_ATTRIBUTE",
    "AWS_SESSION_NAME_ATTRIBUTE",
    "BEARER",
    "BINDING_POST",
    "BINDING_REDIRECT",
    "DS",
    "ECDSA_SHA256",
    "ENVELOPED_SIGNATURE",
    "EXC_C14N",
    "MD",
    "NAMEID_EMAIL",
    "NAMEID_FORMATS",
    "NAMEID_PERSISTENT",
    "NAMEID_TRANSIENT",
    "NAMEID_UNSPECIFIED",
    "RSA_SHA1",
    "RSA_SHA256",
    "SAML",
    "SAMLP",
    "SHA256",
    "STATUS_SUCCESS",
]

#: The protocol namespace (``samlp:``): Response, AuthnRequest, LogoutRequest, Status...
SAMLP: Final = "urn:oasis:names:tc:SAML:2.0:protocol"
#: The assertion namespace (``saml:``): Assertion, Issuer, NameID...
SAML: Final = "urn:oasis:names:tc:SAML:2.0:assertion"
#: The metadata namespace (``md:``).
MD: Final = "urn:oasis:names:tc:SAML:2.0:metadata"
#: XML Signature (``ds:``).
DS: Final = "http://www.w3.org/2000/09/xmldsig#"

BINDING_POST: Final = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_REDIRECT: Final = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
STATUS_SUCCESS: Final = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER: Final = "urn:oasis:names:tc:SAML:2.0:cm:bearer"

NAMEID_PERSISTENT: Final = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_TRANSIENT: Final = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_EMAIL: Final = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_UNSPECIFIED: Final = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
#: What fedgate's SP metadata offers, in order of preference.
NAMEID_FORMATS: Final = (NAMEID_PERSISTENT, NAMEID_TRANSIENT, NAMEID_EMAIL, NAMEID_UNSPECIFIED)

AWS_ROLE_ATTRIBUTE: Final = "https://aws.amazon.com/SAML/Attributes/Role"
AWS_SESSION_NAME_ATTRIBUTE: Final = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"
AWS_SESSION_DURATION_ATTRIBUTE: Final = "https://aws.amazon.com/SAML/Attributes/SessionDuration"

RSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1: Final = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
ECDSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256: Final = "http://www.w3.org/2001/04/xmlenc#sha256"
EXC_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED_SIGNATURE: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
