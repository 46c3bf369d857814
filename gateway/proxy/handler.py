"""The aiohttp adapter of the reverse proxy: dispatch, authorize, forward, stream back, audit.

:func:`proxy_dispatch` (a middleware) sends every request that matches an upstream to
:func:`proxy_request`, whatever route the gateway's own router picked, except STS and IAM calls
(by the service they are signed for, or unsigned Query calls on ``/``) and unsigned probes. A
request is authenticated and authorized completely before any byte goes upstream; a denied one
is answered AccessDenied and never reaches it. Allowed requests are forwarded with bodies
streamed both ways (see :mod:`gateway.proxy.body` for what is checked on the way), through one
connection pool per upstream (:mod:`gateway.proxy.client`; WebSocket upgrades through aiohttp's).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, final

import aiohttp
from aiohttp import hdrs, web
from yarl import URL

from gateway import keys
from gateway.authn import Authenticated, authenticate, open_session
from gateway.calls import CallRecord
from gateway.errors import (
    BadGateway,
    ClientClosedRequest,
    GatewayTimeout,
    IncompleteBody,
    InvalidParameterValue,
    InvalidRequest,
    InvalidToken,
    MissingContentLength,
    NotFound,
    RequestEntityTooLarge,
    ServiceError,
    UnreadableSessionToken,
)
from gateway.iam import permissions
from gateway.iam.caller import Caller
from gateway.iam.catalog import CatalogSnapshot
from gateway.iam.permissions import ContextValue
from gateway.proxy.body import BodyGuard
from gateway.proxy.client import UpstreamResponse
from gateway.proxy.deletes import MAX_DELETE_BODY, plan_deletes, with_content_md5
from gateway.proxy.headers import forwarded_headers, request_headers, response_headers
from gateway.proxy.mapping import Mapped, ProxyRequest
from gateway.proxy.paths import join_path
from gateway.proxy.query import QueryParam, encode_query, hoist_headers, parse_query
from gateway.proxy.runtime import ProxyRuntime
from gateway.proxy.s3 import S3Mapping, signature_context
from gateway.proxy.sigv2 import authenticate_v2
from gateway.proxy.sigv2 import refused as sigv2_refused
from gateway.proxy.upstream import Selection, Upstream
from gateway.proxy.websocket import relay_websocket
from gateway.sigv4 import (
    QUERY_AUTH_PARAMETERS,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    UNSIGNED_PAYLOAD,
    HttpRequest,
    Verified,
    sign,
    signature_form,
    signed_service,
)
from gateway.sigv4.checksums import ExpectedChecksum, expected_checksum
from gateway.sigv4.chunked import TrailerFramer
from gateway.sigv4.sigv2 import SIGV2_QUERY_PARAMETERS, is_sigv2
from gateway.web.middleware import CLIENT_ABORTS, request_context, service_error
from gateway.web.request import call_record, http_request, raw_headers

__all__ = ["front_door", "not_found", "proxied", "proxy_dispatch", "proxy_request", "routes"]

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


# Services fedgate answers itself, on the Query API at /.
_QUERY_SERVICES = frozenset(("sts", "iam"))
_PROBES = frozenset(("/healthz", "/readyz"))
_FORM = "application/x-www-form-urlencoded"


def proxied(request: web.Request, runtime: ProxyRuntime) -> Selection | None:
    """The upstream ``request`` is for, or ``None`` when the gateway's own routes answer it.

    The service a request is signed for decides first, so one base URL serves every service
    (``AWS_ENDPOINT_URL``): STS and IAM calls on ``/`` go to the Query API whatever the upstreams
    match, and so do unsigned Query calls there (AssumeRoleWithWebIdentity, AssumeRoleWithSAML);
    unsigned probes (``/healthz``, ``/readyz``) are never an upstream's.
    """
    if not runtime.table:
        return None
    raw_path, _, raw_query = request.raw_path.partition("?")
    service = signed_service(request.headers.get("Authorization"), raw_query)
    if service is None:
        if raw_path in _PROBES or (raw_path == "/" and _unsigned_query_call(request, raw_query)):
            return None
    elif service in _QUERY_SERVICES and raw_path == "/":
        return None
    return runtime.table.select(_host(request), raw_path, service)


@web.middleware
async def proxy_dispatch(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Route requests that match an upstream (:func:`proxied`) to the proxy; leave the rest to the
    router. ``fedgate serve`` routes them before the application (:func:`front_door`); this is the
    same rule for an application served any other way (aiohttp's test client, another runner)."""
    runtime = request.app.get(keys.PROXY)
    if runtime is not None and (selection := proxied(request, runtime)) is not None:
        return await proxy_request(request, runtime, selection)
    return await handler(request)


def front_door(app: web.Application, fallback: keys.RequestHandler) -> keys.RequestHandler:
    """The server's request handler for ``app``, a started application: a request for an upstream
    goes to the proxy directly, everything else to ``fallback`` (the application's own handler:
    its router, then its middlewares).

    What the application would do for a proxied request, without the per-request work of getting
    there (a URL object for the router, its walk to the catch-all route, a match info, the
    middleware chain), which costs the proxy about a twentieth of its CPU: the ``Expect`` answer
    (``100 Continue``), then :func:`~gateway.web.middleware.request_context` around
    :func:`proxy_request`, exactly the middlewares' order. The match info (the catch-all route's,
    frozen, shared) is what ``request.app`` and the response-prepare signals read. Without
    upstreams, or for an application whose middlewares are not exactly those two (one added later
    would be skipped), this is ``fallback`` itself.
    """
    runtime = app.get(keys.PROXY)
    if runtime is None or not runtime.table or list(app.middlewares) != [request_context, proxy_dispatch]:
        return fallback
    (route,) = [r for r in app.router.routes() if r.handler is not_found]
    match_info = web.UrlMappingMatchInfo({}, route)
    match_info.add_app(app)
    match_info.freeze()

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        assert isinstance(request, web.Request)  # the application's request factory made it
        selection = proxied(request, runtime)
        if selection is None:
            return await fallback(request)
        request._match_info = match_info  # what Application._handle sets after routing
        if request.headers.get(hdrs.EXPECT):
            answer = await match_info.expect_handler(request)
            await request.writer.drain()
            if answer is not None:
                return answer
        return await request_context(request, lambda r: proxy_request(r, runtime, selection))

    return handle


def _unsigned_query_call(request: web.Request, raw_query: str) -> bool:
    # An unsigned Query call: its Action in the query, or a form body (S3 never POSTs a form to /).
    if raw_query.startswith("Action=") or "&Action=" in raw_query:
        return True
    return request.method == "POST" and request.content_type == _FORM


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
        is_s3 = upstream.mapping.dialect == "s3"
        v2 = is_s3 and is_sigv2(header_map.get("authorization"), http.raw_query)
        if v2 and not upstream.settings.allow_sigv2:
            raise sigv2_refused()
        # The client's presigned-URL parameters are spent here: mappings and the upstream never see them.
        spent = SIGV2_QUERY_PARAMETERS if v2 else QUERY_AUTH_PARAMETERS
        query = parse_query(http.raw_query, drop=spent)
        if query and is_s3:
            query, hoisted = hoist_headers(query)
            if hoisted:
                for name, value in hoisted:
                    if name in header_map:
                        raise InvalidParameterValue(f"The header {name[:64]} is given more than once.")
                    header_map[name] = value
                headers += tuple(hoisted)
        # DeleteObjects names its keys in the body: read it (bounded) to authorize each one.
        multi_delete = is_s3 and request.method == "POST" and any(p.name == "delete" for p in query)
        try:
            auth, body = await _authenticate(
                request, runtime, upstream, http, header_map, v2, multi_delete, now
            )
        except UnreadableSessionToken:
            # S3 tells a token that does not open (InvalidToken) from an unknown key (InvalidAccessKeyId).
            if is_s3:
                raise InvalidToken("The provided token is malformed or otherwise invalid.") from None
            raise
        caller, verified = auth.caller, auth.verified
        record.caller, record.session = caller, caller.session
        mapped = upstream.mapping.map(
            ProxyRequest(request.method, _host(request), selection.segments, query, header_map)
        )
        record.resources = [(check.action, check.resource) for check in mapped.checks]
        snapshot = runtime.catalog.snapshot
        version = "AWS" if v2 else "AWS4-HMAC-SHA256"
        info, payload_hash = verified.info, verified.payload_hash
        signed = signature_context(info, payload_hash, now, version=version) if is_s3 else {}
        rewrite: Callable[[bytes], bytes | None] | None = None
        if mapped.delete_objects:
            if body is None or verified.streaming is not None:
                raise InvalidRequest("DeleteObjects takes its XML body whole, not aws-chunked.")
            context = _full_context(snapshot, caller, record, upstream, signed)
            plan = plan_deletes(snapshot, caller, context, mapped.path.removeprefix("/"), body, header_map)
            record.resources = [(check.action, check.resource) for check in plan.checks]
            outcome.update(plan.outcome)
            if plan.body is None:
                return web.Response(body=plan.result, content_type="application/xml")
            body, headers, rewrite = plan.body, with_content_md5(headers, plan.content_md5), plan.merge
            checksum = None
        else:
            # The caller's standing facts and decisions are worked out once per snapshot.
            view = runtime.views.view(snapshot, caller)
            ctx = view.context(record.transport, region=upstream.region)
            for key, text in signed.items():
                ctx[key.lower()] = text
            decision = view.decide(mapped.checks, ctx)
            outcome["decision"] = decision.kind
            if not decision.allowed:
                outcome["deniedBy"] = decision.denied_by
                context = _full_context(snapshot, caller, record, upstream, signed)
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
            checksum = (
                expected_checksum(header_map.items())
                if request.body_exists or request.method not in _NO_BODY_METHODS
                else None
            )
        # Past this point the request is authorized; only now may anything go upstream.
        authorized = _Authorized(
            checksum=checksum,
            rewrite=rewrite,
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


def _full_context(
    snapshot: CatalogSnapshot,
    caller: Caller,
    record: CallRecord,
    upstream: Upstream,
    signed: dict[str, str],
) -> dict[str, ContextValue]:
    """The request's condition keys as written (not normalised): for DeleteObjects' per-key
    decisions and for the context an AccessDenied explains."""
    context = permissions.session_context(snapshot, caller, record.transport, region=upstream.region)
    context.update(signed)
    return context


async def _authenticate(
    request: web.Request,
    runtime: ProxyRuntime,
    upstream: Upstream,
    http: HttpRequest,
    header_map: dict[str, str],
    v2: bool,
    multi_delete: bool,
    now: float,
) -> tuple[Authenticated, bytes | None]:
    """The verified signature and session, and the body when it had to be read whole for that."""
    if v2:
        mapping = upstream.mapping
        bucket = mapping.virtual_bucket(_host(request)) if isinstance(mapping, S3Mapping) else None
        auth = await authenticate_v2(
            http, runtime.credentials, now=now, region=upstream.region, bucket=bucket
        )
        body = await _read_bounded(request, MAX_DELETE_BODY) if multi_delete else None
        return auth, body
    body = None
    opened = None
    if multi_delete or _body_hash_needed(http, header_map, upstream):
        # Signature present and well formed, session valid: before buffering a body.
        opened = await open_session(http, runtime.credentials, now=now, access_keys=runtime.access_keys)
        limit = MAX_DELETE_BODY if multi_delete else upstream.settings.max_buffered_body
        body = await _read_bounded(request, limit)
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
    return auth, body


def _body_hash_needed(http: HttpRequest, header_map: dict[str, str], upstream: Upstream) -> bool:
    # The signature covers the body itself only when no x-amz-content-sha256 names it (or a literal)
    # and this is not an S3 presigned URL, which covers UNSIGNED-PAYLOAD.
    if "x-amz-content-sha256" in header_map:
        return False
    return not (upstream.service == "s3" and signature_form(http) == "query")


_TOO_LARGE = "The request body is larger than this request may buffer (send x-amz-content-sha256)."


async def _read_bounded(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(_TOO_LARGE)
    data = bytearray()
    async for piece in request.content.iter_chunked(_PIECE):
        data += piece
        if len(data) > limit:
            raise RequestEntityTooLarge(_TOO_LARGE)
    return bytes(data)


async def _client_body(request: web.Request) -> AsyncIterator[bytes]:
    """The client's body in pieces; a client that goes away mid-body is IncompleteBody."""
    try:
        async for piece in request.content.iter_chunked(_PIECE):
            yield piece
    except CLIENT_ABORTS:
        raise IncompleteBody("The request body ended before it was complete.") from None


async def _framed(guard: BodyGuard, framer: TrailerFramer) -> AsyncIterator[bytes]:
    """The checked body re-framed with its (verified) trailer; the trailer goes last."""
    async for piece in guard:
        for chunk in framer.feed(piece):
            yield chunk
    yield framer.finish(guard.trailers[framer.name])


@final
@dataclass(slots=True)  # not frozen: built once per request for one call, and a frozen one's
class _Authorized:  # eleven-field __init__ cost a percent of the proxy's CPU
    """A request that passed every check, and what forwarding it needs.

    ``query`` and ``headers`` are exactly what the policy saw (presigned-URL parameters removed);
    ``body`` is the buffered body when the signature covered it, else ``None`` (it streams);
    ``checksum`` the ``x-amz-checksum-*`` the body claims, checked as it passes; ``rewrite`` turns
    a successful upstream answer into the client's (DeleteObjects merges its denied keys).
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
    checksum: ExpectedChecksum | None = None
    rewrite: Callable[[bytes], bytes | None] | None = None


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
    if upstream.forwarded:
        out.extend(
            forwarded_headers(
                upstream.forwarded, client_ip=authorized.client_ip, host=request.host, proto=request.scheme
            )
        )

    # What the upstream is told about the body, and how it is checked on the way.
    guard: BodyGuard | None = None
    upstream_hash = UNSIGNED_PAYLOAD
    length: int | None = None
    checksum = authorized.checksum
    if body is not None:
        length = len(body)
        upstream_hash = hashlib.sha256(body).hexdigest()
        if checksum is not None:
            checksum.update(body)
            checksum.check()
        data: bytes | AsyncIterator[bytes] | None = body or None
    elif streaming is not None:
        length = streaming.decoded_length
        if length is None:
            raise MissingContentLength("You must provide the x-amz-decoded-content-length header.")
        guard = BodyGuard(
            _client_body(request), streaming=streaming, length=request.content_length, checksum=checksum
        )
        data = aiter(guard)
        if streaming.trailer_names and settings.auth == "resign" and upstream.signing_service == "s3":
            # Keep the trailing checksum for the upstream to check too: re-framed, since the
            # client's chunk signatures are bound to the client's key.
            framer = TrailerFramer(length, streaming.trailer_names[0])
            out.extend(
                (
                    ("Content-Encoding", "aws-chunked"),
                    ("x-amz-decoded-content-length", str(length)),
                    ("x-amz-trailer", framer.name),
                )
            )
            upstream_hash, length, data = (
                STREAMING_UNSIGNED_PAYLOAD_TRAILER,
                framer.wire_length,
                _framed(guard, framer),
            )
    elif request.body_exists or request.method not in _NO_BODY_METHODS:
        length = request.content_length
        expected = verified.payload_hash if verified.payload_signed and not verified.payload_checked else None
        if expected is not None:
            upstream_hash = expected
        guard = BodyGuard(_client_body(request), expected_sha256=expected, length=length, checksum=checksum)
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

    target = path + (f"?{raw_query}" if raw_query else "")
    if (
        settings.websocket
        and request.headers.get("Upgrade", "").lower() == "websocket"
        and request.method == "GET"
    ):
        url = URL(upstream.base_url + target, encoded=True)
        session = runtime.websockets[upstream.name]
        return await relay_websocket(
            request, session, url, out, metrics=runtime.metrics, name=upstream.name
        ), None
    metrics = runtime.metrics
    started = time.perf_counter()
    try:
        upstream_response = await runtime.clients[upstream.name].request(
            request.method,
            target,
            out,
            data,
            total_timeout=settings.total_timeout,
        )
    except ServiceError:
        raise
    except Exception as exc:
        if metrics is not None:
            metrics.upstream_failed(upstream.name, exc)
        # A body check that failed mid-stream aborts the upstream request: report the check.
        if guard is not None and guard.error is not None:
            raise guard.error from None
        if isinstance(exc, TimeoutError | OSError):
            raise _upstream_error(upstream, exc) from None
        raise  # our own bug: the middleware logs it and answers InternalFailure
    if metrics is not None:
        metrics.upstream_answered(upstream.name, upstream_response.status, time.perf_counter() - started)
    async with upstream_response:
        outcome["statusCode"] = upstream_response.status
        if guard is not None and guard.error is not None:
            raise guard.error
        if authorized.rewrite is not None and upstream_response.status == 200:
            return await _relay_rewritten(upstream, upstream_response, authorized.rewrite), None
        return await _relay_response(request, upstream, upstream_response)


_MAX_REWRITTEN = 8 * 1024 * 1024


async def _relay_rewritten(
    upstream: Upstream,
    upstream_response: UpstreamResponse,
    rewrite: Callable[[bytes], bytes | None],
) -> web.Response:
    """The upstream's (bounded) answer, rewritten for the client; BadGateway if it cannot be."""
    data = bytearray()
    try:
        async for piece in upstream_response.iter_chunked(_PIECE):
            data += piece
            if len(data) > _MAX_REWRITTEN:
                raise BadGateway("The upstream's answer is larger than expected.")
    except (TimeoutError, OSError) as exc:
        raise _upstream_error(upstream, exc) from None
    body = rewrite(bytes(data))
    if body is None:
        raise BadGateway("The upstream's answer could not be read.")
    response = web.Response(status=200, body=body, content_type="application/xml")
    for name, value in response_headers(upstream_response.headers):
        if name.lower() not in ("content-length", "content-type", "content-encoding", "content-md5"):
            response.headers.add(name, value)
    return response


def _upstream_error(upstream: Upstream, exc: BaseException) -> ServiceError:
    if isinstance(exc, TimeoutError):
        log.warning("upstream timed out", extra={"upstream": upstream.name})
        return GatewayTimeout("The upstream did not respond in time.")
    log.warning("upstream failed", extra={"upstream": upstream.name, "error": type(exc).__name__})
    return BadGateway("The upstream could not be reached.")


async def _relay_response(
    request: web.Request, upstream: Upstream, upstream_response: UpstreamResponse
) -> tuple[web.StreamResponse, ServiceError | None]:
    headers = response_headers(upstream_response.headers)
    length = upstream_response.content_length
    if length is not None and length <= _PIECE and request.method != "HEAD":
        # A small body goes out with its headers in one write; memory stays bounded by _PIECE.
        try:
            body = await upstream_response.read()
        except (TimeoutError, OSError) as exc:
            raise _upstream_error(upstream, exc) from None
        small = web.Response(status=upstream_response.status, reason=upstream_response.reason, body=body)
        small.headers.extend(headers)
        return small, None
    response = web.StreamResponse(status=upstream_response.status, reason=upstream_response.reason)
    response.headers.extend(headers)
    response.headers["x-amzn-RequestId"] = request[keys.REQUEST_ID]
    await response.prepare(request)
    pieces = aiter(upstream_response.iter_chunked(_PIECE))
    while True:
        # Reading upstream and writing to the client fail differently: tell which side it was.
        try:
            piece = await anext(pieces, None)
        except (TimeoutError, OSError) as exc:
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
