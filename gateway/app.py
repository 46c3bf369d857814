"""The application factory: :func:`create_app` builds a ready-to-run ``aiohttp`` application.

Resources are cleanup contexts, set up in order and unwound in reverse: the store, the credential
service, the identity providers, then the STS service and audit sink. Nothing happens at import
time; the plugin manager is built here (or passed in by tests).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway import keys
from gateway.audit import Auditor, JsonLinesSink
from gateway.config import GatewayConfig
from gateway.credentials import CredentialService, KeyRing
from gateway.identity import IdentityProvider, ProviderContext
from gateway.plugin_host import PluginHost
from gateway.sigv4 import SigningKeyCache
from gateway.store import open_store
from gateway.sts.service import StsService
from gateway.web import health, sts
from gateway.web.middleware import request_context

__all__ = ["create_app"]

# Large enough for a 100,000-character SAML assertion, small enough to refuse floods early.
MAX_REQUEST_BYTES = 256 * 1024


def create_app(
    config: GatewayConfig,
    *,
    host: PluginHost | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """Build the gateway application for ``config``.

    ``host`` defaults to a :class:`PluginHost` loading the ``fedgate`` entry points minus
    ``config.disabled_plugins``.
    """
    host = host or PluginHost(disabled=config.disabled_plugins)
    app = web.Application(middlewares=[request_context], client_max_size=MAX_REQUEST_BYTES)
    app[keys.CONFIG] = config
    app[keys.PLUGINS] = host
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_credentials_ctx)
    app.cleanup_ctx.append(_providers_ctx)
    app.cleanup_ctx.append(_make_sts_ctx(clock))
    app.add_routes(health.routes)
    app.add_routes(sts.routes)
    host.add_routes(app, config)
    return app


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = open_store(app[keys.CONFIG].store)
    app[keys.STORE] = store
    try:
        yield
    finally:
        await store.close()


async def _credentials_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    app[keys.CREDENTIALS] = CredentialService(KeyRing.from_settings(config.keyring), app[keys.STORE])
    app[keys.SIGNING_KEYS] = SigningKeyCache()
    yield


async def _providers_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    host = app[keys.PLUGINS]
    context = ProviderContext(
        account_id=config.account_id, store=app[keys.STORE], leeway=float(config.clock_skew_seconds)
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
        sink = JsonLinesSink(config.audit)
        host.register(sink)
        app[keys.AUDITOR] = Auditor(host, account_id=config.account_id, region=config.region)
        providers = app[keys.PROVIDERS]
        app[keys.STS] = StsService(config, providers, app[keys.CREDENTIALS], clock=clock)
        try:
            yield
        finally:
            host.manager.unregister(sink)
            sink.close()

    return _sts_ctx
