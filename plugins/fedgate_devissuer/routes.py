"""HTTP routes of the development issuer."""

from __future__ import annotations

from aiohttp import web

from fedgate_devissuer.issuer import DevIssuer
from fedgate_devissuer.signin import SignIn

__all__ = ["add_issuer_routes"]


def add_issuer_routes(app: web.Application, issuer: DevIssuer) -> None:
    """Serve discovery, the JWKS and the sign-in (authorization and token endpoints) under the
    issuer's path."""
    base = issuer.settings.path

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response(issuer.discovery())

    async def jwks(request: web.Request) -> web.Response:
        return web.json_response(issuer.jwks())

    app.router.add_get(f"{base}/.well-known/openid-configuration", discovery)
    app.router.add_get(f"{base}/jwks.json", jwks)
    signin = SignIn(issuer)
    app.router.add_route("GET", f"{base}/authorize", signin.authorize)
    app.router.add_route("POST", f"{base}/authorize", signin.authorize)
    app.router.add_post(f"{base}/token", signin.token)
