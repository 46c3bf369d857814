"""AWS Signature Version 2 for S3: the ``AWS key:signature`` header and ``AWSAccessKeyId`` URLs.

Still the default of some stock clients (the aws CLI v1's ``s3 presign``, boto3's S3 presigner
unless told otherwise, ``s3cmd signurl``), so the proxy accepts it where an upstream allows it
(``allow_sigv2``). The signature is ``base64(HMAC-SHA1(secret, StringToSign))`` with::

    StringToSign = VERB \\n Content-MD5 \\n Content-Type \\n Date-or-Expires \\n
                   CanonicalizedAmzHeaders CanonicalizedResource

``CanonicalizedAmzHeaders`` are the ``x-amz-*`` headers, lowercase, sorted, values trimmed and
repeats joined with ``,``, one ``name:value\\n`` each; the ``Date`` line is empty when
``x-amz-date`` is sent. ``CanonicalizedResource`` is ``/bucket`` for a virtual-hosted request, then
the path exactly as sent, then the subresources S3 lists (sorted, values decoded). The body is not
signed (only its ``Content-MD5``, when sent). Two phases as for SigV4: :func:`parse_sigv2` reads
who claims to have signed (access key id, session token), :func:`verify_sigv2` checks the time and
the signature once the caller found the secret. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final, Literal, final

from gateway.errors import AccessDenied, IncompleteSignature, RequestTimeTooSkewed, SignatureDoesNotMatch
from gateway.sigv4.canonical import MISMATCH_MESSAGE, parse_query
from gateway.sigv4.model import DEFAULT_MAX_SKEW, MAX_ACCESS_KEY_ID_LEN, MAX_AUTHORIZATION_LEN, HttpRequest

__all__ = [
    "SIGV2_QUERY_PARAMETERS",
    "SigV2Info",
    "covered_by_signature",
    "is_sigv2",
    "parse_sigv2",
    "string_to_sign_v2",
    "verify_sigv2",
]

#: The presigned-URL parameters of SigV2 (a proxy consumes them and never forwards them).
SIGV2_QUERY_PARAMETERS: Final = frozenset(("AWSAccessKeyId", "Signature", "Expires", "x-amz-security-token"))
# The subresources that are part of the canonical resource (botocore's HmacV1Auth list).
_SUBRESOURCES: Final = frozenset(
    (
        "accelerate", "acl", "cors", "defaultObjectAcl", "location", "logging", "partNumber", "policy",
        "requestPayment", "torrent", "versioning", "versionId", "versions", "website", "uploads",
        "uploadId", "response-content-type", "response-content-language", "response-expires",
        "response-cache-control", "response-content-disposition", "response-content-encoding",
        "delete", "lifecycle", "tagging", "restore", "storageClass", "notification", "replication",
        "requestPayment", "analytics", "metrics", "inventory", "select", "select-type", "object-lock",
    )
)  # fmt: skip
_AKID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
# The last second datetime can hold (9999-12-31T23:59:59Z): a later Expires is no time at all.
_MAX_EXPIRES = 253402300799


@final
@dataclass(frozen=True, slots=True)
class SigV2Info:
    """What :func:`parse_sigv2` read, before any crypto: nothing here is authenticated yet.

    ``when`` is the request time (header form) or the expiry (query form, ``Expires``);
    ``date_line`` is what goes on the string to sign's date line.
    """

    form: Literal["header", "query"]
    access_key_id: str
    signature: bytes = field(repr=False)
    when: datetime
    date_line: str
    security_token: str | None = None


def is_sigv2(authorization: str | None, raw_query: str) -> bool:
    """Whether a request claims a SigV2 signature (cheap; :func:`parse_sigv2` validates)."""
    if authorization is not None:
        return authorization.startswith("AWS ")
    return "AWSAccessKeyId=" in raw_query and "Signature=" in raw_query


def covered_by_signature(name: str, form: Literal["header", "query"]) -> bool:
    """Whether SigV2's string to sign covers the query parameter ``name``: the subresources S3
    lists, the signature's own parameters, and (presigned URLs only) the ``x-amz-*``,
    ``Content-MD5`` and ``Content-Type`` parameters that stand for headers. Anything else in the
    query can be changed without breaking the signature, so whoever acts on a parameter must
    refuse it when it is not covered (a header-form ``x-amz-copy-source`` turning a PUT into a copy,
    a ``legal-hold`` turning a presigned GET into another operation)."""
    if name in _SUBRESOURCES or name in SIGV2_QUERY_PARAMETERS:
        return True
    lname = name.lower()
    return form == "query" and (lname.startswith("x-amz-") or lname in ("content-md5", "content-type"))


def _headers(request: HttpRequest) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in request.headers:
        found.setdefault(name.lower(), []).append(value)
    return found


def _single(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise IncompleteSignature(f"The request has more than one '{name}' header.")
    return values[0].strip()


def _signature(value: str) -> bytes:
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != 20:
        raise IncompleteSignature("A SigV2 signature is the base64 of an HMAC-SHA1.")
    return decoded


def _access_key(value: str) -> str:
    if not (0 < len(value) <= MAX_ACCESS_KEY_ID_LEN and not value.strip(_AKID_CHARS)):
        raise IncompleteSignature("The access key id is malformed.")
    return value


def parse_sigv2(request: HttpRequest) -> SigV2Info:
    """Parse the SigV2 header or query form of ``request``; :class:`IncompleteSignature` if malformed."""
    headers = _headers(request)
    authorization = _single(headers, "authorization")
    if authorization is not None:
        if len(authorization) > MAX_AUTHORIZATION_LEN or not authorization.startswith("AWS "):
            raise IncompleteSignature("The Authorization header is not a SigV2 'AWS key:signature'.")
        key, colon, signature = authorization[4:].strip().rpartition(":")
        if not colon:
            raise IncompleteSignature("The Authorization header is not a SigV2 'AWS key:signature'.")
        amz_date = _single(headers, "x-amz-date")
        date = amz_date if amz_date is not None else _single(headers, "date")
        if date is None:
            raise IncompleteSignature("A SigV2 request needs a Date or x-amz-date header.")
        try:
            when = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            raise IncompleteSignature("The Date header is not an HTTP date.") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return SigV2Info(
            form="header",
            access_key_id=_access_key(key),
            signature=_signature(signature),
            when=when,
            date_line="" if amz_date is not None else date,
            security_token=_single(headers, "x-amz-security-token"),
        )
    params: dict[str, str] = {}
    for name, value in parse_query(request.raw_query):
        if name in SIGV2_QUERY_PARAMETERS:
            if name in params:
                raise IncompleteSignature(f"The query parameter '{name}' appears more than once.")
            params[name] = value
    for name in ("AWSAccessKeyId", "Signature", "Expires"):
        if name not in params:
            raise IncompleteSignature(f"A SigV2 presigned request requires the '{name}' query parameter.")
    expires = params["Expires"]
    if not (
        0 < len(expires) <= 12 and expires.isdigit() and expires.isascii() and int(expires) <= _MAX_EXPIRES
    ):
        raise IncompleteSignature("Expires must be a whole number of seconds since the epoch.")
    token = params.get("x-amz-security-token") or _single(headers, "x-amz-security-token")
    return SigV2Info(
        form="query",
        access_key_id=_access_key(params["AWSAccessKeyId"]),
        signature=_signature(params["Signature"]),
        when=datetime.fromtimestamp(int(expires), UTC),
        date_line=expires,
        security_token=token,
    )


def _canonical_amz_headers(request: HttpRequest, extra: Sequence[tuple[str, str]]) -> str:
    values: dict[str, list[str]] = {}
    for name, value in (*request.headers, *extra):
        lname = name.lower()
        if lname.startswith("x-amz-"):
            values.setdefault(lname, []).append(" ".join(value.split()))
    return "".join(f"{name}:{','.join(values[name])}\n" for name in sorted(values))


def _canonical_resource(request: HttpRequest, bucket: str | None) -> str:
    resource = (f"/{bucket}" if bucket else "") + (request.raw_path or "/")
    subresources = sorted(
        (name, value) for name, value in parse_query(request.raw_query) if name in _SUBRESOURCES
    )
    if any("&" in value for _, value in subresources):
        # Values are joined decoded: partNumber=1%26uploadId%3Du would sign as two subresources.
        raise IncompleteSignature("A signed subresource's value may not contain '&'.")
    if subresources:
        resource += "?" + "&".join(f"{n}={v}" if v else n for n, v in subresources)
    return resource


def string_to_sign_v2(request: HttpRequest, info: SigV2Info, *, bucket: str | None = None) -> str:
    """SigV2's string to sign for ``request`` (``bucket``: the virtual-hosted bucket, if any)."""
    headers = _headers(request)
    extra: list[tuple[str, str]] = []
    if info.form == "query":
        # A presigned URL carries its x-amz-* headers (the session token among them), Content-MD5
        # and Content-Type as query parameters, signed as the headers they stand for.
        for name, value in parse_query(request.raw_query):
            lname = name.lower()
            if lname.startswith("x-amz-") or lname in ("content-md5", "content-type"):
                if lname in headers:
                    raise IncompleteSignature(f"The request gives {lname} as a header and a parameter.")
                extra.append((lname, value))
    hoisted = dict(extra)
    return "\n".join(
        (
            request.method,
            (_single(headers, "content-md5") or hoisted.get("content-md5", "")),
            (_single(headers, "content-type") or hoisted.get("content-type", "")),
            info.date_line,
            _canonical_amz_headers(request, [(n, v) for n, v in extra if n.startswith("x-amz-")])
            + _canonical_resource(request, bucket),
        )
    )


def verify_sigv2(
    request: HttpRequest,
    info: SigV2Info,
    secret_key: str,
    *,
    now: datetime,
    bucket: str | None = None,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
) -> None:
    """Check the time and the SigV2 signature of ``request``.

    Header form: the request time within ``max_skew`` of ``now`` (:class:`RequestTimeTooSkewed`);
    query form: ``Expires`` not passed (:class:`AccessDenied`, "Request has expired"). A wrong
    signature is :class:`SignatureDoesNotMatch`.
    """
    if info.form == "header":
        if abs(info.when - now) > max_skew:
            raise RequestTimeTooSkewed(
                "The difference between the request time and the current time is too large."
            )
    elif now > info.when:
        raise AccessDenied("Request has expired")
    to_sign = string_to_sign_v2(request, info, bucket=bucket)
    expected = hmac.digest(secret_key.encode("utf-8"), to_sign.encode("utf-8"), "sha1")
    if not hmac.compare_digest(expected, info.signature):
        raise SignatureDoesNotMatch(MISMATCH_MESSAGE)
