"""The one request middleware: request id, logging context, and error rendering.

Every response carries ``x-amzn-RequestId``. Any :class:`ServiceError` raised by a handler is
rendered in the dialect of the API that was called (STS XML, or the S3 XML or JSON the proxy
names through ``keys.ERROR_DIALECT``); anything else becomes ``InternalFailure``,
logged with the request id, with no internals in the body.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway import keys
from gateway.errors import InternalFailure, ServiceError
from gateway.logs import request_id_var
from gateway.proxy.dialect import error_body
from gateway.sts.xml import error_document

__all__ = ["error_response", "request_context", "sts_error_response"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def sts_error_response(exc: ServiceError, request_id: str) -> web.Response:
    """An STS/IAM Query-protocol ``ErrorResponse``."""
    return web.Response(
        status=exc.status,
        text=error_document(exc.fault, exc.code, exc.message, request_id),
        content_type="text/xml",
    )


def error_response(request: web.Request, exc: ServiceError, request_id: str) -> web.Response:
    """``exc`` in the dialect of the API ``request`` called: STS XML unless the proxy named another."""
    dialect = request.get(keys.ERROR_DIALECT, "sts")
    if dialect == "sts":
        return sts_error_response(exc, request_id)
    status, body, content_type, headers = error_body(exc, request_id, dialect)
    return web.Response(status=status, text=body, content_type=content_type, headers=headers)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Assign a request id, render errors, and stamp the id on the response."""
    request_id = str(uuid.uuid4())
    request[keys.REQUEST_ID] = request_id
    token = request_id_var.set(request_id)
    try:
        try:
            response = await handler(request)
        except ServiceError as exc:
            response = error_response(request, exc, request_id)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("unhandled error while handling %s %s", request.method, request.path)
            response = error_response(
                request,
                InternalFailure("The request processing has failed because of an unknown error."),
                request_id,
            )
        response.headers["x-amzn-RequestId"] = request_id
        return response
    finally:
        request_id_var.reset(token)
