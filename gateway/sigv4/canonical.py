"""The SigV4 canonical request and string to sign.

Both sides of the protocol build these: the signer from what it will send, the verifier from what
it received. The verifier re-derives everything from the raw request, so two spellings of the same
request on the wire (``%7E`` and ``~`` in a query, ``a  b`` and ``a b`` in a header) canonicalise
the same way, exactly as AWS does.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from functools import lru_cache
from string import ascii_letters, digits
from urllib.parse import quote, unquote, unquote_to_bytes

from gateway.errors import InvalidParameterValue, SignatureDoesNotMatch
from gateway.sigv4.model import ALGORITHM, MAX_QUERY_LEN, MAX_QUERY_PARAMS, HttpRequest

__all__ = [
    "canonical_headers",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "parse_query",
    "percent_decode",
    "remove_dot_segments",
    "string_to_sign",
    "uri_encode",
]

_UNRESERVED = ascii_letters + digits + "-_.~"
_PATH_SAFE = _UNRESERVED + "/"
# "Only these characters" tests. A character-class match runs in C in one pass, where
# str.rstrip(chars) tests each character against the whole set (five times slower on a
# presigned URL's token and query).
_ALL_UNRESERVED = re.compile(r"[A-Za-z0-9\-_.~]*")
_ALL_PATH_SAFE = re.compile(r"[A-Za-z0-9\-_.~/]*")
_ALL_PATH_SAFE_OR_PERCENT = re.compile(r"[A-Za-z0-9\-_.~/%]*")
_ALL_QUERY_SAFE = re.compile(r"[A-Za-z0-9\-_.~%=&]*")
# Escapes that survive decode-then-UriEncode unchanged: uppercase hex, not of an unreserved byte or '/'.
_CANONICAL_PATH_ESCAPES = frozenset(f"{b:02X}" for b in range(256) if chr(b) not in _PATH_SAFE)
# ... and in S3's single-encoding mode an encoded slash, which S3 signs as sent.
_S3_PATH_ESCAPES = _CANONICAL_PATH_ESCAPES | {"2F"}
_ENCODED_SLASH = re.compile("%2[Ff]")

MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


def uri_encode(value: str) -> str:
    """AWS ``UriEncode``: percent-encode the UTF-8 bytes of everything but ``A-Za-z0-9-_.~``."""
    # The common all-plain case spares quote().
    if _ALL_UNRESERVED.fullmatch(value):
        return value
    return quote(value, safe="")


def _uri_encode_path(value: str) -> str:
    if _ALL_PATH_SAFE.fullmatch(value):
        return value
    return quote(value, safe="/")


def percent_decode(value: str) -> str:
    """``value`` percent-decoded as strict UTF-8 (``+`` stays literal); InvalidParameterValue if not."""
    if "%" not in value:
        return value
    try:
        if value.isascii():  # what unquote() does for one ASCII run, without its regex split
            return unquote_to_bytes(value).decode("utf-8")
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise InvalidParameterValue("The request is not valid percent-encoded UTF-8.") from None


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Split a raw query string into percent-decoded ``(name, value)`` pairs, in order.

    ``+`` is kept literally (SigV4 clients encode a space as ``%20``); empty segments are skipped.
    Raises :class:`InvalidParameterValue` for an oversized query or invalid UTF-8.
    """
    if not raw_query:
        return []
    return list(_parse_query(raw_query))


# A presigned URL's query is parsed by the signature form test, the parser, the verifier and the
# body-hash check of one request: decoded once (a pure function of the string; errors are not
# kept), for the few requests in progress at a time.
_QUERY_MEMO = 64


@lru_cache(maxsize=_QUERY_MEMO)
def _parse_query(raw_query: str) -> tuple[tuple[str, str], ...]:
    if len(raw_query) > MAX_QUERY_LEN:
        raise InvalidParameterValue("The query string is too long.")
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append(
            (
                percent_decode(name) if "%" in name else name,
                percent_decode(value) if "%" in value else value,
            )
        )
    if len(pairs) > MAX_QUERY_PARAMS:
        raise InvalidParameterValue("The query string has too many parameters.")
    return tuple(pairs)


def canonical_query(pairs: Sequence[tuple[str, str]], exclude: Collection[str] = ()) -> str:
    """The canonical query string of decoded ``pairs``, leaving out the names in ``exclude``.

    Names and values are ``UriEncode``-d, then sorted by name and, for repeated names, by value.
    """
    encoded = sorted((uri_encode(name), uri_encode(value)) for name, value in pairs if name not in exclude)
    return "&".join([f"{name}={value}" for name, value in encoded])


# An escape UriEncode never writes: not two uppercase hex digits, or the escape of an unreserved
# byte (- . 0-9 A-Z _ a-z ~).
_NON_CANONICAL_ESCAPE = re.compile(
    r"%(?![0-9A-F]{2})|%(?:2[DE]|3[0-9]|4[1-9A-F]|5[0-9AF]|6[1-9A-F]|7[0-9AE])"
)


@lru_cache(maxsize=_QUERY_MEMO)
def _wire_canonical_query(raw_query: str, exclude: frozenset[str]) -> str:
    # The canonical query of a raw query string, as canonical_query(parse_query(raw), exclude).
    # When every name and value is UriEncode-d already (what SDK presigners write: only safe
    # characters, escapes UriEncode writes, at most one '=' per part), decoding and encoding again
    # is the identity on each, so the wire parts are the encoded pairs: sorted as they are, without
    # a decode and encode of each (a presigned URL's long token and credential).
    pairs = _parse_query(raw_query) if raw_query else ()  # validates: size, count, UTF-8
    if not raw_query or not _ALL_QUERY_SAFE.fullmatch(raw_query) or _NON_CANONICAL_ESCAPE.search(raw_query):
        return canonical_query(pairs, exclude)
    parts: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        if part:
            name, _, value = part.partition("=")
            if "=" in value:
                return canonical_query(pairs, exclude)
            parts.append((name, value))
    parts.sort()
    skip = {uri_encode(name) for name in exclude}
    return "&".join([f"{name}={value}" for name, value in parts if name not in skip])


def remove_dot_segments(path: str) -> str:
    """Remove ``.``/``..`` segments and collapse repeated slashes, as AWS (and botocore) do."""
    if not path:
        return "/"
    if "." not in path and "//" not in path:
        return path
    out: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if out:
                out.pop()
        else:
            out.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and out else ""
    return first + "/".join(out) + last


def canonical_uri(raw_path: str, *, normalize_path: bool = True) -> str:
    """The canonical URI of a wire path.

    ``normalize_path=True`` is every service but S3: dot segments are removed, slashes collapsed and
    the (already encoded) wire path is encoded once more, so ``%20`` becomes ``%2520``.
    ``normalize_path=False`` is S3: the path is percent-decoded once (to bytes) and ``UriEncode``-d
    with ``/`` kept, so the canonical form is single-encoded and segments are taken literally; an
    encoded slash (``%2F``) stays one, as S3 signs the path exactly as sent.
    """
    if normalize_path:
        return _uri_encode_path(remove_dot_segments(raw_path))
    if not raw_path:
        return "/"
    if _is_canonically_escaped(raw_path):
        return raw_path
    if "%2F" in raw_path or "%2f" in raw_path:
        # S3 signs the path as sent: an encoded slash stays an encoded slash, never a separator.
        return "%2F".join(_s3_encode(piece) for piece in _ENCODED_SLASH.split(raw_path))
    return _s3_encode(raw_path)


def _s3_encode(raw: str) -> str:
    # Byte-level, so an escape of a non-UTF-8 byte survives exactly as the fast path keeps it.
    return quote(unquote_to_bytes(raw), safe="/")


def _is_canonically_escaped(path: str) -> bool:
    # S3 clients send paths already UriEncode-d; recognising that spares a decode and re-encode.
    if not _ALL_PATH_SAFE_OR_PERCENT.fullmatch(path):
        return False
    return all(piece[:2] in _S3_PATH_ESCAPES for piece in path.split("%")[1:])


def canonical_headers(headers: Sequence[tuple[str, str]], signed_headers: Sequence[str]) -> str:
    """The canonical header block (without the trailing blank line) for the signed header names.

    Values of a repeated header are joined with ``,`` in arrival order; each value is trimmed and
    runs of whitespace (including folded lines) become one space. ``signed_headers`` must be the
    sorted lowercase names. A signed header missing from the request cannot be what the client
    signed, so it raises :class:`SignatureDoesNotMatch`.
    """
    wanted = set(signed_headers)
    values: dict[str, list[str]] = {}
    for name, value in headers:
        lname = name.lower()
        if lname in wanted:
            trimmed = " ".join(value.split())
            found = values.get(lname)
            if found is None:
                values[lname] = [trimmed]
            else:
                found.append(trimmed)
    lines: list[str] = []
    for name in signed_headers:
        found = values.get(name)
        if found is None:
            raise SignatureDoesNotMatch(MISMATCH_MESSAGE)
        lines.append(f"{name}:{','.join(found)}")
    return "\n".join(lines)


def canonical_request(
    request: HttpRequest,
    signed_headers: Sequence[str],
    payload_hash: str,
    *,
    normalize_path: bool = True,
    query: Sequence[tuple[str, str]] | None = None,
    exclude_query: Collection[str] = (),
) -> str:
    """The SigV4 canonical request of ``request``.

    ``query`` takes already-decoded query pairs (to avoid parsing twice); by default
    ``request.raw_query`` is parsed. ``exclude_query`` names parameters left out, such as
    ``X-Amz-Signature`` for a presigned URL.
    """
    if query is None:
        canonical_pairs = _wire_canonical_query(request.raw_query, frozenset(exclude_query))
    else:
        canonical_pairs = canonical_query(query, exclude_query)
    return "\n".join(
        (
            request.method,
            canonical_uri(request.raw_path, normalize_path=normalize_path),
            canonical_pairs,
            canonical_headers(request.headers, signed_headers),
            "",
            ";".join(signed_headers),
            payload_hash,
        )
    )


def string_to_sign(timestamp: str, scope: str, canonical: str) -> str:
    """The SigV4 string to sign for an ISO 8601 basic ``timestamp`` and credential ``scope``."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"
