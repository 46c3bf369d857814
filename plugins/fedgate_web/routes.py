"""The browser pages under ``/sso/``: sign-in, role chooser, credentials, renew, sign-out.

Handlers are thin: sessions, minting and sign-in protocols live in their own modules. Every page
is served with ``Cache-Control: no-store`` and a strict Content-Security-Policy; every POST needs
a signed-in session and a one-time CSRF token bound to it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from fedgate_web import pages
from fedgate_web.cli_api import complete_request, pending_request
from fedgate_web.errors import LoginError
from fedgate_web.render import html_response, page, signed_in_post
from fedgate_web.roles import by_account
from fedgate_web.runtime import WEB, safe_next
from gateway.errors import ServiceError

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/sso/static/style.css")
async def stylesheet(request: web.Request) -> web.StreamResponse:
    """The stylesheet (cacheable: it holds nothing personal)."""
    return web.Response(
        text=pages.STYLESHEET, content_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )


@routes.get("/sso/")
@page
async def index(request: web.Request) -> web.StreamResponse:
    """The sign-in page, or the role chooser when already signed in."""
    web_login = request.app[WEB]
    next_path = safe_next(request.query.get("next"))
    if await web_login.current(request) is not None:
        raise web.HTTPSeeOther(next_path)
    return html_response(pages.login_page(web_login.options(next_path)))


@routes.get("/sso/login/{name}")
@page
async def oidc_login(request: web.Request) -> web.StreamResponse:
    """Start an OIDC sign-in: redirect to the IdP with state, nonce and a PKCE challenge."""
    web_login = request.app[WEB]
    option = web_login.oidc.get(request.match_info["name"])
    if option is None:
        raise web.HTTPNotFound()
    pending = await option.begin(safe_next(request.query.get("next")))
    response = web.HTTPSeeOther(pending.url)
    web_login.set_login_cookie(response, pending.state)
    raise response


@routes.get("/sso/callback/{name}")
@page
async def oidc_callback(request: web.Request) -> web.StreamResponse:
    """The OIDC redirect URI: check the state against this browser, redeem the code, sign in."""
    web_login = request.app[WEB]
    option = web_login.oidc.get(request.match_info["name"])
    if option is None:
        raise web.HTTPNotFound()
    if "error" in request.query:
        raise LoginError(f"The identity provider refused the sign-in ({request.query['error'][:64]}).")
    state = request.query.get("state", "")
    bound = web_login.login_state(request)
    if bound is None or bound != state:
        # Not started in this browser: a login-CSRF attempt, or cookies are blocked.
        raise LoginError("This sign-in was not started in this browser. Please sign in again.", status=403)
    identity, next_path = await option.finish(state, request.query.get("code", ""))
    session = await web_login.sessions.create(identity, option.name)
    response = web.HTTPSeeOther(safe_next(next_path))
    web_login.clear_cookies(response, login_only=True)
    web_login.set_session_cookie(response, session)
    raise response


@routes.get("/sso/roles")
@page
async def roles(request: web.Request) -> web.StreamResponse:
    """The role chooser (also for a pending CLI or device request named by ``request``)."""
    web_login = request.app[WEB]
    session = await web_login.current(request)
    if session is None:
        raise web_login.login_redirect(request.path_qs)
    return html_response(
        pages.roles_page(
            by_account(web_login.choices(session, request)),
            who=web_login.who(session),
            token=web_login.sessions.form_token(session),
            logout_token=web_login.sessions.form_token(session),
            selected=session.role_arn,
        )
    )


@routes.post("/sso/roles")
@page
async def choose_role(request: web.Request) -> web.StreamResponse:
    """A role was chosen: show credentials, or complete the pending CLI or device request."""
    web_login = request.app[WEB]
    session, form = await signed_in_post(web_login, request)
    role_arn = form.get("role", "")
    web_login.require(bool(role_arn), "Choose a role.", 400)
    if form.get("request"):
        found = await pending_request(web_login, session, form["request"])
        return await complete_request(web_login, request, session, found, role_arn)
    await web_login.mint(session, role_arn, request, via="web")
    raise web.HTTPSeeOther("/sso/credentials")


@routes.get("/sso/credentials")
@page
async def credentials(request: web.Request) -> web.StreamResponse:
    """The credentials page: expiry, exports, a credentials-file block, renew and sign out."""
    web_login = request.app[WEB]
    session = await web_login.current(request)
    if session is None:
        raise web_login.login_redirect("/sso/roles")
    if session.credentials is None or session.role_arn is None:
        raise web.HTTPSeeOther("/sso/roles")
    now = web_login.sts.now()
    try:
        claims = await web_login.sts.credentials.validate(*session.credentials, now=now)
    except ServiceError:
        # Expired or revoked since: choose again rather than show dead credentials.
        raise web.HTTPSeeOther("/sso/roles") from None
    role = web_login.catalog.snapshot.role(session.role_arn)
    view = pages.CredentialsView(
        role_name=role.name if role else claims.role_name,
        role_arn=session.role_arn,
        assumed_role_arn=claims.assumed_role_arn,
        access_key_id=claims.access_key_id,
        secret_access_key=claims.secret_access_key,
        session_token=session.credentials[1],
        expiration=datetime.fromtimestamp(claims.expires_at, UTC),
        endpoint=web_login.origin,
        region=web_login.config.region,
    )
    tokens = web_login.sessions
    return html_response(
        pages.credentials_page(
            view, token_renew=tokens.form_token(session), token_logout=tokens.form_token(session), now=now
        )
    )


@routes.post("/sso/renew")
@page
async def renew(request: web.Request) -> web.StreamResponse:
    """Issue fresh credentials for the role last chosen."""
    web_login = request.app[WEB]
    session, _ = await signed_in_post(web_login, request)
    if session.role_arn is None:
        raise web.HTTPSeeOther("/sso/roles")
    await web_login.mint(session, session.role_arn, request, via="web")
    raise web.HTTPSeeOther("/sso/credentials")


@routes.post("/sso/logout")
@page
async def logout(request: web.Request) -> web.StreamResponse:
    """End the session here, then at the IdP when it supports it (OIDC end-session, SAML SLO)."""
    web_login = request.app[WEB]
    session, _ = await signed_in_post(web_login, request)
    await web_login.sessions.delete(session)
    target = "/sso/signed-out"
    option = web_login.oidc.get(session.login)
    saml = web_login.saml.get(session.login)
    if option is not None:
        document = await option.endpoints()
        end = document.get("end_session_endpoint")
        if isinstance(end, str) and end.startswith(("https://", "http://")):
            query = {
                "client_id": option.settings.client_id,
                "post_logout_redirect_uri": f"{web_login.origin}/sso/signed-out",
            }
            target = f"{end}{'&' if '?' in end else '?'}{urlencode(query)}"
    if saml is not None and (slo := await saml.logout_url(session)) is not None:
        # The LogoutRequest's signature covers these exact octets: the URL is used as built.
        target = slo
    if target == "/sso/signed-out":
        response: web.StreamResponse = web.HTTPSeeOther(target)
    else:
        # Leaving for the IdP: a cross-origin redirect answering this POST would violate the
        # pages' form-action policy (browsers apply it to redirects), so a page moves on instead.
        response = html_response(
            pages.continue_page(
                "Signing out",
                "You are signed out of fedgate. Continuing to sign you out at your identity provider.",
                target,
                "Continue",
            )
        )
    web_login.clear_cookies(response)
    if isinstance(response, web.HTTPException):
        raise response
    return response


@routes.get("/sso/signed-out")
@page
async def signed_out(request: web.Request) -> web.StreamResponse:
    """Where sign-out ends."""
    return html_response(
        pages.message_page(
            "Signed out",
            "You are signed out. Credentials already issued stay valid until "
            "they expire; CLI sessions of this sign-in can no longer renew.",
            [("Sign in again", "/sso/")],
        )
    )
