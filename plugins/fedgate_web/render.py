"""HTML responses for the ``/sso/`` pages: security headers, error pages and the POST checks."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from fedgate_web import pages
from fedgate_web.errors import LoginError
from fedgate_web.runtime import WebLogin
from fedgate_web.sessions import WebSession
from gateway.errors import ServiceError

__all__ = ["SECURITY_HEADERS", "html_response", "page", "signed_in_post"]

#: Loopback targets are allowed as form destinations: the CLI's redirect follows a form POST.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self' http://127.0.0.1:* http://localhost:* http://[::1]:*",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make browsers send "Origin: null"
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def html_response(body: str, status: int = 200) -> web.Response:
    """An HTML page with the security headers."""
    return web.Response(text=body, status=status, content_type="text/html", headers=SECURITY_HEADERS)


def page(handler: Handler) -> Handler:
    """Render :class:`LoginError` and :class:`ServiceError` as HTML pages; add security headers."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except LoginError as exc:
            response = html_response(
                pages.message_page(
                    "Something went wrong", exc.message, [("Start again", "/sso/")], alert=True
                ),
                exc.status,
            )
        except ServiceError as exc:
            response = html_response(
                pages.message_page("Not allowed", exc.message, [("Start again", "/sso/")], alert=True),
                exc.status,
            )
        except web.HTTPException as exc:
            exc.headers.update(SECURITY_HEADERS)
            raise
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return wrapper


async def signed_in_post(web_login: WebLogin, request: web.Request) -> tuple[WebSession, dict[str, str]]:
    """The session and form of a POST, after the CSRF checks; raises :class:`LoginError`.

    Cross-site requests (Fetch Metadata, Origin) are refused before the token is even read; the
    token must be one this session was given and not used before (a replayed form fails).
    """
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise LoginError("Cross-site form submissions are refused.", status=403)
    origin = request.headers.get("Origin")
    if origin is not None and origin != web_login.origin:
        raise LoginError("This form was submitted from another site.", status=403)
    session = await web_login.current(request)
    if session is None:
        raise LoginError("Your session has ended. Please sign in again.", status=403)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    if not await web_login.sessions.check_form_token(session, form.get("csrf")):
        raise LoginError(
            "This form has expired or was already submitted. Go back, reload the page and try again.",
            status=403,
        )
    return session, form
