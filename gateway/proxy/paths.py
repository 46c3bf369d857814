"""Path safety: decode a wire path once, refuse ambiguous spellings, and re-encode canonically.

The policy decides on the decoded path; the upstream must receive exactly that path. So the proxy
never forwards the client's spelling: it forwards :func:`encode_segments` of the very segments the
mapping saw, which an upstream decoding once turns back into the same string. Spellings that
upstreams disagree on are refused outright (fail closed):

* dot segments (``.``, ``..``, also when percent-encoded): some upstreams resolve them, some not;
* an encoded slash (``%2F``) where segments matter (everywhere but an S3 key, where AWS itself
  reads ``%2F`` as ``/``);
* a decoded segment still holding a percent escape (``%252e`` decodes to ``%2e``): an upstream
  that decodes twice would see something else (but in an S3 key, which S3 decodes exactly once, a
  literal ``%2F`` is just three characters of the key, sent ``%252F`` by botocore and the JS SDK;
  only a literal ``%2e`` stays refused there, which a second decoding would make a dot segment);
* control characters, invalid UTF-8, a path not starting with ``/``, or an oversized path.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from gateway.errors import InvalidParameterValue

__all__ = ["MAX_PATH_LEN", "decode_path", "encode_segments", "join_path"]

MAX_PATH_LEN = 8192
_UNRESERVED = "-_.~"
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
# In an S3 key a literal escape is text, but never one that a second decoding makes a dot.
_DOT_ESCAPE = re.compile(r"%2[Ee]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A path of unreserved characters and slashes only: no escape to decode, no control character,
# no backslash (one pass in C; most S3 keys and API paths).
_PLAIN = re.compile(r"/[A-Za-z0-9\-_.~/]*")


def _bad(what: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"The request path is not acceptable: {what}.")


def decode_path(raw_path: str, *, encoded_slash: bool = False) -> tuple[str, ...]:
    """Decode the wire path ``raw_path`` into its segments, refusing ambiguous spellings.

    ``/a/b`` gives ``("a", "b")``, ``/`` gives ``()``, and a trailing slash gives a last empty
    segment (``/a/`` is ``("a", "")``). With ``encoded_slash`` (S3 keys) a ``%2F`` splits a segment
    as a literal ``/`` would, and a segment may decode to text holding an escape (the key
    ``a%2Fb`` is sent ``a%252Fb``); otherwise both are refused. Raises :class:`InvalidParameterValue`.
    """
    if not raw_path.startswith("/"):
        raise _bad("it must start with /")
    if len(raw_path) > MAX_PATH_LEN:
        raise _bad("it is too long")
    if raw_path == "/":
        return ()
    if _PLAIN.fullmatch(raw_path):
        # Nothing to decode, no control character: only the segment rules below apply.
        segments = raw_path[1:].split("/")
    else:
        segments = _decoded_segments(raw_path, encoded_slash)
    if "." in segments or ".." in segments:
        raise _bad("it contains a dot segment")
    if not encoded_slash:
        # Outside S3 keys, "//" and "\\" are spellings upstreams disagree on (many merge slashes or
        # read a backslash as one), so "//admin" could dodge a Deny on "/admin": refuse them.
        if "" in segments[:-1]:
            raise _bad("it contains an empty segment")
        if any("\\" in segment for segment in segments):
            raise _bad("it contains a backslash")
    return tuple(segments)


def _decoded_segments(raw_path: str, encoded_slash: bool) -> list[str]:
    segments: list[str] = []
    for raw in raw_path[1:].split("/"):
        if "%" in raw:
            try:
                decoded = unquote(raw, errors="strict")
            except UnicodeDecodeError:
                raise _bad("it is not valid percent-encoded UTF-8") from None
            if "%" in decoded and (_DOT_ESCAPE if encoded_slash else _ESCAPE).search(decoded):
                raise _bad("it is percent-encoded more than once")
        else:
            decoded = raw
        if _CONTROL.search(decoded):
            raise _bad("it contains control characters")
        parts = decoded.split("/")
        if len(parts) > 1 and not encoded_slash:
            raise _bad("it contains an encoded slash")
        segments.extend(parts)
    return segments


def encode_segments(segments: tuple[str, ...] | list[str]) -> str:
    """The canonical wire form of ``segments``: ``/`` + each ``UriEncode``-d, joined by ``/``."""
    return "/" + "/".join(quote(segment, safe=_UNRESERVED) for segment in segments)


def join_path(base: str, path: str) -> str:
    """``path`` (canonical, starting with ``/``) under an upstream's plain ``base`` path."""
    base = base.rstrip("/")
    return f"{base}{path}" if base else path
