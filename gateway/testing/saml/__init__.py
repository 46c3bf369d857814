"""A real SAML 2.0 identity provider for tests and benchmarks (no pytest needed to import it).

:class:`SAMLTestIdP` (:mod:`.server`) builds responses with pysaml2's own IdP code and signs them in
process with python-xmlsec, serves its metadata, a browser sign-on endpoint and single logout;
:mod:`.messages` holds its keys, XML signing and logout messages, for building attacks too. Needs the
``test`` extra (python-xmlsec).
"""

from __future__ import annotations

from gateway.testing.saml.messages import (
    AWS_ACS,
    AWS_AUDIENCE,
    DS_NS,
    ECDSA_SHA256,
    MFA_CLASS,
    PASSWORD_CLASS,
    ROLE_ATTR,
    RSA_SHA256,
    SAML_NS,
    SAML_STATUS_SUCCESS,
    SAMLP_NS,
    SESSION_DURATION_ATTR,
    SESSION_NAME_ATTR,
    TestKey,
)
from gateway.testing.saml.server import SAMLTestIdP

__all__ = [
    "AWS_ACS",
    "AWS_AUDIENCE",
    "DS_NS",
    "ECDSA_SHA256",
    "MFA_CLASS",
    "PASSWORD_CLASS",
    "ROLE_ATTR",
    "RSA_SHA256",
    "SAMLP_NS",
    "SAML_NS",
    "SAML_STATUS_SUCCESS",
    "SESSION_DURATION_ATTR",
    "SESSION_NAME_ATTR",
    "SAMLTestIdP",
    "TestKey",
]
