"""fedgate's development OIDC issuer: a real issuer for demos and local testing, off by default.

It is enabled only when the configuration has a ``dev_issuer`` section::

    dev_issuer:
      issuer: http://127.0.0.1:8080/dev-issuer   # loopback only; the path is where it is served
      key_file: .fedgate/dev-issuer-key.pem       # ES256 key, created (mode 0600) on first use
      audience: demo                              # default "aud" of minted tokens
      token_lifetime: 3600                        # default lifetime of minted tokens, seconds

The gateway then serves ``{issuer}/.well-known/openid-configuration``, ``{issuer}/jwks.json`` and a
sign-in (``{issuer}/authorize``, a form; ``{issuer}/token``; code flow with PKCE, see
:mod:`fedgate_devissuer.signin`), and ``fedgate dev-token --sub alice`` mints a token signed with
the key file. Declare an OIDC
provider with the same issuer to accept those tokens (``config/demo.yaml`` does). Never enable it in
production: anyone who can read the key file can mint identities.

A ``dev_upstream`` section adds the demo upstream (:mod:`fedgate_devissuer.upstream`): an
in-memory S3-style object API served by fedgate itself, for ``config/demo.yaml``'s proxy journey.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel

from fedgate_devissuer.config import DevIssuerSettings
from fedgate_devissuer.upstream import DevUpstreamSettings
from gateway.plugin import GatewayConfig, hookimpl, require

if TYPE_CHECKING:  # joserfc is imported only when a dev_issuer section is configured
    from fedgate_devissuer.issuer import DevIssuer

__all__ = ["DevIssuer", "DevIssuerSettings", "DevUpstreamSettings"]

SECTION = "dev_issuer"
UPSTREAM_SECTION = "dev_upstream"


@hookimpl
def fedgate_add_config_sections() -> Mapping[str, type[BaseModel]]:
    """The ``dev_issuer`` and ``dev_upstream`` sections."""
    return {SECTION: DevIssuerSettings, UPSTREAM_SECTION: DevUpstreamSettings}


@hookimpl
def fedgate_add_routes(app: web.Application, config: GatewayConfig) -> None:
    """Serve discovery and JWKS under the issuer's path, and the demo object API, when configured."""
    settings = config.sections.get(SECTION)
    if isinstance(settings, DevIssuerSettings):
        require("joserfc", feature="dev_issuer", package="joserfc")
        from fedgate_devissuer.issuer import DevIssuer
        from fedgate_devissuer.routes import add_issuer_routes

        add_issuer_routes(app, DevIssuer(settings))
    upstream = config.sections.get(UPSTREAM_SECTION)
    if isinstance(upstream, DevUpstreamSettings):
        from fedgate_devissuer.upstream import add_upstream_routes

        add_upstream_routes(app, upstream)


@hookimpl
def fedgate_add_cli_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """``fedgate dev-token``: mint a token from the development issuer."""
    from fedgate_devissuer.command import add_command

    add_command(subparsers)


def __getattr__(name: str) -> object:
    if name == "DevIssuer":
        from fedgate_devissuer.issuer import DevIssuer

        return DevIssuer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
