"""SigV4 signing: the ``Authorization`` header form and presigned query URLs.

Used by the reverse proxy to re-sign requests for an upstream, and by the tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from gateway.isotime import amz_basic_second
from gateway.sigv4.canonical import canonical_request, parse_query, string_to_sign, uri_encode
from gateway.sigv4.keys import SigningKeyCache, derive_signing_key, hmac_hex
from gateway.sigv4.model import ALGORITHM, MAX_EXPIRES, TERMINATOR, UNSIGNED_PAYLOAD, HttpRequest

__all__ = ["UNSIGNABLE_HEADERS", "sign"]

#: Headers never signed: hop-by-hop ones a proxy may rewrite, and tracing headers (botocore's list).
UNSIGNABLE_HEADERS = frozenset(
    (
        "authorization",
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    )
)
_REPLACED = frozenset(("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"))


def sign(
    request: HttpRequest,
    *,
    access_key_id: str,
    secret_key: str,
    region: str,
    service: str,
    now: datetime,
    session_token: str | None = None,
    form: Literal["header", "query"] = "header",
    expires: int = 3600,
    normalize_path: bool = True,
    sign_session_token: bool = True,
    content_sha256_header: bool = False,
    payload_hash: str | None = None,
    keys: SigningKeyCache | None = None,
) -> HttpRequest:
    """Return a copy of ``request`` signed with SigV4 at ``now``.

    Every header present is signed except :data:`UNSIGNABLE_HEADERS`; a ``Host`` header must be
    present; ``x-amz-content-sha256`` is added (and signed) when ``content_sha256_header``. Header
    form adds ``X-Amz-Date``, ``X-Amz-Security-Token`` (when a token is given) and ``Authorization``,
    replacing any earlier ones. Query form appends ``X-Amz-*`` parameters to the query, in
    botocore's order, with ``X-Amz-Signature`` last. ``sign_session_token=False`` adds the token
    after signing (the aws-c-auth ``omit_session_token`` mode). The payload hash is
    ``payload_hash`` if given, else ``UNSIGNED-PAYLOAD`` for an S3 presigned URL without
    ``content_sha256_header``, else ``request.payload_sha256``.
    """
    if not 1 <= expires <= MAX_EXPIRES:
        raise ValueError("expires must be within 1..604800 seconds")
    if payload_hash is not None:
        body_hash = payload_hash
    elif form == "query" and service == "s3" and not content_sha256_header:
        body_hash = UNSIGNED_PAYLOAD  # what an S3 presigned URL covers; see verify.payload_hash
    elif request.payload_sha256 is not None:
        body_hash = request.payload_sha256
    else:
        raise ValueError("a payload hash is required to sign this request")
    headers = [(n, v) for n, v in request.headers if n.lower() not in _REPLACED]
    if content_sha256_header:
        headers.append(("x-amz-content-sha256", body_hash))
    timestamp = amz_basic_second(int(now.timestamp()))
    date = timestamp[:8]
    scope = f"{date}/{region}/{service}/{TERMINATOR}"
    key = (
        keys.get(secret_key, date, region, service)
        if keys is not None
        else derive_signing_key(secret_key, date, region, service)
    )
    mac = keys.hmac_hex if keys is not None else hmac_hex

    if form == "query":
        signed = _signed_names(headers)
        auth: list[tuple[str, str]] = [
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", f"{access_key_id}/{scope}"),
            ("X-Amz-Date", timestamp),
            ("X-Amz-SignedHeaders", ";".join(signed)),
            ("X-Amz-Expires", str(expires)),
        ]
        if session_token is not None:
            auth.append(("X-Amz-Security-Token", session_token))
        added = "&".join(f"{name}={uri_encode(value)}" for name, value in auth)
        query = f"{request.raw_query}&{added}" if request.raw_query else added
        signed_pairs = parse_query(query)
        if session_token is not None and not sign_session_token:
            signed_pairs = [pair for pair in signed_pairs if pair[0] != "X-Amz-Security-Token"]
        unsigned = HttpRequest(
            request.method, request.raw_path, query, tuple(headers), request.payload_sha256
        )
        canonical = canonical_request(
            unsigned, signed, body_hash, normalize_path=normalize_path, query=signed_pairs
        )
        signature = mac(key, string_to_sign(timestamp, scope, canonical))
        return HttpRequest(
            request.method,
            request.raw_path,
            f"{query}&X-Amz-Signature={signature}",
            tuple(headers),
            request.payload_sha256,
        )

    headers.append(("X-Amz-Date", timestamp))
    signed = _signed_names(headers)
    if session_token is not None:
        headers.append(("X-Amz-Security-Token", session_token))
        if sign_session_token:
            signed = tuple(sorted((*signed, "x-amz-security-token")))
    unsigned = HttpRequest(
        request.method, request.raw_path, request.raw_query, headers, request.payload_sha256
    )
    canonical = canonical_request(unsigned, signed, body_hash, normalize_path=normalize_path)
    signature = mac(key, string_to_sign(timestamp, scope, canonical))
    headers.append(
        (
            "Authorization",
            f"{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={';'.join(signed)}, "
            f"Signature={signature}",
        )
    )
    return HttpRequest(
        request.method, request.raw_path, request.raw_query, tuple(headers), request.payload_sha256
    )


def _signed_names(headers: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    names = {name.lower() for name, _ in headers}
    if "host" not in names:
        raise ValueError("a Host header is required to sign a request")
    return tuple(sorted(names - UNSIGNABLE_HEADERS))
