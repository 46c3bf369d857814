"""Strict parsing of a SigV4 signature, header or presigned-query form, before any crypto.

The caller needs the access key id (and session token) to find the secret, so parsing is a phase
of its own: :func:`parse_signature` checks the structure and returns a :class:`SignatureInfo`;
:func:`~gateway.sigv4.verify` then does the time checks and the cryptography.

Rules enforced here (AWS's, tightened where AWS is lax):

* exactly one mechanism: an ``Authorization`` header or ``X-Amz-*`` query parameters, not both;
* algorithm ``AWS4-HMAC-SHA256`` only (no SigV2, no SigV4a);
* header form: ``Credential=``, ``SignedHeaders=`` and ``Signature=`` each exactly once, nothing
  else; the request time comes from ``X-Amz-Date`` (ISO 8601 basic) or, failing that, ``Date``
  (ISO 8601 basic or IMF-fixdate), and that header must be signed;
* query form: ``X-Amz-Algorithm``, ``-Credential``, ``-Date``, ``-Expires``, ``-SignedHeaders`` and
  ``-Signature`` each exactly once; ``X-Amz-Expires`` within 1..604800;
* ``Credential`` is ``AKID/YYYYMMDD/region/service/aws4_request`` and its date equals the date part
  of the request time;
* ``SignedHeaders`` are lowercase header tokens, strictly sorted, at most 128, and include ``host``
  (AWS requires it) and ``x-amz-content-sha256`` when that header is sent (S3 requires it; it
  decides the payload hash);
* ``Signature`` is 64 lowercase hex digits.

Whether an ``X-Amz-Security-Token`` header must be signed is a verification option
(``unsigned_session_token``), since some AWS services accept it appended after signing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

from gateway.errors import IncompleteSignature, InvalidParameterValue, SignatureDoesNotMatch
from gateway.sigv4.canonical import parse_query
from gateway.sigv4.model import (
    ALGORITHM,
    MAX_ACCESS_KEY_ID_LEN,
    MAX_AUTHORIZATION_LEN,
    MAX_EXPIRES,
    MAX_SCOPE_PART_LEN,
    MAX_SIGNED_HEADERS,
    MAX_TOKEN_LEN,
    TERMINATOR,
    HttpRequest,
    SignatureInfo,
)

__all__ = ["QUERY_AUTH_PARAMETERS", "parse_amz_date", "parse_signature", "signature_form", "signed_service"]

_SIGNATURE = re.compile(r"[0-9a-f]{64}")  # one pass in C (str.strip(chars) scans the set per character)
_DIGITS = "0123456789"
_AKID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
_SCOPE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"
# RFC 9110 token characters, lowercase only.
_HEADER_TOKEN = "abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~"  # noqa: S105 - not a secret
_HEADER_TOKEN_OR_SEMICOLON = _HEADER_TOKEN + ";"
_AUTH_FIELDS = ("Credential", "SignedHeaders", "Signature")
_QUERY_REQUIRED = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
#: The presigned-URL parameters (a proxy consumes them and never forwards them).
QUERY_AUTH_PARAMETERS = frozenset((*_QUERY_REQUIRED, "X-Amz-Security-Token"))
# Headers parse_signature looks at; each may appear at most once.
_SINGLE_HEADERS = frozenset(
    ("authorization", "x-amz-date", "date", "x-amz-security-token", "x-amz-content-sha256", "host")
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def _only(chars: str, value: str) -> bool:
    # strip() leaves nothing iff every character of value is in chars (done in C).
    return not value.strip(chars)


def signature_form(request: HttpRequest) -> Literal["header", "query"] | None:
    """Which SigV4 form ``request`` claims to use, or ``None`` when it is unsigned.

    A cheap test for endpoints that accept both signed and unsigned calls (STS): it does not
    validate anything; :func:`parse_signature` does.
    """
    for name, _ in request.headers:
        if name.lower() == "authorization":
            return "header"
    if "X-Amz-" in request.raw_query and any(
        n in QUERY_AUTH_PARAMETERS for n, _ in parse_query(request.raw_query)
    ):
        return "query"
    return None


def signed_service(authorization: str | None, raw_query: str) -> str | None:
    """The service a request claims to be signed for, from its credential scope; ``None`` if unsigned.

    A cheap, unvalidated peek for routing (one URL serving STS, IAM and proxied services, as
    ``AWS_ENDPOINT_URL`` wants): the ``Credential=`` of a SigV4 ``Authorization`` header or the
    ``X-Amz-Credential`` of a presigned URL; SigV2 (``AWS key:signature``, ``AWSAccessKeyId``)
    exists only for S3. ``""`` when the request is signed but no service can be read.
    :func:`parse_signature` and :func:`~gateway.sigv4.verify` still decide everything.
    """
    if authorization is not None:
        if authorization.startswith("AWS "):
            return "s3"
        _, found, rest = authorization.partition("Credential=")
        parts = rest.partition(",")[0].strip().split("/") if found else []
        return parts[3] if len(parts) == 5 else ""
    if not raw_query:
        return None
    _, found, rest = raw_query.partition("X-Amz-Credential=")
    if found:
        parts = rest.partition("&")[0].replace("%2F", "/").replace("%2f", "/").split("/")
        return parts[3] if len(parts) == 5 else ""
    if "AWSAccessKeyId=" in raw_query:
        return "s3"
    return None


def _collect_headers(request: HttpRequest) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in request.headers:
        lname = name.lower()
        if lname in _SINGLE_HEADERS:
            if lname in found:
                raise IncompleteSignature(f"The request has more than one '{lname}' header.")
            found[lname] = value
    return found


def parse_amz_date(value: str) -> datetime:
    """Parse ISO 8601 basic ``YYYYMMDDTHHMMSSZ`` into an aware UTC datetime."""
    if len(value) != 16 or value[8] != "T" or value[15] != "Z" or not _only(_DIGITS, value[:8] + value[9:15]):
        raise IncompleteSignature("Date must be in ISO-8601 'basic format'.")
    try:
        # The shape is checked above; fromisoformat (C) then validates the calendar and is ~20x
        # faster than building the datetime by hand.
        return datetime.fromisoformat(value)
    except ValueError:
        raise IncompleteSignature("Date must be in ISO-8601 'basic format'.") from None


def _parse_http_date(value: str) -> datetime:
    # IMF-fixdate only ("Sun, 06 Nov 1994 08:49:37 GMT"), the form botocore sends; or ISO basic.
    value = value.strip()
    if len(value) == 16:
        return parse_amz_date(value)
    parts = value.split(" ")
    if len(parts) != 6 or parts[5] != "GMT" or len(parts[0]) != 4 or parts[2] not in _MONTHS:
        raise IncompleteSignature("The Date header must be an ISO-8601 basic date or an HTTP IMF-fixdate.")
    clock = parts[4].split(":")
    fields = (parts[3], parts[1], *clock)
    if len(clock) != 3 or not all(f and _only(_DIGITS, f) for f in fields):
        raise IncompleteSignature("The Date header must be an ISO-8601 basic date or an HTTP IMF-fixdate.")
    try:
        hour, minute, second = (int(f) for f in clock)
        return datetime(int(parts[3]), _MONTHS[parts[2]], int(parts[1]), hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise IncompleteSignature("The Date header is not a valid date.") from None


# The credential scope and signed-header list of one session repeat on each of its requests: both
# parsers are pure functions of one string, so their answers are kept (an error is never cached).
_PARSED_MAX = 4096


@lru_cache(maxsize=_PARSED_MAX)
def _parse_credential(value: str) -> tuple[str, str, str, str]:
    parts = value.split("/")
    if len(parts) != 5 or parts[4] != TERMINATOR:
        raise IncompleteSignature(
            "Credential must have the form <access key id>/<date>/<region>/<service>/aws4_request."
        )
    akid, date, region, service, _ = parts
    if not (0 < len(akid) <= MAX_ACCESS_KEY_ID_LEN and _only(_AKID_CHARS, akid)):
        raise IncompleteSignature("The access key id in the credential scope is malformed.")
    if len(date) != 8 or not _only(_DIGITS, date):
        raise IncompleteSignature("The date in the credential scope must be YYYYMMDD.")
    for part in (region, service):
        if not (0 < len(part) <= MAX_SCOPE_PART_LEN and _only(_SCOPE_CHARS, part)):
            raise IncompleteSignature("The region or service in the credential scope is malformed.")
    return akid, date, region, service


@lru_cache(maxsize=_PARSED_MAX)
def _parse_signed_headers(value: str) -> tuple[str, ...]:
    names = value.split(";")
    if len(names) > MAX_SIGNED_HEADERS:
        raise IncompleteSignature("Too many signed headers.")
    # Whole-string checks instead of a per-name loop: this runs on every request.
    if "" in names or not _only(_HEADER_TOKEN_OR_SEMICOLON, value) or names != sorted(set(names)):
        raise IncompleteSignature("SignedHeaders must be lowercase header names, sorted, without repeats.")
    if "host" not in names:
        raise IncompleteSignature("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    if "authorization" in names:
        raise IncompleteSignature("'Authorization' cannot be a 'SignedHeader'.")
    return tuple(names)


def _check_signature(value: str) -> str:
    if not _SIGNATURE.fullmatch(value):
        raise IncompleteSignature("Signature must be 64 lowercase hexadecimal characters.")
    return value


def _check_token(value: str | None) -> str | None:
    if value is not None and not (0 < len(value) <= MAX_TOKEN_LEN):
        raise IncompleteSignature("The security token is empty or too long.")
    return value


def parse_signature(request: HttpRequest) -> SignatureInfo:
    """Parse and strictly validate the SigV4 signature of ``request`` (see the module docstring).

    Raises :class:`IncompleteSignature` for a missing or malformed signature,
    :class:`SignatureDoesNotMatch` when the credential date disagrees with the request time, and
    :class:`InvalidParameterValue` for both mechanisms at once or ``X-Amz-Expires`` out of range.
    No message echoes request data.
    """
    headers = _collect_headers(request)
    if "host" not in headers:
        raise IncompleteSignature("The request has no 'Host' header.")
    query = parse_query(request.raw_query) if "X-Amz-" in request.raw_query else []
    has_query_auth = any(name in QUERY_AUTH_PARAMETERS for name, _ in query)
    authorization = headers.get("authorization")
    if authorization is not None:
        if has_query_auth:
            raise InvalidParameterValue(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the "
                "Authorization header should be specified."
            )
        info = _parse_header_form(authorization, headers)
    elif has_query_auth:
        info = _parse_query_form(query, headers)
    else:
        raise IncompleteSignature("Request is missing Authentication Token.")
    if info.date != info.timestamp[:8]:
        raise SignatureDoesNotMatch(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP."
        )
    if "x-amz-content-sha256" in headers and "x-amz-content-sha256" not in info.signed_headers:
        raise IncompleteSignature("'x-amz-content-sha256' must be a 'SignedHeader'.")
    return info


def _parse_header_form(authorization: str, headers: dict[str, str]) -> SignatureInfo:
    if len(authorization) > MAX_AUTHORIZATION_LEN:
        raise IncompleteSignature("The Authorization header is too long.")
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignature(f"Unsupported authorization type; only {ALGORITHM} is accepted.")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        key, eq, value = item.strip().partition("=")
        if not eq or key not in _AUTH_FIELDS or key in fields:
            raise IncompleteSignature(
                "Authorization header must hold exactly one each of Credential, SignedHeaders, Signature."
            )
        fields[key] = value
    for key in _AUTH_FIELDS:
        if key not in fields:
            raise IncompleteSignature(f"Authorization header requires '{key}' parameter.")
    akid, date, region, service = _parse_credential(fields["Credential"])
    signed = _parse_signed_headers(fields["SignedHeaders"])
    amz_date = headers.get("x-amz-date")
    if amz_date is not None:
        timestamp, time_header = amz_date.strip(), "x-amz-date"
        when = parse_amz_date(timestamp)
    elif "date" in headers:
        when, time_header = _parse_http_date(headers["date"]), "date"
        timestamp = when.strftime("%Y%m%dT%H%M%SZ")
    else:
        raise IncompleteSignature(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if time_header not in signed:
        raise IncompleteSignature(f"'{time_header}' must be a 'SignedHeader' in the AWS Authorization.")
    return SignatureInfo(
        form="header",
        access_key_id=akid,
        date=date,
        region=region,
        service=service,
        signed_headers=signed,
        signature=_check_signature(fields["Signature"]),
        amz_date=when,
        timestamp=timestamp,
        security_token=_check_token(headers.get("x-amz-security-token")),
    )


def _parse_query_form(query: list[tuple[str, str]], headers: dict[str, str]) -> SignatureInfo:
    params: dict[str, str] = {}
    for name, value in query:
        if name in QUERY_AUTH_PARAMETERS:
            if name in params:
                raise IncompleteSignature(f"The query parameter '{name}' appears more than once.")
            params[name] = value
    for name in _QUERY_REQUIRED:
        if name not in params:
            raise IncompleteSignature(f"Presigned request requires the '{name}' query parameter.")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise IncompleteSignature(f"Unsupported X-Amz-Algorithm; only {ALGORITHM} is accepted.")
    if "x-amz-security-token" in headers:
        raise InvalidParameterValue("A presigned request must not also carry an X-Amz-Security-Token header.")
    expires = params["X-Amz-Expires"]
    if not (0 < len(expires) <= 6 and _only(_DIGITS, expires)) or not 1 <= int(expires) <= MAX_EXPIRES:
        raise InvalidParameterValue(
            f"X-Amz-Expires must be a whole number of seconds from 1 to {MAX_EXPIRES}."
        )
    akid, date, region, service = _parse_credential(params["X-Amz-Credential"])
    timestamp = params["X-Amz-Date"]
    return SignatureInfo(
        form="query",
        access_key_id=akid,
        date=date,
        region=region,
        service=service,
        signed_headers=_parse_signed_headers(params["X-Amz-SignedHeaders"]),
        signature=_check_signature(params["X-Amz-Signature"]),
        amz_date=parse_amz_date(timestamp),
        timestamp=timestamp,
        security_token=_check_token(params.get("X-Amz-Security-Token")),
        expires=int(expires),
    )
