"""AWS's UTC timestamp text (``2026-11-28T14:07:34Z``), written without ``strftime``.

``datetime.strftime`` goes through the C library's locale-aware formatter and builds a time tuple
first: about 3% of an ``AssumeRoleWithWebIdentity`` call, which writes three timestamps (the trust
context's ``aws:CurrentTime``, the response's and the audit record's ``Expiration``). Formatting
the ``datetime``'s own fields gives the same text (the seconds are the ``datetime``'s, so an epoch
is rounded to the microsecond exactly as ``datetime.fromtimestamp`` rounds it).
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso8601", "iso8601_epoch"]

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
