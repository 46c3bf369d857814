"""Every typed key for state shared through the aiohttp application and requests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from gateway.audit import Auditor, JsonLinesSink, StoreSink
    from gateway.config import GatewayConfig
    from gateway.context import TrustedProxies
    from gateway.credentials import CredentialService, KeyRing
    from gateway.db import DatabaseRuntime
    from gateway.dialects import ErrorDialect
    from gateway.iam.accesskeys import AccessKeys
    from gateway.iam.catalog import Catalog
    from gateway.iam.denial import AuthorizationMessages
    from gateway.iam.mfa import MfaCodes
    from gateway.iam.sync import CatalogFeed
    from gateway.identity import IdentityProvider
    from gateway.metrics import Metrics
    from gateway.plugin_host import PluginHost
    from gateway.proxy.runtime import ProxyRuntime
    from gateway.sigv4 import SigningKeyCache
    from gateway.store.base import Store
    from gateway.store.replay import ReplayGuard
    from gateway.sts.service import StsService
    from gateway.tracing import Tracing
    from gateway.web.actions import QueryActions

__all__ = [
    "ACCESS_KEYS",
    "AUDITOR",
    "AUDIT_SINK",
    "AUTHORIZATION_MESSAGES",
    "CATALOG",
    "CATALOG_FEED",
    "CONFIG",
    "CREDENTIALS",
    "DATABASE",
    "ERROR_DIALECT",
    "FRONT_DOOR",
    "KEYRING",
    "METRICS",
    "MFA",
    "PLUGINS",
    "PROVIDERS",
    "PROXY",
    "QUERY_ACTIONS",
    "REPLAY",
    "REQUEST_ID",
    "SIGNING_KEYS",
    "STORE",
    "STS",
    "TRACING",
    "TRUSTED_PROXIES",
    "RequestHandler",
]

CONFIG: web.AppKey[GatewayConfig] = web.AppKey("config")
PLUGINS: web.AppKey[PluginHost] = web.AppKey("plugins")
STORE: web.AppKey[Store] = web.AppKey("store")
#: The one-time-use guard over STORE, shared by everything that spends replay-protected items.
REPLAY: web.AppKey[ReplayGuard] = web.AppKey("replay")
KEYRING: web.AppKey[KeyRing] = web.AppKey("keyring")
#: The IAM database, its revision watcher and this replica's revocation state.
DATABASE: web.AppKey[DatabaseRuntime] = web.AppKey("database")
CREDENTIALS: web.AppKey[CredentialService] = web.AppKey("credentials")
#: Seals and opens the explanations at the end of AccessDenied answers (DecodeAuthorizationMessage).
AUTHORIZATION_MESSAGES: web.AppKey[AuthorizationMessages] = web.AppKey("authorization_messages")
PROVIDERS: web.AppKey[list[IdentityProvider]] = web.AppKey("providers")
#: The IAM catalog (YAML plus database), compiled; read ``.snapshot`` once per request.
CATALOG: web.AppKey[Catalog] = web.AppKey("catalog")
#: What builds the catalog's snapshots from the YAML and the IAM database (a reload hands it new YAML).
CATALOG_FEED: web.AppKey[CatalogFeed] = web.AppKey("catalog_feed")
#: Long-term access keys (AKIA...) resolved through CATALOG, their secrets opened with KEYRING.
ACCESS_KEYS: web.AppKey[AccessKeys] = web.AppKey("access_keys")
STS: web.AppKey[StsService] = web.AppKey("sts")
#: Where MFA codes are checked (once each across replicas, wrong ones throttled), over STORE.
MFA: web.AppKey[MfaCodes] = web.AppKey("mfa")
AUDITOR: web.AppKey[Auditor] = web.AppKey("auditor")
#: The built-in sink in use (its ``stats`` when it is the store sink), absent when ``sink: none``.
AUDIT_SINK: web.AppKey[JsonLinesSink | StoreSink] = web.AppKey("audit_sink")
QUERY_ACTIONS: web.AppKey[QueryActions] = web.AppKey("query_actions")
SIGNING_KEYS: web.AppKey[SigningKeyCache] = web.AppKey("signing_keys")
TRUSTED_PROXIES: web.AppKey[TrustedProxies] = web.AppKey("trusted_proxies")
PROXY: web.AppKey[ProxyRuntime] = web.AppKey("proxy")
#: What the server calls with a started application and its own handler for the handler it serves
#: (:func:`gateway.proxy.handler.front_door`: proxied requests go straight to the proxy).
RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
FRONT_DOOR: web.AppKey[Callable[[web.Application, RequestHandler], RequestHandler]] = web.AppKey("front_door")
#: The application's Prometheus series (absent when ``metrics.enabled`` is false).
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
#: The request tracer (absent unless ``tracing.enabled``).
TRACING: web.AppKey[Tracing] = web.AppKey("tracing")

# Per request.
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
#: Which dialect errors are rendered in (STS XML when unset); the proxy sets its upstream's.
ERROR_DIALECT: web.RequestKey[ErrorDialect] = web.RequestKey("error_dialect")
