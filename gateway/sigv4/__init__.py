"""AWS Signature Version 4: parsing, verification and signing, free of any web framework.

Verification is two-phase because the secret lives inside the sealed session token::

    info = parse_signature(request)              # structure only: who claims to have signed
    secret = unseal(info.security_token, ...)    # the caller finds the secret for info.access_key_id
    verify(request, info, secret, now=now, region=..., service=..., keys=cache)

Streaming uploads (S3 ``aws-chunked`` bodies) are checked as they arrive. When the signed
``x-amz-content-sha256`` is ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`` or
``STREAMING-UNSIGNED-PAYLOAD-TRAILER``, :func:`verify` checks the seed signature and returns
:attr:`Verified.streaming`; the body then goes through a :class:`ChunkedDecoder`::

    decoder = ChunkedDecoder(verified.streaming)
    for data in body:                            # any split of the wire bytes
        for piece in decoder.feed(data):         # signed chunks only once verified
            forward(piece)
    trailers = decoder.finish()                  # complete, length and checksum checked

A decoder holds at most one chunk (16 MiB cap) and fails closed; unsigned chunks are released as
they arrive, so the caller must not complete the upstream request before ``finish()`` returns.
:func:`sign_chunked` and :func:`encode_unsigned_chunked` write such bodies (tests, re-signing).

Modules: :mod:`.model` (value types, limits), :mod:`.canonical` (canonical request, string to
sign), :mod:`.parse` (strict parsing), :mod:`.keys` (key derivation and its LRU), :mod:`.verify`,
:mod:`.sign`, :mod:`.chunked` (aws-chunked streaming payloads).
"""

from __future__ import annotations

from gateway.sigv4.canonical import (
    canonical_headers,
    canonical_query,
    canonical_request,
    canonical_uri,
    parse_query,
    percent_decode,
    string_to_sign,
    uri_encode,
)
from gateway.sigv4.chunked import (
    ChunkedDecoder,
    checksum_value,
    encode_unsigned_chunked,
    sign_chunked,
    streaming_context,
)
from gateway.sigv4.keys import SigningKeyCache, derive_signing_key
from gateway.sigv4.model import (
    ALGORITHM,
    DEFAULT_MAX_SKEW,
    EMPTY_SHA256,
    MAX_EXPIRES,
    MAX_QUERY_LEN,
    MAX_QUERY_PARAMS,
    STREAMING_AWS4_HMAC_SHA256_PAYLOAD,
    STREAMING_AWS4_HMAC_SHA256_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    UNSIGNED_PAYLOAD,
    HttpRequest,
    SignatureInfo,
    StreamingContext,
    Verified,
)
from gateway.sigv4.parse import QUERY_AUTH_PARAMETERS, parse_signature, signature_form, signed_service
from gateway.sigv4.sign import UNSIGNABLE_HEADERS, sign
from gateway.sigv4.verify import check_scope, check_time, payload_hash, verify

__all__ = [
    "ALGORITHM",
    "DEFAULT_MAX_SKEW",
    "EMPTY_SHA256",
    "MAX_EXPIRES",
    "MAX_QUERY_LEN",
    "MAX_QUERY_PARAMS",
    "QUERY_AUTH_PARAMETERS",
    "STREAMING_AWS4_HMAC_SHA256_PAYLOAD",
    "STREAMING_AWS4_HMAC_SHA256_PAYLOAD_TRAILER",
    "STREAMING_UNSIGNED_PAYLOAD_TRAILER",
    "UNSIGNABLE_HEADERS",
    "UNSIGNED_PAYLOAD",
    "ChunkedDecoder",
    "HttpRequest",
    "SignatureInfo",
    "SigningKeyCache",
    "StreamingContext",
    "Verified",
    "canonical_headers",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "check_scope",
    "check_time",
    "checksum_value",
    "derive_signing_key",
    "encode_unsigned_chunked",
    "parse_query",
    "parse_signature",
    "payload_hash",
    "percent_decode",
    "sign",
    "sign_chunked",
    "signature_form",
    "signed_service",
    "streaming_context",
    "string_to_sign",
    "uri_encode",
    "verify",
]
