"""The aiohttp adapter of the reverse proxy: dispatch, authorize, forward, stream back, audit.

:func:`proxy_dispatch` (a middleware) sends every request that matches an upstream to
:func:`proxy_request`, whatever route the gateway's own router picked (``/`` is STS only when no
upstream takes the request). A request is authenticated and authorized completely before any byte
goes upstream; a denied one is answered AccessDenied and never reaches it. Allowed requests are
forwarded with bodies streamed both ways (see :mod:`gateway.proxy.body` for what is checked on
the way), through one pooled client session per upstream.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, final

import aiohttp
from aiohttp import web
from yarl import URL

from gateway import keys
from gateway.authn import authenticate, open_session
from gateway.calls import CallRecord
from gateway.errors import (
    BadGateway,
    ClientClosedRequest,
    GatewayTimeout,
    IncompleteBody,
    InvalidParameterValue,
    MissingContentLength,
    NotFound,
    ServiceError,
)
from gateway.iam import permissions
from gateway.iam.caller import Caller
from gateway.proxy.body import BodyGuard
from gateway.proxy.headers import forwarded_headers, request_headers, response_headers
from gateway.proxy.mapping import Mapped, ProxyRequest
from gateway.proxy.paths import join_path
from gateway.proxy.query import QueryParam, encode_query, parse_query
from gateway.proxy.runtime import ProxyRuntime
from gateway.proxy.s3 import signature_context
from gateway.proxy.upstream import Selection, Upstream
from gateway.proxy.websocket import relay_websocket
from gateway.sigv4 import (
    QUERY_AUTH_PARAMETERS,
    UNSIGNED_PAYLOAD,
    HttpRequest,
    Verified,
    sign,
    signature_form,
)
from gateway.web.middleware import CLIENT_ABORTS, service_error
from gateway.web.request import call_record, http_request, raw_headers

__all__ = ["not_found", "proxy_dispatch", "proxy_request", "routes"]

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_PIECE = 64 * 1024
_NO_BODY_METHODS = frozenset(("GET", "HEAD", "DELETE", "OPTIONS"))


@routes.get("/.well-known/jwks.json")
async def jwks_endpoint(request: web.Request) -> web.Response:
    """The public keys that verify identity tokens sent to ``auth: identity`` upstreams."""
    runtime = request.app.get(keys.PROXY)
    if runtime is None or runtime.signer is None:
        raise NotFound("No API answers at this path.")
    return web.json_response(runtime.signer.jwks(), headers={"Cache-Control": "max-age=300"})


async def not_found(request: web.Request) -> web.StreamResponse:
    """Anything no route and no upstream takes.

    Registered as the last, catch-all route so that the router matches every path: a miss in
    aiohttp's router builds an ``HTTPNotFound`` per request, which costs the proxy's hot path more
    than a whole policy decision. Answered ``NotFound`` in the STS dialect, as every error is.
    """
    raise NotFound("No API answers at this path.")


def _host(request: web.Request) -> str:
    host = (request.headers.get("Host") or "").strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@web.middleware
async def proxy_dispatch(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Route requests that match an upstream to the proxy; leave the rest to the router."""
    runtime = request.app.get(keys.PROXY)
    if runtime is not None and runtime.table:
        selection = runtime.table.select(_host(request), request.raw_path.partition("?")[0])
        if selection is not None:
            return await proxy_request(request, runtime, selection)
    return await handler(request)


# Headers a client may legitimately repeat; the mappings never read them as condition keys.
_REPEATABLE_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "cookie",
        "pragma",
        "via",
        "x-forwarded-for",
    }
)


def _header_map(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Headers by lower-case name; any other header given twice is refused.

    Joining repeats would let ``x-amz-acl: public-read`` sent twice read as ``public-read,public-read``
    to the policy (so a Deny on ``public-read`` misses) while the upstream honours both copies.
    """
    found: dict[str, str] = {}
    for name, value in headers:
        lname = name.lower()
        if lname in found:
            if lname not in _REPEATABLE_HEADERS:
                raise InvalidParameterValue(f"The header {name[:64]} is given more than once.")
            found[lname] = f"{found[lname]},{value}"
        else:
            found[lname] = value
    return found


async def proxy_request(
    request: web.Request, runtime: ProxyRuntime, selection: Selection
) -> web.StreamResponse:
    """Authorize one request for ``selection.upstream`` and forward it, or raise the AWS error."""
    upstream = selection.upstream
    request[keys.ERROR_DIALECT] = upstream.mapping.dialect
    now = runtime.clock()
    record = call_record(request, now=now)
    outcome: dict[str, Any] = {"upstream": upstream.name}
    mapped: Mapped | None = None
    error: ServiceError | None = None
    try:
        if selection.error is not None:
            raise selection.error
        headers = raw_headers(request)
        header_map = _header_map(headers)
        http = http_request(request, headers=headers)
        # The client's presigned-URL parameters are spent here: mappings and the upstream never see them.
        query = tuple(p for p in parse_query(http.raw_query) if p.name not in QUERY_AUTH_PARAMETERS)
        body: bytes | None = None
        opened = None
        if _body_hash_needed(http, header_map, upstream):
            # Signature present and well formed, session valid: before buffering a body.
            opened = await open_session(http, runtime.credentials, now=now, access_keys=runtime.access_keys)
            body = await _read_bounded(request, upstream.settings.max_buffered_body)
            http = replace(http, payload_sha256=hashlib.sha256(body).hexdigest())
        auth = await authenticate(
            http,
            runtime.credentials,
            now=now,
            region=upstream.region,
            service=upstream.service,
            keys=runtime.verify_keys,
            access_keys=runtime.access_keys,
            normalize_path=upstream.normalize_path,
            opened=opened,
        )
        caller, verified = auth.caller, auth.verified
        record.caller, record.session = caller, caller.session
        mapped = upstream.mapping.map(
            ProxyRequest(request.method, _host(request), selection.segments, query, header_map)
        )
        record.resources = [(check.action, check.resource) for check in mapped.checks]
        snapshot = runtime.catalog.snapshot
        context = permissions.session_context(snapshot, caller, record.transport, region=upstream.region)
        if upstream.mapping.dialect == "s3":
            context.update(signature_context(verified.info, verified.payload_hash, now))
        decision = permissions.decide(snapshot, caller, mapped.checks, context)
        outcome["decision"] = decision.kind
        if not decision.allowed:
            outcome["deniedBy"] = decision.denied_by
            seen = next(
                (
                    {**context, **c.context}
                    for c in mapped.checks
                    if (c.action, c.resource) == (decision.action, decision.resource)
                ),
                context,
            )
            raise runtime.messages.denied(
                permissions.denied_message(caller, decision),
                decision,
                principal_id=caller.user_id,
                principal_arn=caller.arn,
                context=seen,
            )
        # Past this point the request is authorized; only now may anything go upstream.
        authorized = _Authorized(
            upstream=upstream,
            mapped=mapped,
            caller=caller,
            verified=verified,
            query=query,
            headers=headers,
            body=body,
            client_ip=record.transport.source_ip,
            now=now,
        )
        response, error = await _forward(request, runtime, authorized, outcome)
        return response
    except Exception as exc:
        error = service_error(exc)
        raise
    finally:
        _audit(request, upstream, mapped, record, error, outcome)
        error = None  # as in the Query endpoint: no cycle through this frame


def _body_hash_needed(http: HttpRequest, header_map: dict[str, str], upstream: Upstream) -> bool:
    # The signature covers the body itself only when no x-amz-content-sha256 names it (or a literal)
    # and this is not an S3 presigned URL, which covers UNSIGNED-PAYLOAD.
    if "x-amz-content-sha256" in header_map:
        return False
    return not (upstream.service == "s3" and signature_form(http) == "query")


async def _read_bounded(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise InvalidParameterValue("The request body is too large to verify without x-amz-content-sha256.")
    data = bytearray()
    async for piece in request.content.iter_chunked(_PIECE):
        data += piece
        if len(data) > limit:
            raise InvalidParameterValue(
                "The request body is too large to verify without x-amz-content-sha256."
            )
    return bytes(data)


async def _buffered(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _client_body(request: web.Request) -> AsyncIterator[bytes]:
    """The client's body in pieces; a client that goes away mid-body is IncompleteBody."""
    try:
        async for piece in request.content.iter_chunked(_PIECE):
            yield piece
    except CLIENT_ABORTS:
        raise IncompleteBody("The request body ended before it was complete.") from None


@final
@dataclass(frozen=True, slots=True)
class _Authorized:
    """A request that passed every check, and what forwarding it needs.

    ``query`` and ``headers`` are exactly what the policy saw (presigned-URL parameters removed);
    ``body`` is the buffered body when the signature covered it, else ``None`` (it streams).
    """

    upstream: Upstream
    mapped: Mapped
    caller: Caller
    verified: Verified
    query: tuple[QueryParam, ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    client_ip: str
    now: float


async def _forward(
    request: web.Request, runtime: ProxyRuntime, authorized: _Authorized, outcome: dict[str, Any]
) -> tuple[web.StreamResponse, ServiceError | None]:
    """Send the authorized request upstream and relay the answer.

    Returns the response and, when it failed after its headers were sent (so it cannot be answered
    with an error any more), why: the audit records it as failed.
    """
    upstream, mapped, caller, verified = (
        authorized.upstream,
        authorized.mapped,
        authorized.caller,
        authorized.verified,
    )
    query, headers, body, now = authorized.query, authorized.headers, authorized.body, authorized.now
    settings = upstream.settings
    streaming = verified.streaming
    path = join_path(upstream.base_path, mapped.path)
    raw_query = encode_query(query)
    out = request_headers(
        headers,
        identity_headers=(settings.identity_header,),
        decoded_chunked=streaming is not None,
        set_headers=mapped.set_headers,
    )
    out.append(("Host", upstream.target_host))
    out.extend(forwarded_headers(client_ip=authorized.client_ip, host=request.host, proto=request.scheme))

    # What the upstream is told about the body, and how it is checked on the way.
    guard: BodyGuard | None = None
    upstream_hash = UNSIGNED_PAYLOAD
    length: int | None = None
    if body is not None:
        length = len(body)
        upstream_hash = hashlib.sha256(body).hexdigest()
        data: AsyncIterator[bytes] | None = _buffered(body) if body else None
    elif streaming is not None:
        length = streaming.decoded_length
        if length is None:
            raise MissingContentLength("You must provide the x-amz-decoded-content-length header.")
        guard = BodyGuard(_client_body(request), streaming=streaming, length=request.content_length)
        data = aiter(guard)
    elif request.body_exists or request.method not in _NO_BODY_METHODS:
        length = request.content_length
        expected = verified.payload_hash if verified.payload_signed and not verified.payload_checked else None
        if expected is not None:
            upstream_hash = expected
        guard = BodyGuard(_client_body(request), expected_sha256=expected, length=length)
        guard.precheck()
        data = aiter(guard) if request.body_exists else None
    else:
        data = None
    if length is not None and (data is not None or request.method not in _NO_BODY_METHODS):
        out.append(("Content-Length", str(length)))

    if settings.auth == "resign":
        creds = upstream.credentials
        assert creds is not None
        signed = sign(
            HttpRequest(request.method, path, raw_query, tuple(out)),
            access_key_id=creds.access_key_id,
            secret_key=creds.secret_access_key,
            session_token=creds.session_token,
            region=upstream.signing_region,
            service=upstream.signing_service,
            now=datetime.fromtimestamp(now, UTC),
            normalize_path=upstream.signing_service != "s3",
            content_sha256_header=upstream.signing_service == "s3",
            payload_hash=upstream_hash,
            keys=runtime.signing_keys,
        )
        out = list(signed.headers)
    elif settings.auth == "identity":
        assert runtime.signer is not None
        check = mapped.checks[0]
        token = runtime.signer.token(
            caller, audience=upstream.name, now=now, action=check.action, resource=check.resource
        )
        out.append((settings.identity_header, token))

    url = URL(upstream.base_url + path + (f"?{raw_query}" if raw_query else ""), encoded=True)
    present = {name.lower() for name, _ in out}
    skip = {
        h for h in ("Content-Type", "Accept", "Accept-Encoding", "User-Agent") if h.lower() not in present
    }
    session = runtime.clients[upstream.name]
    if (
        settings.websocket
        and request.headers.get("Upgrade", "").lower() == "websocket"
        and request.method == "GET"
    ):
        return await relay_websocket(request, session, url, out), None
    try:
        upstream_response = await session.request(
            request.method,
            url,
            headers=out,
            data=data,
            allow_redirects=False,
            skip_auto_headers=skip,
            timeout=runtime.timeouts[upstream.name],
        )
    except ServiceError:
        raise
    except Exception as exc:
        # A body check that failed mid-stream aborts the upstream request: report the check.
        if guard is not None and guard.error is not None:
            raise guard.error from None
        if isinstance(exc, aiohttp.ClientError | TimeoutError | OSError):
            raise _upstream_error(upstream, exc) from None
        raise  # our own bug: the middleware logs it and answers InternalFailure
    async with upstream_response:
        outcome["statusCode"] = upstream_response.status
        if guard is not None and guard.error is not None:
            raise guard.error
        return await _relay_response(request, upstream, upstream_response)


def _upstream_error(upstream: Upstream, exc: BaseException) -> ServiceError:
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        log.warning("upstream timed out", extra={"upstream": upstream.name})
        return GatewayTimeout("The upstream did not respond in time.")
    log.warning("upstream failed", extra={"upstream": upstream.name, "error": type(exc).__name__})
    return BadGateway("The upstream could not be reached.")


async def _relay_response(
    request: web.Request, upstream: Upstream, upstream_response: aiohttp.ClientResponse
) -> tuple[web.StreamResponse, ServiceError | None]:
    headers = response_headers(
        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in upstream_response.raw_headers]
    )
    length = upstream_response.content_length
    if length is not None and length <= _PIECE and request.method != "HEAD":
        # A small body goes out with its headers in one write; memory stays bounded by _PIECE.
        try:
            body = await upstream_response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _upstream_error(upstream, exc) from None
        small = web.Response(status=upstream_response.status, reason=upstream_response.reason, body=body)
        small.headers.extend(headers)
        return small, None
    response = web.StreamResponse(status=upstream_response.status, reason=upstream_response.reason)
    response.headers.extend(headers)
    response.headers["x-amzn-RequestId"] = request[keys.REQUEST_ID]
    await response.prepare(request)
    pieces = aiter(upstream_response.content.iter_chunked(_PIECE))
    while True:
        # Reading upstream and writing to the client fail differently: tell which side it was.
        try:
            piece = await anext(pieces, None)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # Headers are gone already: all that is left is to cut the connection, so the client
            # sees a truncated response rather than a complete-looking one.
            log.warning(
                "upstream response failed mid-stream",
                extra={"upstream": upstream.name, "error": type(exc).__name__},
            )
            if request.transport is not None:
                request.transport.abort()
            if isinstance(exc, asyncio.TimeoutError):
                return response, GatewayTimeout("The upstream did not finish the response in time.")
            return response, BadGateway("The upstream response ended before it was complete.")
        if piece is None:
            break
        try:
            await response.write(piece)
        except (ConnectionError, aiohttp.ClientError, OSError):
            return response, ClientClosedRequest("The client left before the response ended.")
    await response.write_eof()
    return response, None


def _audit(
    request: web.Request,
    upstream: Upstream,
    mapped: Mapped | None,
    record: CallRecord,
    error: ServiceError | None,
    outcome: dict[str, Any],
) -> None:
    auditor = request.app.get(keys.AUDITOR)
    if auditor is None:
        return
    auditor.emit(
        mapped.operation if mapped else "Unknown",
        record,
        error,
        source=f"{upstream.service}.amazonaws.com",
        read_only=request.method in ("GET", "HEAD"),
        additional=outcome,
    )
