"""AWS Signature Version 4: parsing, verification and signing, free of any web framework.

Verification is two-phase because the secret lives inside the sealed session token::

    info = parse_signature(request)              # structure only: who claims to have signed
    secret = unseal(info.security_token, ...)    # the caller finds the secret for info.access_key_id
    verify(request, info, secret, now=now, region=..., service=..., keys=cache)

Modules: :mod:`.model` (value types, limits), :mod:`.canonical` (canonical request, string to
sign), :mod:`.parse` (strict parsing), :mod:`.keys` (key derivation and its LRU), :mod:`.verify`,
:mod:`.sign`.
"""

from __future__ import annotations

from gateway.sigv4.canonical import (
    canonical_headers,
    canonical_query,
    canonical_request,
    canonical_uri,
    parse_query,
    string_to_sign,
    uri_encode,
)
from gateway.sigv4.keys import SigningKeyCache, derive_signing_key
from gateway.sigv4.model import (
    ALGORITHM,
    DEFAULT_MAX_SKEW,
    EMPTY_SHA256,
    MAX_EXPIRES,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    UNSIGNED_PAYLOAD,
    HttpRequest,
    SignatureInfo,
    Verified,
)
from gateway.sigv4.parse import parse_signature, signature_form
from gateway.sigv4.sign import UNSIGNABLE_HEADERS, sign
from gateway.sigv4.verify import check_scope, check_time, payload_hash, verify

__all__ = [
    "ALGORITHM",
    "DEFAULT_MAX_SKEW",
    "EMPTY_SHA256",
    "MAX_EXPIRES",
    "STREAMING_UNSIGNED_PAYLOAD_TRAILER",
    "UNSIGNABLE_HEADERS",
    "UNSIGNED_PAYLOAD",
    "HttpRequest",
    "SignatureInfo",
    "SigningKeyCache",
    "Verified",
    "canonical_headers",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "check_scope",
    "check_time",
    "derive_signing_key",
    "parse_query",
    "parse_signature",
    "payload_hash",
    "sign",
    "signature_form",
    "string_to_sign",
    "uri_encode",
    "verify",
]
