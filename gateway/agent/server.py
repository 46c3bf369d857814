"""The agent's HTTP adapters: the container credentials endpoint, IMDSv2, and health.

* :func:`container_app`: ``GET /roles/NAME`` (or the role's ``path``) answers the container
  credentials JSON when ``Authorization`` equals the agent's token (compared in constant time);
  ``/healthz`` (liveness), ``/readyz`` (every role holds valid credentials) and ``/status`` (one
  line per role) need no token and hold no secret.
* :func:`imds_app`: IMDSv2 for one role: ``PUT /latest/api/token``, then
  ``/latest/meta-data/iam/security-credentials/`` (the role name) and ``.../NAME`` (credentials).
  IMDSv1 (a GET without a session token) is refused with 401, and any request carrying
  ``X-Forwarded-For`` with 403, as IMDS does.

Both refuse a ``Host`` that is a name other than ``localhost`` (a DNS-rebinding page names its own
host), and each renders every refusal in its own dialect from one middleware; requests that fail
before routing (malformed HTTP) are answered by :func:`container_answer` and :func:`imds_answer`
through fedgate's server seam (:class:`gateway.web.server.GatewayRunner`), which never echoes or
logs the offending bytes: a malformed ``Authorization`` holding the agent's token stays secret.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.agent.credentials import container_document, imds_document, imds_error_document
from gateway.agent.errors import (
    CredentialsUnavailable,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    RequestRefused,
    Unauthorized,
)
from gateway.agent.imds import TOKEN_HEADER, TTL_HEADER, ImdsTokens, parse_ttl
from gateway.agent.keeper import RoleKeeper
from gateway.errors import ServiceError

__all__ = ["CREDENTIALS_PATH", "TOKEN_PATH", "container_answer", "container_app", "imds_answer", "imds_app"]

log = logging.getLogger("gateway.agent")

TOKEN_PATH: Final = "/latest/api/token"  # noqa: S105 - a path, not a secret
CREDENTIALS_PATH: Final = "/latest/meta-data/iam/security-credentials/"
_NO_STORE: Final = MappingProxyType({"Cache-Control": "no-store"})
# Requests carry no body; anything larger is refused before it is read.
_MAX_BODY: Final = 1024

Render = Callable[[int, str, str], web.Response]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, sep, port = host.rpartition(":")
    return name if sep and port.isdigit() and ":" not in name else host


def _check_host(request: web.Request) -> None:
    host = request.headers.get("Host")
    if host is None:
        return  # HTTP/1.0 without Host: no browser sends that
    name = _host_name(host)
    if name == "localhost":
        return
    try:
        ipaddress.ip_address(name)
    except ValueError:
        raise Forbidden("requests must name the agent by its IP address (or localhost)") from None


def _refusal_middleware(render: Render) -> Middleware:
    @web.middleware
    async def refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            _check_host(request)
            return await handler(request)
        except RequestRefused as exc:
            return render(exc.status, exc.code, str(exc))
        except CredentialsUnavailable as exc:
            return render(exc.status, exc.code, str(exc))
        except web.HTTPMethodNotAllowed:
            return render(
                MethodNotAllowed.status, MethodNotAllowed.code, f"{request.method} is not allowed here"
            )
        except web.HTTPNotFound:
            return render(NotFound.status, NotFound.code, "nothing is served at this path")

    return refusals


def _json_refusal(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"Code": code, "Message": message}, status=status, headers=_NO_STORE)


def _text_refusal(status: int, code: str, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain", headers=_NO_STORE)


def container_answer(error: ServiceError, request_id: str) -> web.StreamResponse:
    """The container endpoint's answer to a request that failed before routing (malformed HTTP)."""
    return _json_refusal(error.status, error.code, error.message)


def imds_answer(error: ServiceError, request_id: str) -> web.StreamResponse:
    """IMDS's answer to a request that failed before routing (malformed HTTP)."""
    return _text_refusal(error.status, error.code, error.message)


# --- the container credentials endpoint, and health --------------------------------------------


def container_app(
    keepers: Mapping[str, RoleKeeper], *, token: str, token_file: str, first_fetch_wait: float
) -> web.Application:
    """The container credentials endpoint: ``keepers`` by served path, guarded by ``token``."""
    expected = token.encode("utf-8")
    app = web.Application(middlewares=[_refusal_middleware(_json_refusal)], client_max_size=_MAX_BODY)

    def serve(keeper: RoleKeeper) -> Handler:
        async def credentials(request: web.Request) -> web.StreamResponse:
            given = request.headers.get("Authorization")
            if given is None:
                raise Unauthorized(
                    "the Authorization header is required: point AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE "
                    f"at {token_file}"
                )
            if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected):
                raise Unauthorized(f"the Authorization header does not match the token in {token_file}")
            creds = await keeper.get(first_fetch_wait)
            return web.json_response(container_document(creds, keeper.role_arn), headers=_NO_STORE)

        return credentials

    for path, keeper in keepers.items():
        app.router.add_get(path, serve(keeper), allow_head=False)

    def statuses() -> dict[str, object]:
        return {k.name: k.status().as_dict() for k in keepers.values()}

    async def healthz(request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok", "roles": statuses()}, headers=_NO_STORE)

    async def readyz(request: web.Request) -> web.StreamResponse:
        ready = all(k.current() is not None for k in keepers.values())
        return web.json_response(
            {"status": "ready" if ready else "not ready", "roles": statuses()},
            status=200 if ready else 503,
            headers=_NO_STORE,
        )

    async def status(request: web.Request) -> web.StreamResponse:
        lines = "".join(k.status().line() + "\n" for k in keepers.values())
        return web.Response(text=lines, content_type="text/plain", headers=_NO_STORE)

    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/readyz", readyz, allow_head=False)
    app.router.add_get("/status", status, allow_head=False)
    return app


# --- IMDSv2 --------------------------------------------------------------------------------------


def imds_app(
    keeper: RoleKeeper, *, role_name: str, tokens: ImdsTokens, first_fetch_wait: float
) -> web.Application:
    """IMDSv2 serving ``keeper``'s credentials under ``role_name``."""
    role_path = CREDENTIALS_PATH + role_name

    async def metadata(request: web.Request) -> web.StreamResponse:
        if "X-Forwarded-For" in request.headers:
            raise Forbidden("requests that came through a proxy (X-Forwarded-For) are refused")
        if request.path == TOKEN_PATH:
            if request.method != "PUT":
                raise MethodNotAllowed("the session token is issued to PUT only")
            ttl = parse_ttl(request.headers.get(TTL_HEADER))
            headers = {**_NO_STORE, TTL_HEADER: str(ttl)}
            return web.Response(text=tokens.issue(ttl), content_type="text/plain", headers=headers)
        if request.method != "GET":
            raise MethodNotAllowed(f"{request.method} is not allowed here")
        given = request.headers.get(TOKEN_HEADER)
        if given is None:
            raise Unauthorized(f"IMDSv1 is not served: PUT {TOKEN_PATH} first and send {TOKEN_HEADER}")
        if not tokens.valid(given):
            raise Unauthorized(f"the {TOKEN_HEADER} session token is invalid or expired")
        if request.path in (CREDENTIALS_PATH, CREDENTIALS_PATH.rstrip("/")):
            return web.Response(text=role_name, content_type="text/plain", headers=_NO_STORE)
        if request.path != role_path:
            raise NotFound("nothing is served at this path")
        try:
            creds = await keeper.get(first_fetch_wait)
        except CredentialsUnavailable as exc:
            # EC2's answer when the role cannot be assumed: 200, with Code and Message only.
            document = imds_error_document(exc.code, str(exc), keeper.last_updated())
            return web.json_response(document, headers=_NO_STORE)
        return web.json_response(imds_document(creds, keeper.last_updated()), headers=_NO_STORE)

    app = web.Application(middlewares=[_refusal_middleware(_text_refusal)], client_max_size=_MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", metadata)
    return app
