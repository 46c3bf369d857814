"""The one adapter from an aiohttp request to what the domain reads, for every front door.

The Query endpoint, the reverse proxy and the browser sign-in pages describe a request the same
way: :func:`http_request` (what SigV4 verification needs), :func:`client_ip` (the caller's address
through the trusted proxies), :func:`transport` (the facts ``aws:*`` condition keys come from) and
:func:`call_record` (the audit trail's record of the call, starting from those facts).

Header values are decoded strictly: a value that is not UTF-8 is refused with
``InvalidParameterValue`` rather than decoded with replacement characters, because two different
byte strings would then read as the same text to the signature check and to a policy, while the
upstream receives the original bytes.
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from gateway import keys
from gateway.calls import CallRecord
from gateway.context import Transport
from gateway.errors import InvalidParameterValue
from gateway.sigv4 import HttpRequest

__all__ = ["call_record", "client_ip", "http_request", "raw_headers", "transport"]


def raw_headers(request: web.Request) -> tuple[tuple[str, str], ...]:
    """The request's headers as received (order, case, repeats), values decoded as UTF-8.

    Raises ``InvalidParameterValue`` when a value is not valid UTF-8 (see the module docstring).
    """
    try:
        return tuple((k.decode("latin-1"), v.decode("utf-8")) for k, v in request.raw_headers)
    except UnicodeDecodeError:
        raise InvalidParameterValue("A request header is not valid UTF-8.") from None


def http_request(
    request: web.Request,
    body: bytes | None = None,
    *,
    headers: tuple[tuple[str, str], ...] | None = None,
) -> HttpRequest:
    """The transport-neutral view of ``request`` that SigV4 verification needs.

    ``body`` is the whole body when the caller read it (its SHA-256 is then part of the view), or
    ``None`` when it streams and is checked on the way. ``headers`` are :func:`raw_headers`, when
    the caller already has them.
    """
    raw_path, _, raw_query = request.raw_path.partition("?")
    return HttpRequest(
        method=request.method,
        raw_path=raw_path,
        raw_query=raw_query,
        headers=raw_headers(request) if headers is None else headers,
        payload_sha256=hashlib.sha256(body).hexdigest() if body is not None else None,
    )


def client_ip(request: web.Request) -> str:
    """The caller's address: the peer, or what trusted proxies say in ``X-Forwarded-For``.

    Repeated ``X-Forwarded-For`` headers are read as one list, in order.
    """
    forwarded = request.headers.getall("X-Forwarded-For", [])
    return request.app[keys.TRUSTED_PROXIES].client_ip(
        request.remote or "", ",".join(forwarded) if forwarded else None
    )


def transport(request: web.Request, *, now: float, secure: bool | None = None) -> Transport:
    """The facts about ``request`` that every front door states the same way.

    ``secure`` overrides ``request.secure`` where the origin users reach is known to differ (the
    sign-in pages behind a TLS-terminating proxy know it from their public URL).
    """
    headers = request.headers
    return Transport(
        source_ip=client_ip(request),
        secure=request.secure if secure is None else secure,
        user_agent=headers.get("User-Agent"),
        referer=headers.get("Referer"),
        now=now,
    )


def call_record(request: web.Request, *, now: float, secure: bool | None = None) -> CallRecord:
    """A new record of the call ``request`` makes, with its :func:`transport` facts."""
    return CallRecord(
        request_id=request.get(keys.REQUEST_ID, ""), transport=transport(request, now=now, secure=secure)
    )
