"""gateway.isotime writes exactly what ``strftime("%Y-%m-%dT%H:%M:%SZ")`` writes (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from gateway.isotime import iso8601, iso8601_epoch

_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Epochs from 1970 to year 9999, with fractions: rounding to the microsecond may carry a second.
_EPOCHS = st.floats(min_value=0, max_value=253402300799.0, allow_nan=False, allow_infinity=False)
_ZONES = st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(_EPOCHS)
def test_an_epoch_reads_as_strftime_writes_it(epoch: float) -> None:
    assert iso8601_epoch(epoch) == datetime.fromtimestamp(epoch, UTC).strftime(_FORMAT)


# From year 1000: glibc writes earlier years with fewer than four digits, isotime pads them as ISO 8601 says.
@given(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=_ZONES))
def test_a_datetime_in_any_zone_is_written_in_utc(moment: datetime) -> None:
    assert iso8601(moment) == moment.astimezone(UTC).strftime(_FORMAT)


def test_known_values() -> None:
    assert iso8601_epoch(0) == "1970-01-01T00:00:00Z"
    assert iso8601_epoch(1764784000.9999996) == "2025-12-03T17:46:41Z"  # rounds up, as datetime does
    assert iso8601(datetime(2026, 11, 28, 15, 7, 34, tzinfo=timezone(timedelta(hours=1)))) == (
        "2026-11-28T14:07:34Z"
    )


@given(st.lists(st.integers(min_value=0, max_value=253402300799), min_size=1, max_size=20))
def test_whole_seconds_read_as_strftime_writes_them_asked_in_any_order(epochs: list[int]) -> None:
    from gateway.isotime import amz_basic_second, iso8601_second

    for epoch in epochs + epochs[::-1]:  # each asked twice around, so the remembered one is used
        moment = datetime.fromtimestamp(epoch, UTC)
        assert iso8601_second(epoch) == moment.strftime(_FORMAT)
        assert amz_basic_second(epoch) == moment.strftime("%Y%m%dT%H%M%SZ")
