"""fedgate's OpenID Connect identity provider, for AssumeRoleWithWebIdentity.

Registered through the ``fedgate`` entry-point group as ``oidc``, exactly as a third-party plugin
would be. It accepts ID tokens (compact JWS) from Kubernetes service accounts, GitHub Actions,
Keycloak, Auth0, Google and any other OpenID Connect issuer.

Configuration (one entry of ``providers``)::

    providers:
      - type: oidc
        issuer: https://token.actions.githubusercontent.com   # compared exactly with iss
        audiences: [sts.amazonaws.com]          # accepted aud (or azp) values; at least one
        algorithms: [RS256]                     # allowlist; RS/PS 256-512, ES256/384/512, EdDSA
        jwks_url: null                          # default: jwks_uri of ISSUER/.well-known/openid-configuration
        jwks_cache_seconds: 3600                # how long keys and discovery are trusted
        jwks_refetch_min_interval: 60           # min seconds between refetches on an unknown kid
        http_timeout: 5                         # seconds per discovery/JWKS request
        ca_file: null                           # PEM CA bundle trusted for the issuer (else the system's)
        max_token_bytes: 16384                  # larger tokens are refused unread
        require_claims: []                      # extra claims every token must carry
        share_jwks: false                       # also cache the JWKS in the shared store
        public_network_only: false              # never fetch from loopback/private/link-local
                                                # addresses (always on for IAM API providers)

``issuer`` (and ``jwks_url``) must be https; plain http is accepted only to a loopback host, for
development. ``none`` and HMAC algorithms are refused at start-up: only asymmetric signatures with
keys from the issuer's JWKS are ever trusted.

The identity's condition keys are ``HOST/PATH:claim`` (lower-cased) for every claim whose value is
a string, number, boolean or list of them, with ``HOST/PATH:aud`` the audience that matched. Session
tags come from the ``https://aws.amazon.com/tags`` claim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError

from fedgate_oidc.config import OIDCProviderSettings
from gateway.plugin import IdentityProvider, ProviderContext, ProviderSettings, hookimpl, require

if TYPE_CHECKING:  # the provider's libraries are imported only when one is built
    from fedgate_oidc.provider import OIDCProvider

__all__ = ["OIDCProvider", "OIDCProviderSettings"]


@hookimpl
def fedgate_add_provider_types() -> Mapping[str, type[ProviderSettings]]:
    """Declare the ``oidc`` provider type."""
    return {"oidc": OIDCProviderSettings}


@hookimpl
def fedgate_create_identity_provider(
    settings: ProviderSettings, context: ProviderContext
) -> IdentityProvider | None:
    """Build an :class:`OIDCProvider` for ``oidc`` settings; ``None`` for any other type."""
    if isinstance(settings, OIDCProviderSettings):
        require("joserfc", feature="providers: type oidc", package="joserfc")
        from fedgate_oidc.provider import OIDCProvider

        return OIDCProvider(settings, context)
    return None


@hookimpl
def fedgate_api_provider_settings(
    kind: str, issuer: str, audiences: Sequence[str]
) -> ProviderSettings | None:
    """An OIDC provider created through the IAM API: its URL is the issuer, its client ids the
    accepted audiences (``RS256`` and every other default of the ``oidc`` type). ``None`` for
    other kinds, and for a provider that cannot accept a token (no client id, an unusable URL)."""
    if kind != "oidc" or not audiences:
        return None
    try:
        # Its URL is an IAM user's choice: never fetched from a non-public address (no SSRF).
        return OIDCProviderSettings(
            type="oidc", issuer=issuer, audiences=list(audiences), public_network_only=True
        )
    except ValidationError:
        return None


def __getattr__(name: str) -> object:
    if name == "OIDCProvider":
        from fedgate_oidc.provider import OIDCProvider

        return OIDCProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
