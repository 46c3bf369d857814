"""JSON parsing with bounded nesting, for every document an unauthenticated caller can send.

Python's :func:`json.loads` recurses once per nesting level, so a few kilobytes of ``[[[[...``
end in a :class:`RecursionError` deep inside the parser (or, with a hook, inside the hook): a 500
and a traceback instead of the caller's 4xx. :func:`loads` counts the nesting first, with a scan
whose cost is linear in the text and runs in C (regular expressions, no Python loop per
character), and refuses too deep a document before the parser sees it.

Errors are :class:`JsonLimitError`, a :class:`ValueError` like :class:`json.JSONDecodeError`, so
a caller that already translates malformed JSON into its AWS error (``InvalidIdentityToken``,
``MalformedPolicyDocument``...) covers these too.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any, Final

__all__ = ["DEFAULT_MAX_DEPTH", "JsonLimitError", "check_depth", "loads"]

#: Deep enough for any document fedgate reads (policies need 7, tokens and JWKS 4), shallow enough
#: to stay far from the interpreter's recursion limit.
DEFAULT_MAX_DEPTH: Final = 32

# A string literal, or an unterminated one up to the end of the text. The closing quote is
# optional so that a match never fails once it started: no retry from a later quote, hence no
# quadratic case on adversarial input (a failed match at every quote of a long run of \").
_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_BRACKETS: Final = re.compile(r"[\[\]{}]+")
# Objects and arrays nest alike: one kind of bracket keeps every pass a plain substring replace.
_ONE_KIND: Final = str.maketrans("{}", "[]")


class JsonLimitError(ValueError):
    """The document is larger or nested deeper than allowed, or not UTF-8."""


def check_depth(text: str, max_depth: int) -> None:
    """Raise :class:`JsonLimitError` when ``text`` nests arrays and objects deeper than
    ``max_depth``, counting brackets outside string literals, or when they do not balance (the
    parser would recurse into unclosed ones just as deep before it noticed).

    Each pass deletes every innermost ``[]`` pair, so a document of depth *d* empties in *d*
    passes; at most ``max_depth + 1`` of them run, each a C-speed scan of the brackets.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return  # cannot nest deeper than it has openers: the common case costs two counts
    brackets = "".join(_BRACKETS.findall(_STRING.sub("", text))).translate(_ONE_KIND)
    depth = 0
    while brackets:
        inner = brackets.replace("[]", "")
        if len(inner) == len(brackets):
            raise JsonLimitError("document's brackets do not balance")
        depth += 1
        if depth > max_depth:
            raise JsonLimitError(f"document nests deeper than {max_depth} levels")
        brackets = inner


def loads(
    source: str | bytes | bytearray,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_chars: int | None = None,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
    parse_constant: Callable[[str], Any] | None = None,
) -> Any:
    """:func:`json.loads` for untrusted ``source``, refusing it first when it nests deeper than
    ``max_depth`` or is longer than ``max_chars`` characters.

    Bytes must be UTF-8 (RFC 8259 section 8.1). Raises :class:`JsonLimitError` for a limit and
    :class:`json.JSONDecodeError` (both :class:`ValueError`) for anything that is not JSON.
    """
    if isinstance(source, bytes | bytearray):
        try:
            text = bytes(source).decode("utf-8")
        except UnicodeDecodeError:
            raise JsonLimitError("document is not UTF-8") from None
    else:
        text = source
    if max_chars is not None and len(text) > max_chars:
        raise JsonLimitError(f"document is longer than {max_chars} characters")
    check_depth(text, max_depth)
    if object_pairs_hook is None and parse_constant is None:
        return json.loads(text)
    return _decoder(object_pairs_hook, parse_constant).decode(text)


@functools.lru_cache(maxsize=64)
def _decoder(
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None,
    parse_constant: Callable[[str], Any] | None,
) -> json.JSONDecoder:
    # json.loads builds a new decoder (and its scanner) whenever it is given a hook: more than
    # parsing a token's header costs. Decoders hold no state between calls, so one per hook pair
    # serves every call.
    return json.JSONDecoder(object_pairs_hook=object_pairs_hook, parse_constant=parse_constant)
