"""Test doubles for fedgate and its plugin authors: real servers, real keys, no pytest needed.

:class:`OIDCTestIssuer` (:mod:`.oidc`) is a real OpenID Connect issuer and authorization server on
127.0.0.1; :class:`gateway.testing.tls.TestCA` a certificate authority for https test servers;
:mod:`gateway.testing.redis` a private Redis server a test may stop, restart empty and pause. The
SAML test IdP is :class:`gateway.testing.saml.SAMLTestIdP` (imported from its own package: it needs
the ``test`` extra's python-xmlsec).
"""

from __future__ import annotations

from gateway.testing.oidc import AUTO, FailMode, OIDCTestIssuer, compact_jws

__all__ = ["AUTO", "FailMode", "OIDCTestIssuer", "compact_jws"]
