"""Argument checks and conversions shared by the backends, so both refuse the same inputs."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

_EVENT_ID = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?\Z")


def check_ttl(ttl: float) -> None:
    """Refuse a TTL or window that is not a positive, finite number of seconds."""
    if not (isinstance(ttl, int | float) and math.isfinite(ttl) and ttl > 0):
        raise ValueError("ttl must be a positive number of seconds")


def check_number(value: float) -> float:
    """Refuse NaN and infinities, which would break the "only moves forward" rule."""
    if not (isinstance(value, int | float) and math.isfinite(value)):
        raise ValueError("value must be a finite number")
    return float(value)


def ttl_ms(ttl: float) -> int:
    """Whole milliseconds for Redis ``PX``, never rounding a positive TTL down to zero."""
    check_ttl(ttl)
    return max(1, math.ceil(ttl * 1000))


def check_event(event: Mapping[str, str], maxlen: int) -> dict[str, str]:
    """Return ``event`` as a plain dict after checking it can be stored as a stream entry."""
    if maxlen < 1:
        raise ValueError("maxlen must be at least 1")
    if not event:
        raise ValueError("an event needs at least one field")
    fields = dict(event)
    for name, value in fields.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("event fields and values must be strings")
    return fields


def check_events(events: Sequence[Mapping[str, str]], maxlen: int) -> list[dict[str, str]]:
    """:func:`check_event` for a whole batch, so a bad event refuses the batch before any write."""
    if maxlen < 1:
        raise ValueError("maxlen must be at least 1")
    return [check_event(event, maxlen) for event in events]


def event_id_key(event_id: str) -> tuple[int, int]:
    """Parse a stream id (``"MS-SEQ"`` or ``"MS"``) into a sortable pair."""
    match = _EVENT_ID.match(event_id)
    if match is None:
        raise ValueError("event ids look like 1700000000000-0")
    return int(match.group(1)), int(match.group(2) or 0)


def parse_number(raw: bytes | None) -> float | None:
    """Read a number written by ``set_max`` or ``incr``; anything else is absent."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
