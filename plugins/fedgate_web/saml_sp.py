"""The SAML service-provider side of browser sign-in (not built yet)."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from fedgate_web.config import WebLoginSettings
from fedgate_web.runtime import SamlLogin
from fedgate_web.sessions import Signer
from gateway.errors import ConfigError
from gateway.identity import IdentityProvider
from gateway.store.base import Store

__all__ = ["add_saml_routes", "build_saml_logins"]


def add_saml_routes(app: web.Application, settings: WebLoginSettings) -> None:
    """Add the SAML SP routes when SAML sign-in is configured."""
    if settings.saml:
        raise ConfigError("web_login.saml: SAML browser sign-in is not available in this version")


def build_saml_logins(
    settings: WebLoginSettings, providers: Sequence[IdentityProvider], store: Store, signer: Signer
) -> dict[str, SamlLogin]:
    """The SAML sign-in options."""
    return {}
