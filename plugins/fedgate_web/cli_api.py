"""What ``fedgate login`` and ``fedgate credential-process`` talk to.

Two ways for the command line to obtain a sign-in, both approved by a person in a browser on the
role chooser:

* **Loopback** (the CLI runs where the browser does): ``GET /sso/cli/authorize`` with the CLI's
  ``http://127.0.0.1:PORT/...`` redirect URI, a state and a PKCE S256 challenge; after the role is
  chosen the browser is redirected to the CLI with a one-time code, which the CLI redeems at
  ``POST /sso/cli/token`` with its PKCE verifier. Only loopback redirect URIs are accepted.
* **Device** (headless machines, RFC 8628 style): ``POST /sso/device/authorize`` returns a device
  code and a short user code; the person enters the user code at ``/sso/device`` anywhere, chooses a
  role, and the CLI polling ``POST /sso/cli/token`` receives the credentials.

Both answer with credentials and a refresh token bound to the browser's sign-in: ``grant_type=
refresh_token`` mints new credentials for the same role until that sign-in ends (lifetime or
logout). Codes, requests and refresh tokens are stored only as hashes, and each code is used once
(through the replay guard: a loopback code carries its issue time, a device code's record holds it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from fedgate_web import pages
from fedgate_web.errors import LoginError
from fedgate_web.once import digest, spend, stamped
from fedgate_web.render import html_response, page, signed_in_post
from fedgate_web.roles import by_account
from fedgate_web.runtime import WEB, Minted, WebLogin
from fedgate_web.sessions import WebSession
from gateway.errors import ServiceError
from gateway.plugin import is_loopback_host

__all__ = ["cli_routes", "complete_request", "pending_request"]

cli_routes = web.RouteTableDef()

REQUEST_SECONDS = 600
CODE_SECONDS = 120
POLL_INTERVAL = 5
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43}\Z")
_STATE_RE = re.compile(r"^[\x21-\x7e]{8,200}\Z")
_USER_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels: no words; no look-alike digits


def _load(raw: bytes | None) -> dict[str, Any] | None:
    return json.loads(raw) if raw is not None else None


def _check_redirect(uri: str) -> str:
    parts = urlsplit(uri)
    if (
        len(uri) > 300
        or parts.scheme != "http"
        or not is_loopback_host(parts.hostname or "")
        or parts.port is None
        or parts.username is not None
        or parts.fragment
    ):
        raise LoginError("The command line's redirect address must be http://127.0.0.1:PORT/... (loopback).")
    return uri


@cli_routes.get("/sso/cli/authorize")
@page
async def cli_authorize(request: web.Request) -> web.StreamResponse:
    """The browser half of ``fedgate login``: sign in if needed, then choose the role to send."""
    web_login = request.app[WEB]
    query = request.query
    redirect_uri = _check_redirect(query.get("redirect_uri", ""))
    state, challenge = query.get("state", ""), query.get("code_challenge", "")
    web_login.require(bool(_STATE_RE.match(state)), "The command line's request has no valid state.", 400)
    web_login.require(
        query.get("code_challenge_method") == "S256" and bool(_CHALLENGE_RE.match(challenge)),
        "The command line's request needs a PKCE S256 challenge.",
        400,
    )
    session = await web_login.current(request)
    if session is None:
        raise web_login.login_redirect(request.path_qs)
    request_id = secrets.token_urlsafe(24)
    record = {
        "kind": "cli",
        "session": session.ref,
        "redirect_uri": redirect_uri,
        "state": state,
        "challenge": challenge,
    }
    await web_login.store.set(
        f"web:request:{digest(request_id)}", json.dumps(record).encode(), ttl=REQUEST_SECONDS
    )
    return _chooser(web_login, request, session, request_id, "cli")


def _chooser(
    web_login: WebLogin, request: web.Request, session: WebSession, request_id: str, purpose: str
) -> web.Response:
    return html_response(
        pages.roles_page(
            by_account(web_login.choices(session, request)),
            who=web_login.who(session),
            token=web_login.sessions.form_token(session),
            logout_token=web_login.sessions.form_token(session),
            request=request_id,
            purpose=purpose,
        )
    )


async def pending_request(web_login: WebLogin, session: WebSession, request_id: str) -> dict[str, Any]:
    """The CLI or device request ``request_id`` names, consumed; it must belong to ``session``."""
    store = web_login.store
    key = f"web:request:{digest(request_id[:100])}"
    found = _load(await store.get(key))
    await store.delete(key)
    if found is None or not hmac.compare_digest(found["session"], session.ref):
        raise LoginError("This request has expired or was already answered. Start it again.", status=403)
    return found


async def complete_request(
    web_login: WebLogin, request: web.Request, session: WebSession, found: dict[str, Any], role_arn: str
) -> web.StreamResponse:
    """Answer a pending request with the chosen role: a code to the CLI, or device approval."""
    web_login.require(
        role_arn in {c.arn for c in web_login.choices(session, request)},
        "You may not use that role.",
    )
    store = web_login.store
    if found["kind"] == "cli":
        code = stamped(web_login.clock(), secrets.token_urlsafe(32))
        grant = {
            "session": session.ref,
            "role": role_arn,
            "challenge": found["challenge"],
            "redirect_uri": found["redirect_uri"],
        }
        await store.set(f"web:code:{digest(code)}", json.dumps(grant).encode(), ttl=CODE_SECONDS)
        uri = found["redirect_uri"]
        raise web.HTTPSeeOther(
            f"{uri}{'&' if '?' in uri else '?'}{urlencode({'code': code, 'state': found['state']})}"
        )
    device_key = f"web:device:{found['device']}"
    device = _load(await store.get(device_key))
    web_login.require(device is not None, "The device's request has expired. Start it again on the device.")
    assert device is not None
    device.update(status="approved", session=session.ref, role=role_arn)
    await store.set(
        device_key, json.dumps(device).encode(), ttl=max(device["expires"] - web_login.clock(), 1)
    )
    return html_response(
        pages.message_page(
            "Device approved",
            f"The device with code {device['user_code']} will receive credentials. You can close this page.",
            [("Back to your roles", "/sso/roles")],
        )
    )


# --- the token endpoint (JSON) -------------------------------------------------------------------


@cli_routes.post("/sso/cli/token")
async def token(request: web.Request) -> web.StreamResponse:
    """Redeem a loopback code, a device code or a refresh token for credentials (JSON)."""
    web_login = request.app[WEB]
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    grant_type = form.get("grant_type")
    try:
        if grant_type == "authorization_code":
            return await _redeem_code(web_login, request, form)
        if grant_type == DEVICE_GRANT:
            return await _redeem_device(web_login, request, form)
        if grant_type == "refresh_token":
            return await _refresh(web_login, request, form)
    except ServiceError as exc:
        if exc.status >= 500:  # the store (or another dependency) is down: try again, not denied
            return web_login.json_error("temporarily_unavailable", exc.message, exc.status)
        return web_login.json_error("access_denied", exc.message, 403)
    return web_login.json_error(
        "unsupported_grant_type", "Use authorization_code, device_code or refresh_token."
    )


async def _redeem_code(web_login: WebLogin, request: web.Request, form: dict[str, str]) -> web.StreamResponse:
    store = web_login.store
    code = form.get("code", "")[:100]
    key = f"web:code:{digest(code)}"
    if not code or not await spend(web_login.replay, "web:code-used:", code, CODE_SECONDS):
        return web_login.json_error("invalid_grant", "The code was already used.")
    grant = _load(await store.get(key))
    await store.delete(key)
    if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
        return web_login.json_error(
            "invalid_grant", "The code is unknown, expired or for another redirect URI."
        )
    verifier = form.get("code_verifier", "")[:200].encode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
    if not hmac.compare_digest(challenge, grant["challenge"]):
        return web_login.json_error("invalid_grant", "The PKCE verifier does not match.")
    return await _issue(web_login, request, grant["session"], grant["role"], new_refresh=True)


async def _redeem_device(
    web_login: WebLogin, request: web.Request, form: dict[str, str]
) -> web.StreamResponse:
    store = web_login.store
    ref = digest(form.get("device_code", "")[:100])
    device = _load(await store.get(f"web:device:{ref}"))
    if device is None:
        return web_login.json_error("expired_token", "The device code is unknown or has expired.")
    if device["status"] != "approved":
        # Polling faster than the interval is answered with slow_down, as RFC 8628 says.
        polls = await store.incr(f"web:device-poll:{ref}", POLL_INTERVAL)
        if polls > 1:
            return web_login.json_error("slow_down", "Poll less often.")
        return web_login.json_error("authorization_pending", "Waiting for approval in a browser.")
    # The record was written when the device code was issued (it never leaves the store).
    issued = float(device.get("issued", 0.0))
    if not await web_login.replay.spend(f"web:device-used:{ref}", REQUEST_SECONDS * 3, issued):
        return web_login.json_error("invalid_grant", "The device code was already used.")
    await store.delete(f"web:device:{ref}")
    return await _issue(web_login, request, device["session"], device["role"], new_refresh=True)


async def _refresh(web_login: WebLogin, request: web.Request, form: dict[str, str]) -> web.StreamResponse:
    refresh = form.get("refresh_token", "")[:100]
    grant = _load(await web_login.store.get(f"web:refresh:{digest(refresh)}")) if refresh else None
    if grant is None:
        return web_login.json_error("invalid_grant", "The sign-in has ended; run `fedgate login` again.")
    return await _issue(
        web_login, request, grant["session"], grant["role"], new_refresh=False, refresh=refresh
    )


async def _issue(
    web_login: WebLogin,
    request: web.Request,
    session_ref: str,
    role_arn: str,
    *,
    new_refresh: bool,
    refresh: str = "",
) -> web.StreamResponse:
    session = await web_login.sessions.load_ref(session_ref)
    if session is None:
        return web_login.json_error("invalid_grant", "The sign-in has ended; run `fedgate login` again.")
    minted: Minted = await web_login.mint(session, role_arn, request, via="cli")
    if new_refresh:
        refresh = secrets.token_urlsafe(32)
        grant = {"session": session.ref, "role": role_arn}
        await web_login.store.set(
            f"web:refresh:{digest(refresh)}",
            json.dumps(grant).encode(),
            ttl=max(session.expires - web_login.clock(), 1),
        )
    creds = minted.assumed.credentials
    body = {
        "Version": 1,
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
        "SessionToken": creds.session_token,
        "Expiration": creds.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "RoleArn": role_arn,
        "AssumedRoleArn": minted.assumed.assumed_role_arn,
        "refresh_token": refresh,
        "refresh_expires_at": int(session.expires),
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


# --- device flow ---------------------------------------------------------------------------------


def _user_code() -> str:
    raw = "".join(secrets.choice(_USER_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def _normal(user_code: str) -> str:
    return re.sub(r"[\s-]", "", user_code.upper())[:16]


@cli_routes.post("/sso/device/authorize")
async def device_authorize(request: web.Request) -> web.StreamResponse:
    """Start a device sign-in: a device code for the CLI, a user code for the person."""
    web_login = request.app[WEB]
    store = web_login.store
    device_code, user_code = secrets.token_urlsafe(32), _user_code()
    lifetime = web_login.settings.device_code_lifetime
    ref = digest(device_code)
    now = web_login.clock()
    record = {"status": "pending", "user_code": user_code, "issued": now, "expires": now + lifetime}
    await store.set(f"web:device:{ref}", json.dumps(record).encode(), ttl=lifetime)
    await store.set(f"web:user-code:{_normal(user_code)}", ref.encode(), ttl=lifetime)
    verify = f"{web_login.origin}/sso/device"
    return web.json_response(
        {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verify,
            "verification_uri_complete": f"{verify}?{urlencode({'user_code': user_code})}",
            "expires_in": lifetime,
            "interval": POLL_INTERVAL,
        },
        headers={"Cache-Control": "no-store"},
    )


@cli_routes.get("/sso/device")
@page
async def device_form(request: web.Request) -> web.StreamResponse:
    """Where a person enters a device's user code (signing in first if needed)."""
    web_login = request.app[WEB]
    session = await web_login.current(request)
    if session is None:
        raise web_login.login_redirect(request.path_qs)
    code = request.query.get("user_code", "")[:20]
    return html_response(pages.device_page(web_login.sessions.form_token(session), code))


@cli_routes.post("/sso/device")
@page
async def device_lookup(request: web.Request) -> web.StreamResponse:
    """A user code was entered: show the role chooser for that device."""
    web_login = request.app[WEB]
    session, form = await signed_in_post(web_login, request)
    store = web_login.store
    # Guessing codes is slow: ten tries a minute per session.
    attempts = await store.incr(f"web:user-code-tries:{session.ref}", 60)
    web_login.require(attempts <= 10, "Too many attempts. Wait a minute and try again.", 429)
    ref = await store.get(f"web:user-code:{_normal(form.get('user_code', ''))}")
    device = _load(await store.get(f"web:device:{ref.decode()}")) if ref else None
    if ref is None or device is None or device["status"] != "pending":
        token = web_login.sessions.form_token(session)
        return html_response(pages.device_page(token, notice="That code is unknown or has expired."), 400)
    await store.delete(f"web:user-code:{_normal(form.get('user_code', ''))}")
    request_id = secrets.token_urlsafe(24)
    record = {"kind": "device", "session": session.ref, "device": ref.decode()}
    await store.set(f"web:request:{digest(request_id)}", json.dumps(record).encode(), ttl=REQUEST_SECONDS)
    return _chooser(web_login, request, session, request_id, "device")
