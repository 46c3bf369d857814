"""Typed context entries (``ContextEntries`` of the simulation API, ``--context`` of the CLI).

Each entry names a condition key, its values and a ``ContextKeyType``. A scalar type takes exactly
one value; a ``...List`` type takes any number (an empty list is a key present with no values,
which ``ForAnyValue`` treats as false and ``ForAllValues`` as true). Values are checked against
their type here, so a simulation is never decided on a value the caller did not mean.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from gateway.errors import ValidationError
from gateway.policy.conditions import parse_date, parse_number

__all__ = ["CONTEXT_KEY_TYPES", "ContextEntry", "ContextKeyType", "build_context"]

ContextKeyType = Literal[
    "string",
    "stringList",
    "numeric",
    "numericList",
    "boolean",
    "booleanList",
    "ip",
    "ipList",
    "binary",
    "binaryList",
    "date",
    "dateList",
]
CONTEXT_KEY_TYPES: tuple[str, ...] = get_args(ContextKeyType)
_KEY_RE = re.compile(r"^[\x21-\x7e]{5,256}\Z")
_MAX_VALUES = 100
_MAX_VALUE_CHARS = 2048


@dataclass(frozen=True, slots=True)
class ContextEntry:
    """One condition key with its typed values."""

    name: str
    values: tuple[str, ...]
    type: ContextKeyType = "string"

    def __post_init__(self) -> None:
        if not _KEY_RE.match(self.name):
            raise ValidationError(
                f"ContextKeyName {self.name[:64]!r} must be 5-256 printable characters without spaces"
            )
        if self.type not in CONTEXT_KEY_TYPES:
            raise ValidationError(f"ContextKeyType must be one of {', '.join(CONTEXT_KEY_TYPES)}")
        if not self.type.endswith("List") and len(self.values) != 1:
            raise ValidationError(f"Context key {self.name}: type {self.type} takes exactly one value")
        if len(self.values) > _MAX_VALUES:
            raise ValidationError(f"Context key {self.name}: more than {_MAX_VALUES} values")
        for value in self.values:
            if len(value) > _MAX_VALUE_CHARS:
                raise ValidationError(f"Context key {self.name}: a value is longer than {_MAX_VALUE_CHARS}")
            if not _valid(self.type.removesuffix("List"), value):
                raise ValidationError(f"Context key {self.name}: {value[:64]!r} is not a valid {self.type}")

    @property
    def is_list(self) -> bool:
        """Whether the key is multi-valued."""
        return self.type.endswith("List")


def _valid(base: str, value: str) -> bool:
    try:
        if base == "numeric":
            parse_number(value)
        elif base == "date":
            parse_date(value)
        elif base == "boolean":
            return value.lower() in ("true", "false")
        elif base == "ip":
            ipaddress.ip_address(value.strip())
        elif base == "binary":
            base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        return False
    return True


def build_context(entries: Iterable[ContextEntry]) -> Mapping[str, str | Sequence[str]]:
    """The request context of ``entries`` (keys compare case-insensitively: a repeat is refused)."""
    out: dict[str, str | Sequence[str]] = {}
    seen: set[str] = set()
    for entry in entries:
        low = entry.name.lower()
        if low in seen:
            raise ValidationError(f"Context key {entry.name} is given more than once")
        seen.add(low)
        out[entry.name] = entry.values if entry.is_list else entry.values[0]
    return out
