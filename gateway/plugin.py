"""What a fedgate plugin is written against: the one module plugin authors import from.

Everything here is supported API; anything else in ``gateway`` may change between releases
(except :mod:`gateway.errors`, whose classes plugins raise, and :mod:`gateway.testing`).

Hooks
    :data:`hookimpl` marks hook implementations; the specs are in :mod:`gateway.hookspecs`.

Identity providers
    :class:`IdentityProvider` is what ``fedgate_create_identity_provider`` returns; it turns a token
    into an :class:`Identity`, built with a :class:`ProviderContext`. Its settings model subclasses
    :class:`ProviderSettings`; secrets in it are :class:`SecretRef`. :data:`ProviderKind` is open
    (:data:`OIDC`, :data:`SAML` or the plugin's own). Optional abilities are capabilities, tested
    with ``isinstance``: :class:`SAMLServiceProviderCapable` (fedgate as the SP of the provider's
    IdP, returning a :class:`SAMLServiceProvider`). :func:`oidc_provider_arn` and
    :func:`saml_provider_arn` spell provider ARNs; :func:`check_https_url` and
    :func:`is_loopback_host` check URLs in settings, :data:`CAFile` types a CA bundle setting and
    :func:`client_tls` makes the TLS context of a provider's outgoing requests from it.
    :func:`bounded_loads` parses JSON a caller sent with its nesting bounded.

State and routes
    :class:`Store` is the shared store's protocol (documents, rate limits); :class:`ReplayGuard`
    spends one-time items in it at most once, across store resets (``ProviderContext.replay``,
    the app key ``REPLAY``). A plugin's routes and cleanup contexts (``fedgate_add_routes``) read
    the application's services through the app keys below; :data:`CLEANUP_APP_KEYS` are those set
    before any plugin's cleanup context runs. :data:`REQUEST_ID` is the request's id (``x-amzn-RequestId``).

Command line
    ``fedgate_add_cli_commands`` subcommands take ``-c`` with :func:`add_config_argument` and read
    the file with :func:`load_config`.

Libraries
    :func:`require` imports a library a configured feature needs, at start-up (where the hook that
    builds the feature runs), so that a plugin loaded but not configured costs no memory, and a
    missing library is one :class:`~gateway.errors.ConfigError` line rather than a traceback.

Configuration checks
    ``fedgate_check_config`` returns :class:`Finding` values for ``fedgate check-config``;
    :func:`trust_admits` tells whether a role's trust policy admits a token carrying a given value
    of one condition key (a sign-in's audience, say), whatever its other claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.arns import oidc_provider_arn, saml_provider_arn
from gateway.capabilities import (
    IamListed,
    IamProviderView,
    Probeable,
    SAMLLogoutMessage,
    SAMLServiceProvider,
    SAMLServiceProviderCapable,
    SAMLSignIn,
    SAMLSubject,
)
from gateway.cliopts import add_config_argument
from gateway.config import GatewayConfig, ProviderSettings
from gateway.configpath import ConfigPath
from gateway.findings import Finding
from gateway.hookspecs import hookimpl
from gateway.identity import OIDC, SAML, Identity, IdentityProvider, ProviderContext, ProviderKind
from gateway.jsonlimits import loads as bounded_loads
from gateway.keys import (
    AUDITOR,
    CATALOG,
    CONFIG,
    CREDENTIALS,
    PLUGINS,
    PROVIDERS,
    REPLAY,
    REQUEST_ID,
    SIGNING_KEYS,
    STORE,
    STS,
    TRUSTED_PROXIES,
)
from gateway.net import CAFile, check_https_url, client_tls, is_loopback_host
from gateway.requires import require
from gateway.secretref import SecretRef
from gateway.store.base import Store
from gateway.store.replay import ReplayGuard

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "AUDITOR",
    "CATALOG",
    "CLEANUP_APP_KEYS",
    "CONFIG",
    "CREDENTIALS",
    "OIDC",
    "PLUGINS",
    "PROVIDERS",
    "REPLAY",
    "REQUEST_ID",
    "SAML",
    "SIGNING_KEYS",
    "STORE",
    "STS",
    "TRUSTED_PROXIES",
    "CAFile",
    "ConfigPath",
    "Finding",
    "GatewayConfig",
    "IamListed",
    "IamProviderView",
    "Identity",
    "IdentityProvider",
    "Probeable",
    "ProviderContext",
    "ProviderKind",
    "ProviderSettings",
    "ReplayGuard",
    "SAMLLogoutMessage",
    "SAMLServiceProvider",
    "SAMLServiceProviderCapable",
    "SAMLSignIn",
    "SAMLSubject",
    "SecretRef",
    "Store",
    "add_config_argument",
    "bounded_loads",
    "check_https_url",
    "client_tls",
    "hookimpl",
    "is_loopback_host",
    "load_config",
    "oidc_provider_arn",
    "proxy_identity",
    "require",
    "saml_provider_arn",
    "trust_admits",
]

#: The app keys a plugin's cleanup context may read: set when the application is created
#: (CONFIG, PLUGINS, TRUSTED_PROXIES) or by the core's cleanup contexts, which run before any
#: plugin's. ``gateway.keys.PROXY`` is left out: it exists only when upstreams are configured.
CLEANUP_APP_KEYS: tuple[web.AppKey[Any], ...] = (
    CONFIG,
    PLUGINS,
    TRUSTED_PROXIES,
    STORE,
    REPLAY,
    CREDENTIALS,
    SIGNING_KEYS,
    PROVIDERS,
    CATALOG,
    AUDITOR,
    STS,
)


def trust_admits(
    trust_policy: Mapping[str, Any], *, role_arn: str, provider_arn: str, action: str, key: str, value: str
) -> bool:
    """Whether ``trust_policy`` lets a token of ``provider_arn`` whose condition key ``key`` has
    ``value`` use ``action`` (``sts:AssumeRoleWithSAML``, ...), whatever its other claims."""
    from gateway.iam.lint import admits  # the policy engine: only when a check runs

    return admits(
        trust_policy, role_arn=role_arn, provider_arn=provider_arn, action=action, key=key, value=value
    )


def proxy_identity(request: web.Request, header: str = "X-Fedgate-Identity") -> Mapping[str, Any] | None:
    """For an upstream served in the gateway's own process: the claims of the identity token the
    proxy attached to ``request`` (an ``auth: identity`` upstream), or ``None`` when the request did
    not come through the proxy (no token, or one this process did not sign, or one expired)."""
    import time

    from gateway.keys import PROXY

    runtime = request.app.get(PROXY)
    token = request.headers.get(header)
    if runtime is None or runtime.signer is None or token is None:
        return None
    return runtime.signer.verify(token, now=time.time())


def load_config(path: str | Path) -> GatewayConfig:
    """Load and validate a configuration file with the plugins it does not disable."""
    from gateway.startup import load_config as load  # the whole gateway: only when a command runs

    return load(path)
