"""``/healthz`` (the process is up) and ``/readyz`` (it can serve: store reachable, revocation
state current, providers built).

``/readyz`` answers within :data:`READY_BOUND` seconds whatever the store does: each store operation
has its own short deadline and an open circuit breaker fails at once, and the whole check is bounded
on top. It also (re)establishes the store's generation, so after a reset the new generation starts
as soon as a probe runs rather than at the next sign-in.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway import keys
from gateway.errors import ServiceError

__all__ = ["READY_BOUND", "routes"]

routes = web.RouteTableDef()
STORE_OK = "ok"
#: The longest ``/readyz`` takes to answer, in seconds.
READY_BOUND = 1.0


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: answers as long as the event loop runs."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Readiness: the store answers (and has a generation), the revocation state is current and the
    services are built."""
    app = request.app
    checks = {
        "store": STORE_OK if await _store_ready(app) else "unavailable",
        "database": STORE_OK if keys.DATABASE in app and app[keys.DATABASE].revocations.current else "stale",
        "sts": STORE_OK if keys.STS in app else "starting",
    }
    ready = all(v == STORE_OK for v in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503
    )


async def _store_ready(app: web.Application) -> bool:
    if keys.STORE not in app or keys.REPLAY not in app:
        return False
    try:
        async with asyncio.timeout(READY_BOUND):
            if not await app[keys.STORE].ping():
                return False
            await app[keys.REPLAY].current()
    except (TimeoutError, ServiceError):
        return False
    return True
