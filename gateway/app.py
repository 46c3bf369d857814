"""The application factory: :func:`create_app` builds a ready-to-run ``aiohttp`` application.

Resources are cleanup contexts, set up in order and unwound in reverse: the store (and the replay
guard over it), the key ring and the IAM database (migrated, revocations loaded, watched for
changes), the credential service, the identity providers, the STS service and audit sink, then the
reverse proxy (its upstream table and one pooled client session per upstream). Nothing happens at
import time; the plugin manager is built here (or passed in by tests).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from gateway import keys
from gateway.audit import Auditor, JsonLinesSink, StoreSink
from gateway.config import GatewayConfig
from gateway.credentials import CredentialService, KeyRing
from gateway.db import start_database
from gateway.errors import ConfigError, ServiceError
from gateway.identity import IdentityProvider, ProviderContext
from gateway.plugin_host import PluginHost
from gateway.proxy import handler as proxy
from gateway.proxy.authorize import ProxyAuthorizer
from gateway.proxy.context import TrustedProxies
from gateway.proxy.identity import IdentitySigner
from gateway.proxy.upstream import UpstreamTable
from gateway.sigv4 import SigningKeyCache
from gateway.store import ReplayGuard, Store, open_store
from gateway.sts.service import StsService
from gateway.web import health, iam, query, sts
from gateway.web.middleware import request_context

__all__ = ["create_app"]

log = logging.getLogger(__name__)

# Large enough for a 100,000-character SAML assertion, small enough to refuse floods early.
MAX_REQUEST_BYTES = 256 * 1024


def create_app(
    config: GatewayConfig,
    *,
    host: PluginHost | None = None,
    clock: Callable[[], float] = time.time,
    store: Store | None = None,
) -> web.Application:
    """Build the gateway application for ``config``.

    ``host`` defaults to a :class:`PluginHost` loading the ``fedgate`` entry points minus
    ``config.disabled_plugins``. ``store`` replaces the store ``config.store`` describes (a custom
    backend, or a test's); the application closes it at shutdown like its own.
    """
    host = host or PluginHost(disabled=config.disabled_plugins)
    # The proxy streams bodies; client_max_size bounds only what the STS endpoint reads whole.
    app = web.Application(
        middlewares=[request_context, proxy.proxy_dispatch], client_max_size=MAX_REQUEST_BYTES
    )
    app[keys.CONFIG] = config
    app[keys.PLUGINS] = host
    # Whose X-Forwarded-For is believed for aws:SourceIp, on every endpoint alike.
    app[keys.TRUSTED_PROXIES] = TrustedProxies(config.proxy.trusted_proxies)
    app.cleanup_ctx.append(_make_store_ctx(store))
    app.cleanup_ctx.append(_database_ctx)
    app.cleanup_ctx.append(_credentials_ctx)
    app.cleanup_ctx.append(_providers_ctx)
    app.cleanup_ctx.append(_make_sts_ctx(clock))
    app.cleanup_ctx.append(_make_proxy_ctx(clock))
    app.add_routes(health.routes)
    app[keys.QUERY_ACTIONS] = {**sts.ACTIONS, **iam.ACTIONS}
    app.add_routes(query.routes)
    app.add_routes(proxy.routes)
    host.add_routes(app, config)
    app.router.add_route("*", "/{tail:.*}", proxy.not_found)
    return app


def _make_store_ctx(given: Store | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
        store = given if given is not None else open_store(app[keys.CONFIG].store)
        app[keys.STORE] = store
        replay = app[keys.REPLAY] = ReplayGuard(store)
        try:
            # Learn (or start) the store's generation now, so items issued from the first request
            # on are issued inside it. A store that is down is no reason not to start: /readyz
            # says so, and the first spend asks again.
            await replay.current()
        except ServiceError as exc:
            log.warning("the store is not reachable at start-up", extra={"store_error": exc.code})
        try:
            yield
        finally:
            await store.close()

    return _store_ctx


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    keyring = KeyRing.from_settings(config.keyring)
    app[keys.KEYRING] = keyring
    # A random per-process key must never re-seal what a configured key sealed: it dies with us.
    runtime = await start_database(
        config.database, account_id=config.account_id, keyring=keyring, reseal=config.keyring is not None
    )
    app[keys.DATABASE] = runtime
    try:
        yield
    finally:
        await runtime.close()


async def _credentials_ctx(app: web.Application) -> AsyncIterator[None]:
    app[keys.CREDENTIALS] = CredentialService(app[keys.KEYRING], app[keys.DATABASE].revocations)
    app[keys.SIGNING_KEYS] = SigningKeyCache()
    yield


async def _providers_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    host = app[keys.PLUGINS]
    context = ProviderContext(
        account_id=config.account_id,
        store=app[keys.STORE],
        leeway=float(config.clock_skew_seconds),
        replay=app[keys.REPLAY],
    )
    providers: list[IdentityProvider] = []
    app[keys.PROVIDERS] = providers
    try:
        for settings in config.providers:
            provider = host.create_identity_provider(settings, context)
            await provider.start()
            providers.append(provider)
        yield
    finally:
        for provider in reversed(providers):
            await provider.close()


def _make_sts_ctx(clock: Callable[[], float]) -> Callable[[web.Application], AsyncIterator[None]]:
    async def _sts_ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[keys.CONFIG]
        host = app[keys.PLUGINS]
        sink: JsonLinesSink | StoreSink
        if config.audit.sink == "store":
            sink = StoreSink(app[keys.STORE], config.audit)
            sink.start()
        else:
            sink = JsonLinesSink(config.audit)
        if config.audit.sink != "none":
            host.register(sink)
            app[keys.AUDIT_SINK] = sink
        app[keys.AUDITOR] = Auditor(host, account_id=config.account_id, region=config.region)
        providers = app[keys.PROVIDERS]
        app[keys.STS] = StsService(config, providers, app[keys.CREDENTIALS], clock=clock)
        try:
            yield
        finally:
            host.unregister(sink)
            if isinstance(sink, StoreSink):
                await sink.close()
            else:
                sink.close()

    return _sts_ctx


def _make_proxy_ctx(clock: Callable[[], float]) -> Callable[[web.Application], AsyncIterator[None]]:
    async def _proxy_ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[keys.CONFIG]
        if not config.upstreams:
            yield
            return
        settings = config.proxy
        signer: IdentitySigner | None = None
        if any(u.auth == "identity" for u in config.upstreams):
            ttl = settings.identity_ttl_seconds
            if settings.identity_signing_key is not None:
                try:
                    pem = settings.identity_signing_key.resolve().get_secret_value()
                except ValueError as exc:
                    raise ConfigError(f"proxy.identity_signing_key: {exc}") from None
                signer = IdentitySigner.from_pem(pem, issuer=settings.identity_issuer, ttl=ttl)
            else:
                signer = IdentitySigner.generate(issuer=settings.identity_issuer, ttl=ttl)
        runtime = proxy.ProxyRuntime(
            table=UpstreamTable(config.upstreams, region=config.region, account=config.account_id),
            authorizer=ProxyAuthorizer(config, app[keys.CREDENTIALS], app[keys.SIGNING_KEYS]),
            trusted=app[keys.TRUSTED_PROXIES],
            clock=clock,
            signer=signer,
        )
        try:
            for upstream in runtime.table.upstreams:
                u = upstream.settings
                runtime.clients[upstream.name] = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=u.max_connections, limit_per_host=u.max_connections),
                    timeout=aiohttp.ClientTimeout(
                        total=None, connect=u.connect_timeout, sock_read=u.read_timeout
                    ),
                    auto_decompress=False,
                    cookie_jar=aiohttp.DummyCookieJar(),
                )
                runtime.timeouts[upstream.name] = aiohttp.ClientTimeout(
                    total=u.total_timeout, connect=u.connect_timeout, sock_read=u.read_timeout
                )
            app[keys.PROXY] = runtime
            yield
        finally:
            for session in runtime.clients.values():
                await session.close()

    return _proxy_ctx
