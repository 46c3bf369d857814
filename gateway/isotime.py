"""AWS's UTC timestamp text (``2026-11-28T14:07:34Z``), written without ``strftime``.

``datetime.strftime`` goes through the C library's locale-aware formatter and builds a time tuple
first: about 3% of an ``AssumeRoleWithWebIdentity`` call, which writes three timestamps (the trust
context's ``aws:CurrentTime``, the response's and the audit record's ``Expiration``). Formatting
the ``datetime``'s own fields gives the same text (the seconds are the ``datetime``'s, so an epoch
is rounded to the microsecond exactly as ``datetime.fromtimestamp`` rounds it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import final

__all__ = ["amz_basic_second", "iso8601", "iso8601_epoch", "iso8601_second"]

# Two-digit fields by lookup: a format spec ("{:02d}") costs more than strftime saved.
_TWO = tuple(f"{i:02d}" for i in range(100))


def iso8601(moment: datetime) -> str:
    """``moment`` in UTC to the whole second: ``moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")``."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    year = moment.year
    two = _TWO
    return (
        f"{year if year >= 1000 else f'{year:04d}'}-{two[moment.month]}-{two[moment.day]}"
        f"T{two[moment.hour]}:{two[moment.minute]}:{two[moment.second]}Z"
    )


def iso8601_epoch(epoch: float) -> str:
    """``epoch`` (seconds) as :func:`iso8601` writes ``datetime.fromtimestamp(epoch, UTC)``."""
    return iso8601(datetime.fromtimestamp(epoch, UTC))


@final
class _PerSecond:
    """A formatter of whole epoch seconds that remembers its last answer: every request handled
    within one second asks for the same text (``aws:CurrentTime``, a re-signed ``X-Amz-Date``)."""

    __slots__ = ("_format", "_last")

    def __init__(self, format_: Callable[[datetime], str]) -> None:
        self._format = format_
        self._last: tuple[int, str] | None = None

    def __call__(self, epoch: int) -> str:
        last = self._last
        if last is not None and last[0] == epoch:
            return last[1]
        text = self._format(datetime.fromtimestamp(epoch, UTC))
        self._last = (epoch, text)  # one tuple, replaced whole: safe to read from any thread
        return text


def _basic(moment: datetime) -> str:
    two = _TWO
    return (
        f"{moment.year:04d}{two[moment.month]}{two[moment.day]}"
        f"T{two[moment.hour]}{two[moment.minute]}{two[moment.second]}Z"
    )


#: ``epoch`` (whole seconds) as :func:`iso8601` writes it (``2026-11-28T14:07:34Z``).
iso8601_second = _PerSecond(iso8601)
#: ``epoch`` (whole seconds) in SigV4's ISO 8601 basic form (``20261128T140734Z``).
amz_basic_second = _PerSecond(_basic)
