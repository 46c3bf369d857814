"""``/healthz`` (the process is up) and ``/readyz`` (it can serve: store reachable, providers built)."""

from __future__ import annotations

from aiohttp import web

from gateway import keys

__all__ = ["routes"]

routes = web.RouteTableDef()
STORE_OK = "ok"


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: answers as long as the event loop runs."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Readiness: the store answers and the services are built."""
    app = request.app
    checks = {
        "store": STORE_OK if keys.STORE in app and await app[keys.STORE].ping() else "unavailable",
        "sts": STORE_OK if keys.STS in app else "starting",
    }
    ready = all(v == STORE_OK for v in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503
    )
