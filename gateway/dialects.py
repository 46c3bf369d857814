"""Error documents in the dialect of the API that was called: the Query protocol's XML (STS, IAM),
S3's XML, or JSON for the others.

One function, :func:`error_body`, renders any :class:`~gateway.errors.ServiceError` in any dialect;
the request middleware picks the dialect (the proxy handler names its upstream's on the request)
and every front door answers through it. Codes are translated where S3 spells a condition
differently from STS (``InvalidClientTokenId`` is S3's ``InvalidAccessKeyId``, an expired session is
``ExpiredToken``...). The Query protocol's ``ErrorResponse`` document itself is built by
:func:`gateway.sts.xml.error_document`.
"""

from __future__ import annotations

import json
from typing import Literal
from xml.sax.saxutils import escape

from gateway.errors import ServiceError
from gateway.sts.xml import error_document

__all__ = ["DIALECTS", "ErrorDialect", "error_body", "s3_code"]

ErrorDialect = Literal["sts", "s3", "json"]
#: Every dialect, for tests and documentation.
DIALECTS: tuple[ErrorDialect, ...] = ("sts", "s3", "json")

# STS-style code -> (S3 code, S3 status).
_S3_CODES: dict[str, tuple[str, int]] = {
    "InvalidClientTokenId": ("InvalidAccessKeyId", 403),
    "ExpiredToken": ("ExpiredToken", 400),
    "MissingAuthenticationToken": ("AccessDenied", 403),
    "IncompleteSignature": ("AuthorizationHeaderMalformed", 400),
    "InvalidParameterValue": ("InvalidArgument", 400),
    "MissingParameter": ("InvalidRequest", 400),
    "ValidationError": ("InvalidRequest", 400),
    "InternalFailure": ("InternalError", 500),
    "RequestEntityTooLarge": ("MaxMessageLengthExceeded", 400),
}
_INVALID_XML_CHARS = {c: None for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)}


def s3_code(exc: ServiceError) -> tuple[str, int]:
    """The S3 error code and HTTP status for ``exc``."""
    return _S3_CODES.get(exc.code, (exc.code, exc.status))


def error_body(
    exc: ServiceError, request_id: str, dialect: ErrorDialect
) -> tuple[int, str, str, dict[str, str]]:
    """``(status, body, content type, extra headers)`` of ``exc`` in ``dialect``."""
    if dialect == "sts":
        return exc.status, error_document(exc.fault, exc.code, exc.message, request_id), "text/xml", {}
    if dialect == "s3":
        code, status = s3_code(exc)
        text = escape(exc.message.translate(_INVALID_XML_CHARS))
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{text}</Message>"
            f"<RequestId>{escape(request_id)}</RequestId><HostId>{escape(request_id)}</HostId></Error>"
        )
        return status, body, "application/xml", {"x-amz-request-id": request_id, "x-amz-id-2": request_id}
    body = json.dumps({"__type": exc.code, "message": exc.message, "requestId": request_id})
    return exc.status, body, "application/json", {"x-amzn-ErrorType": exc.code}
