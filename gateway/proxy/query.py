"""Query strings: decoded once for mapping and policy, re-encoded canonically for the upstream.

Like the path, the query the upstream receives is rebuilt from the decoded pairs the mapping saw,
never copied from the wire, so a double-encoded or oddly spelled parameter cannot mean one thing
to the policy and another to the upstream. The client's SigV4 query parameters are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from gateway.errors import InvalidParameterValue
from gateway.sigv4 import MAX_QUERY_LEN, MAX_QUERY_PARAMS, QUERY_AUTH_PARAMETERS, percent_decode

__all__ = ["QueryParam", "encode_query", "hoist_headers", "parse_query"]


@dataclass(frozen=True, slots=True)
class QueryParam:
    """One decoded query parameter; ``bare`` when the wire had no ``=`` (``?uploads``)."""

    name: str
    value: str
    bare: bool = False


def parse_query(raw_query: str, drop: frozenset[str] = frozenset()) -> tuple[QueryParam, ...]:
    """Decode ``raw_query`` (without ``?``) into parameters, in order. ``+`` stays literal, as in SigV4.

    Parameters named in ``drop`` (the client's own signature parameters, spent before mapping) are
    left out; they still count as seen, so a repeat of one is refused like any other.
    """
    if not raw_query:
        return ()
    if len(raw_query) > MAX_QUERY_LEN:
        raise InvalidParameterValue("The query string is too long.")
    params: list[QueryParam] = []
    seen: set[str] = set()
    for part in raw_query.split("&"):
        if not part:
            continue
        raw_name, eq, value = part.partition("=")
        name = percent_decode(raw_name) if "%" in raw_name else raw_name
        # Mappings read one value and the upstream may read another (first or last wins
        # depending on its parser): a repeated name is refused, never decided one way and sent
        # another. S3 and API-Gateway-style APIs never need one.
        if name in seen:
            raise InvalidParameterValue(f"The query parameter {name[:64]!r} is given more than once.")
        seen.add(name)
        if name not in drop:  # a dropped one's value is never decoded
            params.append(QueryParam(name, percent_decode(value), bare=not eq))
    if len(seen) > MAX_QUERY_PARAMS:
        raise InvalidParameterValue("The query string has too many parameters.")
    return tuple(params)


def hoist_headers(
    params: tuple[QueryParam, ...],
) -> tuple[tuple[QueryParam, ...], tuple[tuple[str, str], ...]]:
    """S3's hoisted headers: ``x-amz-*`` query parameters of a presigned URL, read as headers.

    Presigners (the JavaScript SDK's, for one) move ``x-amz-checksum-crc32``,
    ``x-amz-sdk-checksum-algorithm``, ``x-amz-checksum-mode``, ``X-Amz-Content-Sha256`` and the
    like into the query, and S3 honours them exactly as headers. So the mapping and the policy see
    them as headers (an ``x-amz-acl`` there meets the same conditions) and the upstream receives
    them as headers. Returns the remaining parameters and the hoisted ``(lowercase name, value)``
    pairs; the SigV4 parameters themselves are left for the caller to drop.
    """
    if not any(p.name[:6].lower() == "x-amz-" for p in params):
        return params, ()
    kept: list[QueryParam] = []
    hoisted: list[tuple[str, str]] = []
    for p in params:
        if p.name[:6].lower() == "x-amz-" and p.name not in QUERY_AUTH_PARAMETERS:
            hoisted.append((p.name.lower(), p.value))
        else:
            kept.append(p)
    return tuple(kept), tuple(hoisted)


def encode_query(params: tuple[QueryParam, ...] | list[QueryParam]) -> str:
    """The canonical wire form of ``params`` (``UriEncode``, in order), minus SigV4's presigned-URL
    parameters."""
    out = []
    for p in params:
        if p.name in QUERY_AUTH_PARAMETERS:
            continue
        name = quote(p.name, safe="-_.~")
        out.append(name if p.bare and not p.value else f"{name}={quote(p.value, safe='-_.~')}")
    return "&".join(out)
