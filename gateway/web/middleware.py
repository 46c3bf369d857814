"""The one request middleware: request id, logging context, and error rendering.

Every response carries ``x-amzn-RequestId`` (:func:`new_request_id`). Any :class:`ServiceError`
raised by a handler is rendered in the dialect of the API that was called (STS XML, or the S3 XML or
JSON the proxy names through ``keys.ERROR_DIALECT``). aiohttp's own errors become theirs too
(:func:`service_error`): an ``HTTPException`` of 400 or more (a body over ``client_max_size``, a 404
from a plugin) and a client that went away mid-body, which is logged without a traceback. Anything
else becomes ``InternalFailure``, logged with the request id and a traceback, with no internals in
the body. Redirects pass through untouched. Each request is metered here
(:class:`gateway.metrics.RequestMeter`, with the action the audit seam names) and traced when
``tracing.enabled`` (:mod:`gateway.tracing`).
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway import keys
from gateway.dialects import error_body
from gateway.errors import (
    AccessDenied,
    BadRequest,
    IncompleteBody,
    InternalFailure,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
    ServiceError,
)
from gateway.logs import request_id_var
from gateway.metrics import RequestMeter

__all__ = [
    "CLIENT_ABORTS",
    "error_response",
    "log_path",
    "new_request_id",
    "request_context",
    "service_error",
    "sts_error_response",
]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _reseed() -> None:
    global _ID_PREFIX, _ID_COUNTER
    hex_ = secrets.token_hex(8)
    _ID_PREFIX = f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:]}-"
    _ID_COUNTER = itertools.count()


_ID_PREFIX = ""
_ID_COUNTER = itertools.count()
_reseed()
os.register_at_fork(after_in_child=_reseed)  # a forked worker never repeats its parent's ids


def new_request_id() -> str:
    """A request id in the shape of a UUID: 64 random bits drawn once per process, then a counter.

    Unique within a process and, with overwhelming probability, across processes and replicas,
    which is all an id that only correlates logs, audit events and answers needs; not secret and
    not meant to be unguessable. A fifth of ``str(uuid.uuid4())``'s cost (no ``urandom`` call per
    request).
    """
    count = f"{next(_ID_COUNTER):016x}"
    return f"{_ID_PREFIX}{count[:4]}-{count[4:]}"


def sts_error_response(exc: ServiceError, request_id: str) -> web.Response:
    """A Query-protocol ``ErrorResponse`` (STS, IAM): for answers given before any route is known."""
    status, body, content_type, headers = error_body(exc, request_id, "sts")
    return web.Response(status=status, text=body, content_type=content_type, headers=headers)


def error_response(request: web.Request, exc: ServiceError, request_id: str) -> web.Response:
    """``exc`` in the dialect of the API ``request`` called: STS XML unless the proxy named another."""
    status, body, content_type, headers = error_body(exc, request_id, request.get(keys.ERROR_DIALECT, "sts"))
    return web.Response(status=status, text=body, content_type=content_type, headers=headers)


# aiohttp's HTTPExceptions by status, as fedgate's errors.
_BY_STATUS: dict[int, tuple[type[ServiceError], str]] = {
    400: (BadRequest, "The request could not be parsed."),
    403: (AccessDenied, "Access denied."),
    404: (NotFound, "No API answers at this path."),
    405: (MethodNotAllowed, "The specified method is not allowed against this resource."),
    413: (RequestEntityTooLarge, "The request body is larger than this endpoint accepts."),
}
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding"})
#: How aiohttp reports a client that went away mid-body, or broke its body's framing.
CLIENT_ABORTS = (ConnectionResetError, web.RequestPayloadError)
_UNKNOWN = "The request processing has failed because of an unknown error."


def log_path(request: web.BaseRequest) -> str:
    """The request's path for a log line: as sent (percent-encoded), without the query (where
    presigned URLs carry their token and signature), cut to 200 characters."""
    path = request.raw_path.partition("?")[0]
    return path if len(path) <= 200 else path[:200] + "..."


def service_error(exc: BaseException) -> ServiceError:
    """The AWS error a failed request is answered and audited with.

    A :class:`ServiceError` is itself; an ``HTTPException`` of 400 or more is the error for its
    status (any other 4xx is ``BadRequest``, 5xx ``InternalFailure``); a client that disconnected or
    broke its body's framing is ``IncompleteBody``; anything else is ``InternalFailure``.
    """
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        cls, message = _BY_STATUS.get(exc.status) or (
            (BadRequest, _BY_STATUS[400][1]) if exc.status < 500 else (InternalFailure, _UNKNOWN)
        )
        return cls(message)
    if isinstance(exc, CLIENT_ABORTS):
        return IncompleteBody("The request body ended before it was complete.")
    return InternalFailure(_UNKNOWN)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Assign a request id, render errors, and stamp the id on the response."""
    request_id = new_request_id()
    request[keys.REQUEST_ID] = request_id
    token = request_id_var.set(request_id)
    metrics = request.app.get(keys.METRICS)
    tracing = request.app.get(keys.TRACING)
    meter = RequestMeter() if metrics is not None or tracing is not None else None
    span = tracing.start(request_id, request.method, log_path(request)) if tracing is not None else None
    code: str | None = None
    status = 500
    try:
        try:
            response = await handler(request)
        except ServiceError as exc:
            code = exc.code
            response = error_response(request, exc, request_id)
        except web.HTTPException as exc:
            if exc.status < 400:
                status = exc.status
                raise  # a redirect: aiohttp sends it as it is
            code = service_error(exc).code
            response = error_response(request, service_error(exc), request_id)
            for name, value in exc.headers.items():  # Allow, a plugin's security headers
                if name.lower() not in _BODY_HEADERS:
                    response.headers[name] = value
        except Exception as exc:
            if isinstance(exc, CLIENT_ABORTS):
                log.info(
                    "request ended early",
                    extra={"method": request.method, "path": log_path(request), "error": type(exc).__name__},
                )
            else:
                log.exception("unhandled error while handling %s %s", request.method, log_path(request))
            code = service_error(exc).code
            response = error_response(request, service_error(exc), request_id)
        response.headers["x-amzn-RequestId"] = request_id
        status = response.status
        return response
    finally:
        if meter is not None:
            meter.close()
            if metrics is not None:
                metrics.finish(meter, status, code)
            if span is not None:
                span.end(status, api=meter.api, action=meter.action, code=meter.outcome_code(status, code))
        request_id_var.reset(token)
