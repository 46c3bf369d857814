"""Which headers cross the proxy, each way.

Requests lose hop-by-hop headers (and any named in ``Connection``), the client's credentials
(``Authorization``, ``X-Amz-Security-Token``, the SigV4 date and payload headers), client-supplied
forwarding and identity headers (an upstream must only ever see fedgate's), and, for a decoded
``aws-chunked`` body, its framing headers. fedgate then adds ``Host``, the ``X-Forwarded-*``
headers the upstream is configured for (``forwarded_headers``; by default no ``X-Forwarded-Host``
to an upstream fedgate re-signs for, whose signature check would read it as the signed host) and
the upstream's own authentication. Responses lose hop-by-hop headers only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

__all__ = [
    "DEFAULT_FORWARDED",
    "DEFAULT_FORWARDED_RESIGN",
    "HOP_BY_HOP",
    "forwarded_headers",
    "request_headers",
    "response_headers",
]

#: RFC 9110 section 7.6.1 and the de facto ones proxies drop.
HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    )
)
_CREDENTIALS = frozenset(("authorization", "x-amz-security-token", "x-amz-date", "x-amz-content-sha256"))
# Set by fedgate itself; a client's own values must never reach the upstream.
_PROXY_SET = frozenset(
    ("host", "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port",
     "x-real-ip", "content-length", "expect")
)  # fmt: skip
_CHUNKED_FRAMING = frozenset(("x-amz-decoded-content-length", "x-amz-trailer"))
#: Any header with one of these prefixes could pass for a fedgate-asserted identity.
IDENTITY_PREFIXES = ("x-fedgate-",)


# What every request drops, united once rather than per request.
_REQUEST_DROP = HOP_BY_HOP | _CREDENTIALS | _PROXY_SET
_CHUNKED_REQUEST_DROP = _REQUEST_DROP | _CHUNKED_FRAMING


def _connection_listed(headers: Sequence[tuple[str, str]]) -> set[str]:
    listed: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            listed.update(token.strip().lower() for token in value.split(","))
    return listed


def request_headers(
    headers: Sequence[tuple[str, str]],
    *,
    identity_headers: Iterable[str] = (),
    decoded_chunked: bool = False,
    set_headers: Sequence[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """The client's headers that may be forwarded, before fedgate adds its own.

    ``identity_headers`` are extra names to strip (an upstream's configured identity header);
    ``decoded_chunked`` strips ``aws-chunked`` framing (``Content-Encoding: aws-chunked`` and the
    ``x-amz-decoded-content-length``/``x-amz-trailer`` headers); ``set_headers`` replace any
    client header of the same name (a canonical ``x-amz-copy-source``).
    """
    drop = _CHUNKED_REQUEST_DROP if decoded_chunked else _REQUEST_DROP
    extra = _connection_listed(headers)
    extra.update(h.lower() for h in identity_headers)
    extra.update(name.lower() for name, _ in set_headers)
    if not extra <= drop:
        drop = drop | extra
    out: list[tuple[str, str]] = []
    for name, value in headers:
        lname = name.lower()
        if lname in drop or lname.startswith(IDENTITY_PREFIXES):
            continue
        if lname == "content-encoding" and decoded_chunked:
            codings = [c.strip() for c in value.split(",") if c.strip().lower() != "aws-chunked"]
            if not codings:
                continue
            value = ",".join(codings)
        out.append((name, value))
    out.extend(set_headers)
    return out


#: What fedgate sends by default: all three, but X-Forwarded-Host to an upstream it re-signs for.
DEFAULT_FORWARDED: Final = ("X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto")
DEFAULT_FORWARDED_RESIGN: Final = ("X-Forwarded-For", "X-Forwarded-Proto")


def forwarded_headers(
    names: Sequence[str], *, client_ip: str, host: str, proto: str
) -> list[tuple[str, str]]:
    """The forwarding headers in ``names`` (``X-Forwarded-For``/``-Host``/``-Proto``): fedgate's values."""
    values = {"X-Forwarded-For": client_ip, "X-Forwarded-Host": host, "X-Forwarded-Proto": proto}
    return [(name, values[name]) for name in names]


def response_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The upstream's response headers that may reach the client."""
    listed = _connection_listed(headers)
    drop = HOP_BY_HOP | listed if listed else HOP_BY_HOP
    return [(name, value) for name, value in headers if name.lower() not in drop]
