"""SigV4 verification: scope, time, payload hash and the signature itself."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from gateway.errors import (
    AccessDenied,
    IncompleteSignature,
    InvalidParameterValue,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)
from gateway.sigv4.canonical import MISMATCH_MESSAGE, canonical_request, parse_query, string_to_sign
from gateway.sigv4.chunked import streaming_context
from gateway.sigv4.keys import SigningKeyCache, derive_signing_key, hmac_hex
from gateway.sigv4.model import (
    DEFAULT_MAX_SKEW,
    STREAMING_AWS4_HMAC_SHA256_PAYLOAD,
    STREAMING_AWS4_HMAC_SHA256_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    UNSIGNED_PAYLOAD,
    HttpRequest,
    SignatureInfo,
    Verified,
)

__all__ = ["check_scope", "check_time", "payload_hash", "verify"]

_HEX_ANY_CASE = "0123456789abcdefABCDEF"
_EXCLUDE_SIGNATURE = frozenset(("X-Amz-Signature",))
_EXCLUDE_SIGNATURE_AND_TOKEN = frozenset(("X-Amz-Signature", "X-Amz-Security-Token"))
_CHUNK_SIGNED = frozenset((STREAMING_AWS4_HMAC_SHA256_PAYLOAD, STREAMING_AWS4_HMAC_SHA256_PAYLOAD_TRAILER))
# An aws-chunked body only comes with an upload (PutObject, UploadPart).
_UPLOAD_METHODS = frozenset(("PUT", "POST"))


def check_scope(info: SignatureInfo, *, region: str | None = None, service: str | None = None) -> None:
    """Reject a credential scope for another region or service (:class:`SignatureDoesNotMatch`)."""
    if region is not None and info.region != region:
        raise SignatureDoesNotMatch("Credential should be scoped to a valid region.")
    if service is not None and info.service != service:
        raise SignatureDoesNotMatch(f"Credential should be scoped to correct service: '{service}'.")


def check_time(info: SignatureInfo, *, now: datetime, max_skew: timedelta = DEFAULT_MAX_SKEW) -> None:
    """Reject a request outside its time window.

    Header form: more than ``max_skew`` from ``now`` either way -> :class:`RequestTimeTooSkewed`.
    Query form: signed more than ``max_skew`` in the future -> :class:`RequestTimeTooSkewed`; past
    ``X-Amz-Date + X-Amz-Expires`` -> :class:`AccessDenied` ("Request has expired"). The caller caps
    the lifetime further by the credentials' own expiry. ``now`` must be timezone-aware.
    """
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    skew = info.amz_date - now
    if info.form == "header":
        if abs(skew) > max_skew:
            raise RequestTimeTooSkewed(
                "The difference between the request time and the current time is too large."
            )
        return
    if info.expires is None:
        raise IncompleteSignature("Presigned request requires the 'X-Amz-Expires' query parameter.")
    if skew > max_skew:
        raise RequestTimeTooSkewed("The request time is too far in the future.")
    if now > info.amz_date + timedelta(seconds=info.expires):
        raise AccessDenied("Request has expired")


def _content_sha256_header(request: HttpRequest) -> str | None:
    for name, value in request.headers:
        if name.lower() == "x-amz-content-sha256":
            return value.strip()
    return None


def payload_hash(request: HttpRequest, info: SignatureInfo) -> tuple[str, bool]:
    """The payload hash the signature must cover, and whether it was checked against the body.

    A signed ``x-amz-content-sha256`` header decides, as AWS does: a hex digest (compared with
    ``request.payload_sha256`` when given), ``UNSIGNED-PAYLOAD`` (S3 or query form only) or
    ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` (S3 header form only), ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``
    and ``...-PAYLOAD-TRAILER`` (S3 header form, PUT or POST only). SigV4a streaming
    (``STREAMING-AWS4-ECDSA-*``) is refused. Without the header, an S3 presigned URL covers
    ``UNSIGNED-PAYLOAD`` and everything else covers the body, so ``payload_sha256`` is required.
    """
    declared = _content_sha256_header(request) if "x-amz-content-sha256" in info.signed_headers else None
    if info.form == "query" and "X-Amz-Content-Sha256=" in request.raw_query:
        # A presigned URL may carry the header in its (signed) query instead: the JavaScript SDK's
        # presigner puts X-Amz-Content-Sha256=UNSIGNED-PAYLOAD there.
        hoisted = [v for n, v in parse_query(request.raw_query) if n == "X-Amz-Content-Sha256"]
        if len(hoisted) > 1 or (declared is not None and hoisted):
            raise InvalidParameterValue("The request gives X-Amz-Content-Sha256 more than once.")
        declared = hoisted[0].strip() if hoisted else declared
    if declared is not None:
        if len(declared) == 64 and not declared.strip(_HEX_ANY_CASE):
            computed = request.payload_sha256
            if computed is not None and computed != declared.lower():
                raise SignatureDoesNotMatch(
                    "The provided 'x-amz-content-sha256' header does not match what was computed."
                )
            return declared, computed is not None
        if declared == UNSIGNED_PAYLOAD and (info.service == "s3" or info.form == "query"):
            return declared, False
        if declared == STREAMING_UNSIGNED_PAYLOAD_TRAILER and info.service == "s3" and info.form == "header":
            return declared, False
        if declared in _CHUNK_SIGNED and info.service == "s3" and info.form == "header":
            if request.method not in _UPLOAD_METHODS:
                raise InvalidParameterValue("A chunk-signed streaming payload is only valid for an upload.")
            return declared, False
        if declared.startswith("STREAMING-AWS4-ECDSA-"):
            raise InvalidParameterValue("SigV4a (ECDSA) streaming payloads are not supported.")
        raise InvalidParameterValue("The x-amz-content-sha256 header is not valid for this request.")
    if info.form == "query" and info.service == "s3":
        return UNSIGNED_PAYLOAD, False
    if request.payload_sha256 is None:
        raise ValueError("payload_sha256 is required to verify a request whose body is signed")
    return request.payload_sha256, True


def verify(
    request: HttpRequest,
    info: SignatureInfo,
    secret_key: str,
    *,
    now: datetime,
    region: str | None = None,
    service: str | None = None,
    normalize_path: bool = True,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    unsigned_session_token: bool = False,
    keys: SigningKeyCache | None = None,
) -> Verified:
    """Verify the SigV4 signature ``info`` (from :func:`parse_signature`) of ``request``.

    ``secret_key`` belongs to ``info.access_key_id``; the caller must also make sure the session
    token it unsealed the secret from is bound to that access key id. ``region``/``service``, when
    given, must match the credential scope. ``normalize_path=False`` is S3's single-encoding mode.

    ``unsigned_session_token`` accepts a session token appended after signing (AWS STS and IoT
    allow it; the aws-c-auth suite calls it ``omit_session_token``): in the header form the
    ``X-Amz-Security-Token`` header may then be unsigned; in the query form the
    ``X-Amz-Security-Token`` parameter is then left out of the canonical query. By default a session
    token must be signed, as every AWS SDK does.

    ``keys`` caches derived signing keys across calls. For a ``STREAMING-*`` payload hash the seed
    signature is checked here and :attr:`Verified.streaming` carries what
    :class:`~gateway.sigv4.chunked.ChunkedDecoder` needs to check the body. Returns :class:`Verified`; raises
    :class:`SignatureDoesNotMatch`, :class:`RequestTimeTooSkewed`, :class:`AccessDenied`,
    :class:`IncompleteSignature` or :class:`InvalidParameterValue`. No message contains the secret,
    the expected signature or the canonical request.
    """
    check_scope(info, region=region, service=service)
    check_time(info, now=now, max_skew=max_skew)
    if (
        info.form == "header"
        and info.security_token is not None
        and not unsigned_session_token
        and "x-amz-security-token" not in info.signed_headers
    ):
        raise IncompleteSignature("'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.")
    body_hash, checked = payload_hash(request, info)
    exclude = _EXCLUDE_SIGNATURE_AND_TOKEN if unsigned_session_token else _EXCLUDE_SIGNATURE
    canonical = canonical_request(
        request,
        info.signed_headers,
        body_hash,
        normalize_path=normalize_path,
        exclude_query=exclude if info.form == "query" else (),
    )
    to_sign = string_to_sign(info.timestamp, info.scope, canonical)
    if keys is None:
        key = derive_signing_key(secret_key, info.date, info.region, info.service)
        expected = hmac_hex(key, to_sign)
    else:
        key = keys.get(secret_key, info.date, info.region, info.service)
        expected = keys.hmac_hex(key, to_sign)
    if not hmac.compare_digest(expected.encode(), info.signature.encode()):
        raise SignatureDoesNotMatch(MISMATCH_MESSAGE)
    streaming = (
        streaming_context(request, info, body_hash, key) if body_hash.startswith("STREAMING-") else None
    )
    return Verified(info=info, payload_hash=body_hash, payload_checked=checked, streaming=streaming)
