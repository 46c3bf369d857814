"""The store sink on real stores: batches, spills, drops, replays, and what it logs."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from pathlib import Path
from typing import Any

import pytest

from gateway.audit import StoreSink
from gateway.audit.spill import SpillFile
from gateway.config import AuditSettings
from gateway.store import MemoryStore, RedisStore, Store
from gateway.testing.redis import RedisServer
from tests.audit.conftest import until


def _settings(tmp_path: Path, **overrides: Any) -> AuditSettings:
    return AuditSettings(sink="store", spill_path=tmp_path / "spill.jsonl", **overrides)


def _event(n: int) -> dict[str, Any]:
    return {"eventID": f"e-{n}", "eventName": "GetCallerIdentity", "requestID": f"r-{n}"}


async def _stream_ids(store: Store) -> list[str]:
    seen: list[str] = []
    cursor = "0"
    while page := await store.read_events("audit", after=cursor, count=1000):
        seen.extend(json.loads(fields["event"])["eventID"] for _, fields in page)
        cursor = page[-1][0]
    return seen


def _spilled_ids(path: Path) -> list[str]:
    return [json.loads(line)["eventID"] for line in path.read_text().splitlines()] if path.exists() else []


def _audit_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "gateway.audit"]


async def test_events_reach_the_stream_in_order(tmp_path: Path) -> None:
    store = MemoryStore()
    sink = StoreSink(store, _settings(tmp_path, batch_size=7))
    sink.start()
    for n in range(100):
        sink.fedgate_audit_event(_event(n))
    await until(lambda: sink.stats.appended == 100)
    await sink.close()
    assert await _stream_ids(store) == [f"e-{n}" for n in range(100)]
    stats = sink.stats
    assert (stats.received, stats.spilled, stats.dropped, stats.queued, stats.failures) == (100, 0, 0, 0, 0)
    assert not (tmp_path / "spill.jsonl").exists()


def _command_calls(server: RedisServer) -> dict[str, int]:
    """Successful calls of each command so far (INFO commandstats)."""
    with server.client() as client:
        stats = client.info("commandstats")
    return {name: int(s["calls"]) - int(s.get("failed_calls", 0)) for name, s in stats.items()}


async def test_one_round_trip_per_batch_on_redis(tmp_path: Path, private_redis: RedisServer) -> None:
    # A private server, so its command counters move only with what this test does: 100 events
    # queued before the writer runs go out as ceil(100 / 7) round trips, one XADD per event run by
    # the script (a refused NOSCRIPT attempt, the first time, is not counted).
    store = RedisStore.from_url(private_redis.url, prefix=f"{secrets.token_hex(4)}:")
    sink = StoreSink(store, _settings(tmp_path, batch_size=7))
    for n in range(100):
        sink.fedgate_audit_event(_event(n))
    before = _command_calls(private_redis)
    sink.start()
    await until(lambda: sink.stats.appended == 100)
    after = _command_calls(private_redis)
    await sink.close()
    assert await _stream_ids(store) == [f"e-{n}" for n in range(100)]
    await store.close()
    assert after.get("cmdstat_evalsha", 0) - before.get("cmdstat_evalsha", 0) == 15
    assert after["cmdstat_xadd"] - before.get("cmdstat_xadd", 0) == 100


async def test_store_down_spills_counts_and_logs_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    await store.close()  # every append now fails with ServiceUnavailable
    sink = StoreSink(store, _settings(tmp_path, batch_size=10, retry_max_seconds=0.05))
    sink.start()
    for n in range(1000):
        sink.fedgate_audit_event(_event(n))
    await until(lambda: sink.stats.failures >= 3 and sink.stats.spilled >= 990)
    await sink.close()
    stats = sink.stats
    assert (stats.received, stats.appended, stats.spilled, stats.dropped, stats.queued) == (
        1000,
        0,
        1000,
        0,
        0,
    )
    assert sorted(_spilled_ids(tmp_path / "spill.jsonl")) == sorted(f"e-{n}" for n in range(1000))
    records = _audit_records(caplog)
    # The first failure right away, a summary at close; every other failure only counted.
    assert 1 <= len(records) <= 3
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text
    assert {getattr(r, "cause", None) for r in records} == {"ServiceUnavailable"}
    assert sum(getattr(r, "audit_spilled_total", 0) == 1000 for r in records) >= 1
    assert "e-1" not in caplog.text and "GetCallerIdentity" not in caplog.text  # counts, not contents


async def test_full_spill_file_drops_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    await store.close()
    sink = StoreSink(store, _settings(tmp_path, spill_max_bytes=4096, shutdown_timeout_seconds=0))
    for n in range(200):
        sink.fedgate_audit_event(_event(n))
    await sink.close()
    stats = sink.stats
    assert stats.spilled + stats.dropped == 200
    assert 0 < stats.spilled < 200
    assert (tmp_path / "spill.jsonl").stat().st_size <= 4096
    assert _spilled_ids(tmp_path / "spill.jsonl") == [f"e-{n}" for n in range(stats.spilled)]  # the oldest
    (record,) = _audit_records(caplog)
    assert record.levelno == logging.ERROR
    assert getattr(record, "audit_dropped_total", None) == stats.dropped


async def test_full_queue_drops_without_waiting(tmp_path: Path) -> None:
    store = MemoryStore()
    sink = StoreSink(store, _settings(tmp_path, queue_size=100))
    sink.start()
    for n in range(150):  # no await: the writer gets no turn, the queue fills up
        sink.fedgate_audit_event(_event(n))
    assert (sink.stats.received, sink.stats.dropped, sink.stats.queued) == (150, 50, 100)
    await sink.close()
    assert await _stream_ids(store) == [f"e-{n}" for n in range(100)]
    assert sink.stats.appended == 100


async def test_unencodable_event_is_dropped_and_counted(tmp_path: Path) -> None:
    store = MemoryStore()
    sink = StoreSink(store, _settings(tmp_path))
    sink.start()
    looped: dict[str, Any] = {"eventID": "loop"}
    looped["self"] = looped
    sink.fedgate_audit_event(looped)
    sink.fedgate_audit_event(_event(1))
    await sink.close()
    assert (sink.stats.received, sink.stats.dropped, sink.stats.appended) == (2, 1, 1)


async def test_spill_left_by_an_earlier_run_is_replayed(tmp_path: Path) -> None:
    settings = _settings(tmp_path, batch_size=3)
    SpillFile(settings.spill_path, settings.spill_max_bytes).write(
        [json.dumps(_event(n)) for n in range(10)] + ["not an event"]
    )
    store = MemoryStore()
    sink = StoreSink(store, settings)
    sink.start()
    await until(lambda: sink.stats.replayed == 10)
    await until(lambda: not list(tmp_path.iterdir()))  # delivered, so deleted
    sink.fedgate_audit_event(_event(10))
    await sink.close()
    assert await _stream_ids(store) == [f"e-{n}" for n in range(11)]
    stats = sink.stats
    assert (stats.received, stats.appended, stats.replayed, stats.discarded) == (1, 1, 10, 1)


async def test_event_after_close_is_spilled(tmp_path: Path) -> None:
    sink = StoreSink(MemoryStore(), _settings(tmp_path))
    sink.start()
    await sink.close()
    await sink.close()  # idempotent
    sink.fedgate_audit_event(_event(1))
    assert sink.stats.spilled == 1
    assert _spilled_ids(tmp_path / "spill.jsonl") == ["e-1"]


async def test_store_down_keeps_at_most_two_batches_in_memory(tmp_path: Path) -> None:
    # What a crash would lose while the store is down: the writer sleeps through a long backoff,
    # but is woken to spill whenever another batch has queued up.
    store = MemoryStore()
    await store.close()
    sink = StoreSink(store, _settings(tmp_path, batch_size=10, retry_max_seconds=60))
    sink.start()
    sink.fedgate_audit_event(_event(0))
    await until(lambda: sink.stats.failures >= 2)  # backing off (0.05 s, then 0.1 s, ...)
    most = 0
    for n in range(1, 300):
        sink.fedgate_audit_event(_event(n))
        await asyncio.sleep(0)
        most = max(most, sink.stats.queued)
    assert most <= 20
    await sink.close()
    stats = sink.stats
    assert (stats.received, stats.spilled, stats.dropped) == (300, 300, 0)
    assert sorted(_spilled_ids(tmp_path / "spill.jsonl")) == sorted(f"e-{n}" for n in range(300))
