"""STS Query-protocol XML documents, in the shapes botocore parses.

Responses are ``<{Action}Response>`` with a ``<{Action}Result>`` and ``ResponseMetadata``; errors are
``<ErrorResponse>`` with ``Type``, ``Code``, ``Message`` and ``RequestId``. Built by string
concatenation of escaped text: faster than an ElementTree round trip and with nothing to misparse.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from xml.sax.saxutils import escape

__all__ = ["NAMESPACE", "XmlValue", "error_document", "iso8601", "response_document"]

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"

XmlValue = str | int | datetime | Mapping[str, "XmlValue"] | None


def iso8601(moment: datetime) -> str:
    """AWS's timestamp format: ``2026-11-28T14:07:34Z`` (UTC, whole seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_INVALID_XML_CHARS = {c: None for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)} | {
    0xFFFE: None,
    0xFFFF: None,
}


def _text(value: str) -> str:
    """Escape ``value`` for XML text, dropping characters XML 1.0 cannot carry."""
    return escape(value.translate(_INVALID_XML_CHARS))


def _render(fields: Mapping[str, XmlValue]) -> str:
    parts: list[str] = []
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            inner = _render(value)
        elif isinstance(value, datetime):
            inner = iso8601(value)
        else:
            inner = _text(str(value))
        parts.append(f"<{name}>{inner}</{name}>")
    return "".join(parts)


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


def error_document(fault: str, code: str, message: str, request_id: str) -> str:
    """An ``ErrorResponse`` document."""
    return (
        f'<ErrorResponse xmlns="{NAMESPACE}">'
        f"<Error><Type>{_text(fault)}</Type><Code>{_text(code)}</Code>"
        f"<Message>{_text(message)}</Message></Error>"
        f"<RequestId>{_text(request_id)}</RequestId>"
        f"</ErrorResponse>"
    )
