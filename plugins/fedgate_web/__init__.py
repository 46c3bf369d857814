"""fedgate's browser and CLI sign-in: SSO pages, a role chooser, credentials, ``fedgate login``.

Registered through the ``fedgate`` entry-point group as ``web``. Enabled when the configuration
has a ``web_login`` section::

    web_login:
      public_url: https://sso.example.com         # origin users reach fedgate at
      cookie_secret: {env: FEDGATE_COOKIE_SECRET} # >= 32 characters; signs cookies and CSRF tokens
      session_lifetime: 28800                     # seconds a sign-in lasts
      credential_duration: 3600                   # seconds credentials last (capped by the role)
      oidc:
        - name: corp                              # /sso/login/corp, redirect URI /sso/callback/corp
          issuer: https://idp.example.com         # an oidc entry of `providers` with this issuer
          client_id: fedgate
          client_secret: {env: FEDGATE_OIDC_SECRET}
          scopes: [openid, profile, email]
      saml:
        - name: okta                              # /sso/saml/okta/{login,acs,done,metadata}
          provider: okta                          # a saml entry of `providers` with this name
          signing_key: {file: /etc/fedgate/sp.key}          # signs AuthnRequests
          signing_certificate: {file: /etc/fedgate/sp.crt}  # published in the SP metadata
          allow_idp_initiated: false              # unsolicited responses (login CSRF risk)

Pages live under ``/sso/``: ``/sso/`` signs in, ``/sso/roles`` chooses a role,
``/sso/credentials`` shows credentials. ``fedgate login`` and ``fedgate credential-process`` use
``/sso/cli/*`` and ``/sso/device*``.

It reads the core's services through the app keys of :mod:`gateway.plugin` and, being the
first-party sign-in, builds on a few core modules beyond the plugin API: STS minting
(:mod:`gateway.sts.service`), the trust decision (:mod:`gateway.iam.trust`), the request adapter
(:mod:`gateway.web.request`) and the audit trail's shapes (:mod:`gateway.audit.events`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping

import aiohttp
from aiohttp import web
from pydantic import BaseModel

from fedgate_web.config import WebLoginSettings
from gateway.errors import ConfigError
from gateway.plugin import (
    AUDITOR,
    CATALOG,
    CONFIG,
    PROVIDERS,
    REPLAY,
    STORE,
    STS,
    Finding,
    GatewayConfig,
    hookimpl,
    oidc_provider_arn,
    saml_provider_arn,
    trust_admits,
)

__all__ = ["SECTION", "WebLoginSettings"]

SECTION = "web_login"


@hookimpl
def fedgate_add_config_sections() -> Mapping[str, type[BaseModel]]:
    """The ``web_login`` section."""
    return {SECTION: WebLoginSettings}


@hookimpl
def fedgate_add_routes(app: web.Application, config: GatewayConfig) -> None:
    """Serve ``/sso/`` when ``web_login`` is configured."""
    settings = config.sections.get(SECTION)
    if not isinstance(settings, WebLoginSettings):
        return
    from fedgate_web.cli_api import cli_routes
    from fedgate_web.routes import routes

    try:
        if len(settings.cookie_secret.resolve().get_secret_value()) < 32:
            raise ConfigError("web_login.cookie_secret: must be at least 32 characters")
    except ValueError as exc:
        raise ConfigError(f"web_login.cookie_secret: {exc}") from None
    app.cleanup_ctx.append(_web_ctx)
    app.add_routes(routes)
    app.add_routes(cli_routes)
    from fedgate_web.saml_sp import add_saml_routes

    add_saml_routes(app, settings)


@hookimpl
def fedgate_check_config(config: GatewayConfig) -> Iterator[Finding]:
    """An error for each sign-in whose audience no role's trust policy admits: its chooser would
    always say "No roles available". SAML's audience is the ACS URL (the assertion's Recipient, as
    on AWS); OIDC's is the client id."""
    settings = config.sections.get(SECTION)
    if not isinstance(settings, WebLoginSettings):
        return
    signs_in = [
        (
            f"{SECTION}.saml[{i}]",
            saml_provider_arn(config.account_id, option.provider),
            "sts:AssumeRoleWithSAML",
            "saml:aud",
            f"{settings.public_url}/sso/saml/{option.name}/acs",
        )
        for i, option in enumerate(settings.saml)
    ]
    for i, login in enumerate(settings.oidc):
        provider_id = login.issuer.rstrip("/").split("://", 1)[-1]
        signs_in.append(
            (
                f"{SECTION}.oidc[{i}]",
                oidc_provider_arn(config.account_id, provider_id),
                "sts:AssumeRoleWithWebIdentity",
                f"{provider_id}:aud",
                login.client_id,
            )
        )
    for where, provider_arn, action, key, value in signs_in:
        if not any(
            trust_admits(
                role.trust_policy,
                role_arn=config.role_arn(role),
                provider_arn=provider_arn,
                action=action,
                key=key,
                value=value,
            )
            for role in config.roles
        ):
            yield Finding(
                "error",
                "SIGN_IN_OFFERS_NO_ROLE",
                where,
                f"no role's trust policy lets {provider_arn} use {action} with {key} = {value}, so "
                f"sign-in here can offer no role; allow that {key} in a role's trust policy",
            )


async def _web_ctx(app: web.Application) -> AsyncIterator[None]:
    from fedgate_web.oidc_login import OIDCLogin
    from fedgate_web.runtime import WEB, WebLogin
    from fedgate_web.saml_sp import build_saml_logins
    from fedgate_web.sessions import Signer, WebSessions

    config = app[CONFIG]
    settings = config.sections[SECTION]
    assert isinstance(settings, WebLoginSettings)
    sts = app[STS]
    store = app[STORE]
    replay = app[REPLAY]
    signer = Signer(settings.cookie_secret.resolve().get_secret_value())
    providers = app[PROVIDERS]
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10), cookie_jar=aiohttp.DummyCookieJar())
    try:
        oidc = {}
        for option in settings.oidc:
            provider = next(
                (
                    p
                    for p in providers
                    if p.kind == "oidc" and p.issuer.rstrip("/") == option.issuer.rstrip("/")
                ),
                None,
            )
            if provider is None:
                raise ConfigError(
                    f"web_login.oidc {option.name}: no oidc provider has issuer {option.issuer}"
                )
            oidc[option.name] = OIDCLogin(
                option,
                provider,
                redirect_uri=f"{settings.public_url}/sso/callback/{option.name}",
                store=store,
                replay=replay,
                http=http,
                # The oidc provider's own CA bundle (its ca_file), if it has one.
                tls=getattr(provider, "tls", None),
                clock=sts.now,
            )
        app[WEB] = WebLogin(
            settings,
            config,
            store=store,
            replay=replay,
            sessions=WebSessions(
                store, signer, lifetime=settings.session_lifetime, clock=sts.now, replay=replay
            ),
            signer=signer,
            sts=sts,
            catalog=app[CATALOG],
            auditor=app[AUDITOR],
            oidc=oidc,
            saml=build_saml_logins(settings, providers, store, replay, sts.now),
            clock=sts.now,
        )
        yield
    finally:
        await http.close()
