"""The application factory: :func:`create_app` builds a ready-to-run ``aiohttp`` application.

It assembles the middlewares, the core routes, the plugins' routes and the catch-all, and installs
the services as cleanup contexts (built in order and unwound in reverse; see
:mod:`gateway.startup`). Nothing happens at import time; the plugin manager is built here (or
passed in by ``fedgate serve`` and tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from gateway import keys
from gateway.config import GatewayConfig
from gateway.context import TrustedProxies
from gateway.plugin_host import PluginHost
from gateway.proxy import handler as proxy
from gateway.startup import service_contexts
from gateway.store import Store
from gateway.web import health, iam, metrics, query, sts
from gateway.web.middleware import request_context

__all__ = ["create_app"]

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
    app[keys.FRONT_DOOR] = proxy.front_door  # how fedgate's server reaches the proxy
    # Whose X-Forwarded-For is believed for aws:SourceIp, on every endpoint alike.
    app[keys.TRUSTED_PROXIES] = TrustedProxies(config.proxy.trusted_proxies)
    app.cleanup_ctx.extend(service_contexts(clock, store=store))
    app.add_routes(health.routes)
    app.add_routes(metrics.routes)
    app[keys.QUERY_ACTIONS] = {**sts.ACTIONS, **iam.ACTIONS}
    app.add_routes(query.routes)
    app.add_routes(proxy.routes)
    host.add_routes(app, config)
    app.router.add_route("*", "/{tail:.*}", proxy.not_found)
    return app
