"""STS Query-protocol XML documents, in the shapes botocore parses.

Responses are ``<{Action}Response>`` with a ``<{Action}Result>`` and ``ResponseMetadata``; errors are
``<ErrorResponse>`` with ``Type``, ``Code``, ``Message`` and ``RequestId``. Built by string
concatenation of escaped text: faster than an ElementTree round trip and with nothing to misparse.
"""

from __future__ import annotations

import re
from collections.abc import Collection, ItemsView, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, final
from xml.sax.saxutils import escape

from gateway.isotime import iso8601

__all__ = [
    "NAMESPACE",
    "Repeated",
    "XmlValue",
    "error_document",
    "iso8601",
    "response_document",
    "xml_value",
]

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"

XmlValue = str | int | datetime | Mapping[str, "XmlValue"] | None


_INVALID_XML_CHARS = {c: None for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)} | {
    0xFFFE: None,
    0xFFFF: None,
}
# What _text changes: markup characters and what XML 1.0 cannot carry. Most values (key ids,
# base64 secrets and tokens, ARNs, timestamps) contain none, and one search in C tells.
_NEEDS_ESCAPING = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _plain(text: str) -> bool:
    """Whether ``text`` surely needs no escaping: printable, without markup characters.

    A quick test in C, several times cheaper than the search below (whose character class costs
    tens of instructions a character): every character XML 1.0 cannot carry is unprintable, so
    ``False`` only ever sends text to the exact check.
    """
    return text.isprintable() and "&" not in text and "<" not in text and ">" not in text


def _text(value: str) -> str:
    """Escape ``value`` for XML text, dropping characters XML 1.0 cannot carry."""
    if _plain(value) or _NEEDS_ESCAPING.search(value) is None:
        return value
    return escape(value.translate(_INVALID_XML_CHARS))


def _collect(fields: Mapping[str, XmlValue], out: list[str], texts: list[int]) -> None:
    # Markup and unescaped text into ``out``; ``texts`` holds the positions of the text pieces.
    # Strings first, and plain dicts before the abstract Mapping check, which costs several times
    # as much: those are what results hold.
    for name, value in fields.items():
        if value is None:
            continue
        out.append(f"<{name}>")
        if isinstance(value, str):
            texts.append(len(out))
            out.append(value)
        elif isinstance(value, dict | Mapping):
            _collect(value, out, texts)
        elif isinstance(value, datetime):
            out.append(iso8601(value))  # digits, "-", ":", "T" and "Z" only
        else:
            texts.append(len(out))
            out.append(str(value))
        out.append(f"</{name}>")


def _render(fields: Mapping[str, XmlValue]) -> str:
    out: list[str] = []
    texts: list[int] = []
    _collect(fields, out, texts)
    # One search over all the text at once (the pattern matches single characters, so joining
    # can neither hide nor make a match): most documents need no escaping anywhere, and a search
    # per value cost more in setting up the search than in scanning.
    text = "".join([out[i] for i in texts])
    if not _plain(text) and _NEEDS_ESCAPING.search(text) is not None:
        for i in texts:
            out[i] = _text(out[i])
    return "".join(out)


def response_document(
    action: str, result: Mapping[str, XmlValue], request_id: str, *, namespace: str = NAMESPACE
) -> str:
    """The success document for ``action``; ``None`` fields are omitted."""
    return (
        f'<{action}Response xmlns="{namespace}">'
        f"<{action}Result>{_render(result)}</{action}Result>"
        f"<ResponseMetadata><RequestId>{_text(request_id)}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    )


class _Pairs(ItemsView[str, XmlValue]):
    def __init__(self, repeated: Repeated) -> None:
        super().__init__(repeated)
        self._repeated = repeated

    def __iter__(self) -> Iterator[tuple[str, XmlValue]]:
        return ((self._repeated.tag, v) for v in self._repeated.values_)


@final
class Repeated(Mapping[str, XmlValue]):
    """A list in the Query protocol's XML: one ``<tag>`` element per value, in order.

    The renderer walks ``items()`` of mappings; this mapping yields the same tag once per value,
    which is how ``<member>`` lists (and a map's ``<entry>`` elements) are spelled.
    """

    def __init__(self, tag: str, values: Sequence[XmlValue]) -> None:
        self.tag = tag
        self.values_ = tuple(values)

    def __getitem__(self, key: str) -> XmlValue:
        if key == self.tag and self.values_:
            return self.values_[0]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter([self.tag] * len(self.values_))

    def __len__(self) -> int:
        return len(self.values_)

    def items(self) -> ItemsView[str, XmlValue]:
        return _Pairs(self)


def xml_value(value: Any, *, maps: Collection[str] = (), name: str = "") -> XmlValue:
    """botocore-shaped Python values as renderable ones: lists become ``<member>`` lists, booleans
    ``true``/``false``; a mapping under a name in ``maps`` is an AWS map
    (``<entry><key/><value/></entry>``), any other mapping a structure."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return Repeated("member", [xml_value(v, maps=maps) for v in value])
    if isinstance(value, Mapping):
        if name in maps:
            return Repeated("entry", [{"key": k, "value": v} for k, v in value.items()])
        return {k: xml_value(v, maps=maps, name=k) for k, v in value.items()}
    if value is None or isinstance(value, str | int | datetime):
        return value
    raise TypeError(f"cannot render {type(value).__name__}")


def error_document(fault: str, code: str, message: str, request_id: str) -> str:
    """An ``ErrorResponse`` document."""
    return (
        f'<ErrorResponse xmlns="{NAMESPACE}">'
        f"<Error><Type>{_text(fault)}</Type><Code>{_text(code)}</Code>"
        f"<Message>{_text(message)}</Message></Error>"
        f"<RequestId>{_text(request_id)}</RequestId>"
        f"</ErrorResponse>"
    )
