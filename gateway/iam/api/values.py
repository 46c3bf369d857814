"""Parameter validators beyond :mod:`.params`: booleans, bounded integers, enums, free text,
version ids, URLs and lists of strings, with IAM's ``ValidationError`` wording.

Each factory returns a :data:`~gateway.iam.api.params.Validator`: it reads the parameter from the
call's map and returns the value, or ``None`` when it is absent. Messages and length checks are
:mod:`.params`' own (:func:`~gateway.iam.api.params.constraint`, :func:`~gateway.iam.api.params.length`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gateway.errors import ValidationError
from gateway.iam.api.params import Args, Validator, camel, constraint, length
from gateway.iam.params import member_list
from gateway.sts.params import QueryParams

__all__ = ["boolean", "enum", "flag", "integer", "pattern", "strings", "text"]

_DESCRIPTION_RE = re.compile(r"^[\t\n\r\u0020-\u007e\u00a1-\u00ff]*\Z")


def boolean(params: QueryParams, wire: str) -> bool | None:
    """``true`` or ``false``."""
    raw = params.get(wire)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise constraint(wire, raw, "be a boolean")
    return raw.lower() == "true"


def flag(args: Args, wire: str, default: bool = False) -> bool:
    """A :func:`boolean` parameter's value, ``default`` when it was not given."""
    value = dict(args.items()).get(wire)
    assert value is None or isinstance(value, bool)
    return default if value is None else value


def integer(low: int, high: int) -> Validator:
    """An integer from ``low`` to ``high``."""

    def validate(params: QueryParams, wire: str) -> int | None:
        raw = params.get(wire)
        if raw is None:
            return None
        if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
            raise constraint(wire, raw, "be an integer")
        value = int(raw)
        if value < low:
            raise constraint(wire, raw, f"have value greater than or equal to {low}")
        if value > high:
            raise constraint(wire, raw, f"have value less than or equal to {high}")
        return value

    return validate


def enum(*allowed: str) -> Validator:
    """One of ``allowed``."""

    def validate(params: QueryParams, wire: str) -> str | None:
        raw = params.get(wire)
        if raw is None or raw in allowed:
            return raw
        raise constraint(wire, raw, f"satisfy enum value set: [{', '.join(allowed)}]")

    return validate


def text(low: int, high: int, regex: re.Pattern[str] = _DESCRIPTION_RE, shown: str = "") -> Validator:
    """Text of ``low`` to ``high`` characters matching ``regex`` (by default IAM's description
    characters: tab, newlines, printable ASCII and Latin-1)."""
    shown = shown or r"[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*"

    def validate(params: QueryParams, wire: str) -> str | None:
        raw = params.get(wire)
        if raw is None:
            return None
        length(wire, raw, low, high)
        if not regex.match(raw):
            raise constraint(wire, raw, f"satisfy regular expression pattern: {shown}")
        return raw

    return validate


def pattern(regex: re.Pattern[str], shown: str, low: int, high: int) -> Validator:
    """Text of ``low`` to ``high`` characters matching ``regex`` (``shown`` in the message)."""
    return text(low, high, regex, shown)


def strings(low: int, high: int, *, most: int, regex: re.Pattern[str] | None = None) -> Validator:
    """A list ``Name.member.N`` of at most ``most`` strings of ``low`` to ``high`` characters."""

    def validate(params: QueryParams, wire: str) -> list[str] | None:
        values = member_list(params.values, wire)
        if not values:
            return None
        if len(values) > most:
            raise ValidationError(
                f"1 validation error detected: Value at '{camel(wire)}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {most}"
            )
        out: Sequence[str] = [length(f"{wire}.member.{n}", v, low, high) for n, v in enumerate(values, 1)]
        if regex is not None:
            for n, v in enumerate(out, 1):
                if not regex.match(v):
                    raise constraint(
                        f"{wire}.member.{n}", v, f"satisfy regular expression pattern: {regex.pattern}"
                    )
        return list(out)

    return validate
