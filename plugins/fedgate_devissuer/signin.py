"""The development issuer's sign-in: an authorization endpoint with a form, the code flow with
PKCE (S256 only), and a token endpoint, so ``/sso/`` and ``fedgate login`` can be tried against
the demo with nothing else running.

Anyone may sign in as any subject: it is a development issuer, served on loopback only. What it
does check is what keeps the flow honest: redirect URIs must be loopback (``http`` or
``https``), every code is usable once within 60 seconds, by the client and redirect URI it was
issued to, with the verifier of its challenge. The ID token carries the request's ``nonce`` and
``aud`` = the client id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import final
from urllib.parse import unquote_plus, urlencode, urlsplit

from aiohttp import web

from fedgate_devissuer.issuer import DevIssuer
from gateway.plugin import is_loopback_host

__all__ = ["SignIn"]

CODE_SECONDS = 60
_MAX_CODES = 1000
_SUBJECT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@+-")


@final
@dataclass(frozen=True, slots=True)
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    subject: str
    expires: float


def _loopback_uri(uri: str) -> bool:
    parts = urlsplit(uri)
    return (
        parts.scheme in ("http", "https") and bool(parts.hostname) and is_loopback_host(parts.hostname or "")
    )


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@final
class SignIn:
    """The authorization and token endpoints of one development issuer (codes held in memory)."""

    def __init__(self, issuer: DevIssuer, *, clock: Callable[[], float] = time.time) -> None:
        self.issuer = issuer
        self._clock = clock
        self._codes: dict[str, _Grant] = {}

    def _refuse(self, message: str, status: int = 400) -> web.Response:
        page = (
            f"<!doctype html><title>Sign-in refused</title><h1>Sign-in refused</h1><p>{html.escape(message)}"
        )
        return web.Response(status=status, text=page, content_type="text/html")

    def _request_error(self, params: dict[str, str]) -> str | None:
        if params.get("response_type") != "code":
            return "response_type must be code"
        if not params.get("client_id") or len(params["client_id"]) > 256:
            return "client_id is required"
        if not _loopback_uri(params.get("redirect_uri", "")):
            return "redirect_uri must be a loopback http(s) URL (this is a development issuer)"
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return "PKCE is required: code_challenge with code_challenge_method S256"
        return None

    async def authorize(self, request: web.Request) -> web.Response:
        """GET: the sign-in form; POST: issue a code and send the browser back."""
        params = (
            dict(request.query)
            if request.method == "GET"
            else {k: str(v) for k, v in (await request.post()).items()}
        )
        problem = self._request_error(params)
        if problem is not None:
            return self._refuse(problem)
        if request.method == "GET":
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in params.items()
                if k
                in (
                    "response_type",
                    "client_id",
                    "redirect_uri",
                    "scope",
                    "state",
                    "nonce",
                    "code_challenge",
                    "code_challenge_method",
                )
            )
            page = (
                "<!doctype html><html lang=en><meta charset=utf-8><title>Development issuer</title>"
                "<h1>Development issuer</h1><p>Sign in as anyone: this issuer is for demos and tests "
                f"only.</p><form method=post action=''>{hidden}"
                '<label>Subject <input name="username" autofocus required value="alice"></label> '
                "<button>Sign in</button></form></html>"
            )
            return web.Response(text=page, content_type="text/html")
        subject = params.get("username", "").strip()
        if not 1 <= len(subject) <= 64 or not set(subject) <= _SUBJECT_CHARS:
            return self._refuse("the subject must be 1-64 letters, digits or ._@+-")
        now = self._clock()
        self._codes = {c: g for c, g in self._codes.items() if g.expires > now}
        if len(self._codes) >= _MAX_CODES:
            return self._refuse("too many sign-ins in flight; try again in a minute", status=503)
        code = secrets.token_urlsafe(32)
        self._codes[code] = _Grant(
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            challenge=params["code_challenge"],
            nonce=params.get("nonce") or None,
            subject=subject,
            expires=now + CODE_SECONDS,
        )
        answer = {"code": code, **({"state": params["state"]} if params.get("state") else {})}
        separator = "&" if "?" in params["redirect_uri"] else "?"
        raise web.HTTPFound(params["redirect_uri"] + separator + urlencode(answer))

    async def token(self, request: web.Request) -> web.Response:
        """Redeem a code (authorization_code grant) for an ID token."""
        form = {k: str(v) for k, v in (await request.post()).items()}
        client_id = form.get("client_id", "")
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Basic "):  # client_secret_basic: any secret (a dev issuer)
            try:
                client_id = unquote_plus(base64.b64decode(authorization[6:]).decode().partition(":")[0])
            except ValueError:
                return self._error("invalid_client")
        if form.get("grant_type") != "authorization_code":
            return self._error("unsupported_grant_type")
        grant = self._codes.pop(form.get("code", ""), None)
        if (
            grant is None
            or grant.expires <= self._clock()
            or grant.client_id != client_id
            or grant.redirect_uri != form.get("redirect_uri")
            or not hmac.compare_digest(grant.challenge, _s256(form.get("code_verifier", "")))
        ):
            return self._error("invalid_grant")
        extra = {"preferred_username": grant.subject, **({"nonce": grant.nonce} if grant.nonce else {})}
        token = self.issuer.mint(grant.subject, audience=grant.client_id, extra=extra)
        return web.json_response(
            {
                "id_token": token,
                "access_token": secrets.token_urlsafe(32),
                "token_type": "Bearer",
                "expires_in": self.issuer.settings.token_lifetime,
            },
            headers={"Cache-Control": "no-store"},
        )

    def _error(self, code: str) -> web.Response:
        return web.json_response({"error": code}, status=400, headers={"Cache-Control": "no-store"})
