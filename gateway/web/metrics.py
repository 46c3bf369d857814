"""The aiohttp side of the metrics: ``GET /metrics``, who may read it, and the seams only aiohttp has.

* :func:`metrics_ctx` (the first service context) builds the application's
  :class:`~gateway.metrics.Metrics` when ``metrics.enabled``, and samples once a second what is
  read rather than reported (catalog and database revisions, propagation lag, audit sink drops).
* ``GET /metrics`` answers the Prometheus text format to a direct peer in ``metrics.allow_from``
  (loopback by default) that relays for nobody (no ``Forwarded`` or ``X-Forwarded-For``), or to a
  bearer of ``metrics.token``; anyone else gets AccessDenied. The token is compared in constant
  time and re-read at each scrape, so a rotated token file takes effect without a restart.
* Upstream latency to the response headers, status codes and connection failures are counted by
  the proxy itself around its client call (an aiohttp ``TraceConfig`` cost each proxied request
  more than the counting does).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import time
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from gateway import keys
from gateway.audit import StoreSink
from gateway.errors import AccessDenied, ConfigError, NotFound
from gateway.metrics import CONTENT_TYPE, Metrics

__all__ = ["SAMPLE_INTERVAL", "metrics_ctx", "routes", "sample"]

routes = web.RouteTableDef()
#: Seconds between two samples of the state the metrics read (revisions, lag, audit drops).
SAMPLE_INTERVAL: Final = 1.0
_RELAYED: Final = ("Forwarded", "X-Forwarded-For")


async def metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the application's metrics (``metrics.enabled``) and sample them while it runs."""
    settings = app[keys.CONFIG].metrics
    if not settings.enabled:
        yield
        return
    if settings.token is not None:
        try:
            token = settings.token.resolve().get_secret_value()
        except ValueError as exc:
            raise ConfigError(f"metrics.token: {exc}") from None
        if len(token) < 16:
            raise ConfigError("metrics.token: must be at least 16 characters")
    metrics = app[keys.METRICS] = Metrics()
    task = asyncio.get_running_loop().create_task(_sample_forever(app, metrics), name="fedgate-metrics")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        metrics.flush()  # the last requests' tallies, into this worker's mapped file


def sample(app: web.Application, metrics: Metrics) -> None:
    """Copy what the metrics read from the running services, now."""
    catalog = app.get(keys.CATALOG)
    database = app.get(keys.DATABASE)
    sink = app.get(keys.AUDIT_SINK)
    checked = database.watcher.checked_at if database is not None else None
    stats = sink.stats if isinstance(sink, StoreSink) else None
    metrics.sample(
        catalog_revision=catalog.snapshot.revision if catalog is not None else 0,
        database_revision=database.watcher.revision if database is not None else None,
        lag_seconds=time.monotonic() - checked if checked is not None else None,
        audit_spilled=stats.spilled if stats is not None else 0,
        audit_dropped=stats.dropped if stats is not None else 0,
    )


async def _sample_forever(app: web.Application, metrics: Metrics) -> None:
    while True:
        sample(app, metrics)
        await asyncio.sleep(SAMPLE_INTERVAL)


def _admitted(request: web.Request) -> bool:
    settings = request.app[keys.CONFIG].metrics
    if settings.token is not None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and given:
            try:
                expected = settings.token.resolve().get_secret_value()
            except ValueError:
                return False  # an unreadable token file admits nobody by token
            return hmac.compare_digest(given.encode(), expected.encode())
    if any(name in request.headers for name in _RELAYED):
        return False
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return False  # a Unix socket peer: not an address in any network
    return any(address in ipaddress.ip_network(net, strict=False) for net in settings.allow_from)


@routes.get("/metrics")
async def metrics_endpoint(request: web.Request) -> web.Response:
    """Every worker's series in the Prometheus text format, to those ``metrics`` admits."""
    metrics = request.app.get(keys.METRICS)
    if metrics is None:
        raise NotFound("No API answers at this path.")
    if not _admitted(request):
        raise AccessDenied("Metrics are readable from the allowed networks or with the metrics token.")
    sample(request.app, metrics)
    body = await asyncio.to_thread(metrics.exposition) if metrics.directory else metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})
