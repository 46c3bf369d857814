"""The HTTP access log: one JSON line per request answered (``access_log.enabled``, off by default).

aiohttp calls its access logger once the response is sent; :class:`JsonAccessLogger` is that seam's
implementation (:class:`~gateway.web.server.GatewayRunner` installs it), so nothing on the request
path formats a line. Each line has the time, the request id, the peer, method, path, the query with
secret values redacted, status, bytes sent, duration and user agent. Never a header but the user
agent: no ``Authorization``, no ``X-Amz-Security-Token``, no cookie. In the query, the value of any
parameter whose name says signature, credential, token, secret, password, SAML, code, state or
session (``X-Amz-Signature``, ``X-Amz-Credential``, ``X-Amz-Security-Token``, SigV2's
``Signature`` and ``AWSAccessKeyId``, an OAuth ``code`` or ``state``, ``SAMLResponse``...) is
written as ``REDACTED``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Final
from urllib.parse import unquote_plus

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from gateway.logs import JsonFormatter
from gateway.opsconfig import AccessLogSettings
from gateway.web.middleware import log_path

__all__ = ["LOGGER", "JsonAccessLogger", "access_logger", "redacted_query"]

#: The logger access lines are written to.
LOGGER: Final = "fedgate.access"
REDACTED: Final = "REDACTED"
_SECRET_MARKS: Final = (
    "signature",
    "credential",
    "token",
    "secret",
    "password",
    "saml",
    "code",
    "state",
    "session",
    "accesskey",
    "assertion",
)
_MAX_QUERY: Final = 1024
_MAX_AGENT: Final = 256


def redacted_query(raw: str) -> str:
    """``raw`` (a query string as sent) with the value of every secret-looking parameter replaced."""
    out = []
    for pair in raw.split("&"):
        name, eq, _ = pair.partition("=")
        plain = unquote_plus(name).lower().replace("-", "").replace("_", "")
        out.append(f"{name}={REDACTED}" if eq and any(m in plain for m in _SECRET_MARKS) else pair)
    query = "&".join(out)
    return query if len(query) <= _MAX_QUERY else query[:_MAX_QUERY] + "..."


class JsonAccessLogger(AbstractAccessLogger):
    """aiohttp's access-logger seam, writing one JSON line per response (see the module docstring)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        """Write the line for ``request``, answered with ``response`` in ``time`` seconds."""
        raw_query = request.raw_path.partition("?")[2]
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        ssl = request.transport.get_extra_info("ssl_object") if request.transport is not None else None
        fields = {
            "request_id": response.headers.get("x-amzn-RequestId", ""),
            "remote": peer[0] if isinstance(peer, tuple) else "",
            "method": request.method,
            "path": log_path(request),
            "query": redacted_query(raw_query) if raw_query else "",
            "status": response.status,
            "bytes": response.body_length,
            "duration_ms": round(time * 1000, 3),
            "user_agent": request.headers.get("User-Agent", "")[:_MAX_AGENT],
            "tls": ssl.version() if ssl is not None else None,
        }
        self.logger.info("%s %s %s", request.method, fields["path"], response.status, extra=fields)


def access_logger(settings: AccessLogSettings) -> logging.Logger:
    """The logger for ``settings``: to its file (created 0600, appended to) or, without a path, to
    the process's log (stderr)."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    if settings.path is None:
        logger.propagate = True
        return logger
    path = Path(settings.path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.close(fd)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    return logger
