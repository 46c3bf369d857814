"""The store sink behind a gateway served on TCP: a flood, a dead store, a hung store.

Every request is a real unsigned ``GetCallerIdentity`` over HTTP (answered 403
MissingAuthenticationToken, and audited); every test accounts for each request's event by its
request id: in the Redis stream, or counted as spilled and present in the spill file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway import keys
from gateway.audit import StoreSink
from gateway.store import RedisStore
from gateway.testing.redis import RedisServer
from tests.audit.conftest import until
from tests.conftest import SHARED_REDIS_TIMEOUT, config_from, serve_app

ACCOUNT = "123456789012"
CALLER_IDENTITY = {"Action": "GetCallerIdentity", "Version": "2011-06-15"}

# A load generator in its own process, so the gateway's event loop does nothing but serve: this is
# the gateway's full rate on this machine, not what is left beside a client sharing its loop.
_FLOOD = textwrap.dedent(
    """
    import asyncio, json, sys
    import aiohttp

    async def main(url, total, concurrency):
        ids, statuses = [], {}
        todo = iter(range(total))
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def worker():
                for _ in todo:
                    form = {"Action": "GetCallerIdentity", "Version": "2011-06-15"}
                    async with session.post(url, data=form) as r:
                        await r.read()
                        statuses[r.status] = statuses.get(r.status, 0) + 1
                        ids.append(r.headers["x-amzn-RequestId"])
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        print(json.dumps({"statuses": statuses, "ids": ids}))

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    """
)


def _config(store_url: str, prefix: str, spill: Path, **audit: Any) -> Any:
    return config_from(
        {
            "account_id": ACCOUNT,
            "store": {"backend": "redis", "url": store_url, "prefix": prefix},
            "audit": {"sink": "store", "stream": "audit", "spill_path": str(spill), **audit},
        }
    )


def _sink(app: Any) -> StoreSink:
    sink = app[keys.AUDIT_SINK]
    assert isinstance(sink, StoreSink)
    return sink


async def _requests(port: int, total: int, concurrency: int = 32) -> list[str]:
    """``total`` audited requests from this process; their request ids."""
    ids: list[str] = []
    async with aiohttp.ClientSession() as session:

        async def worker(count: int) -> None:
            for _ in range(count):
                async with session.post(f"http://127.0.0.1:{port}/", data=CALLER_IDENTITY) as response:
                    assert response.status == 403
                    ids.append(response.headers["x-amzn-RequestId"])

        share, extra = divmod(total, concurrency)
        await asyncio.gather(*(worker(share + (n < extra)) for n in range(concurrency)))
    return ids


async def _stream_request_ids(url: str, prefix: str) -> list[str]:
    # A reader of the whole stream in pages of 1,000: the shared Redis on a loaded machine needs
    # the suite's generous deadline, not the 250 ms a request gets.
    reader = RedisStore.from_url(url, prefix=prefix, timeout=SHARED_REDIS_TIMEOUT)
    seen: list[str] = []
    try:
        cursor = "0"
        while page := await reader.read_events("audit", after=cursor, count=1000):
            seen.extend(json.loads(fields["event"])["requestID"] for _, fields in page)
            cursor = page[-1][0]
    finally:
        await reader.close()
    return seen


def _spilled_request_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["requestID"] for line in path.read_text().splitlines()]


def _assert_quiet(caplog: pytest.LogCaptureFixture, most: int) -> list[logging.LogRecord]:
    """At most ``most`` lines from the audit sink, and no traceback from anyone."""
    records = [r for r in caplog.records if r.name == "gateway.audit"]
    assert len(records) <= most, [r.getMessage() for r in records]
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text
    return records


async def test_flood_at_full_rate_loses_nothing(redis_url: str, redis_prefix: str, tmp_path: Path) -> None:
    total = 4000
    spill = tmp_path / "spill.jsonl"
    runner, port, app = await serve_app(_config(redis_url, redis_prefix, spill))
    try:
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _FLOOD,
            f"http://127.0.0.1:{port}/",
            str(total),
            "64",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await client.communicate()
        assert client.returncode == 0
        sink = _sink(app)
    finally:
        await runner.cleanup()  # the sink flushes what is queued
    result = json.loads(out)
    assert result["statuses"] == {"403": total}
    sent = result["ids"]
    in_stream = await _stream_request_ids(redis_url, redis_prefix)
    spilled = _spilled_request_ids(spill)
    stats = sink.stats
    # Every request accounted for, exactly once: in the stream, or spilled and in the file.
    assert sorted(in_stream + spilled) == sorted(sent)
    assert len(in_stream) + len(spilled) == total
    assert (stats.received, stats.dropped, stats.queued) == (total, 0, 0)
    assert stats.appended + stats.replayed == len(in_stream)
    assert stats.spilled - stats.replayed == len(spilled)
    # Keeping up: with Redis healthy, nothing had to go to disk (the queue holds ~7 s of this rate).
    assert stats.spilled == 0


async def test_store_killed_requests_go_on_events_spill_then_replay(
    private_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.audit")
    spill, prefix = tmp_path / "spill.jsonl", f"{secrets.token_hex(4)}:"
    config = _config(
        private_redis.url, prefix, spill, batch_size=20, append_timeout_seconds=1, retry_max_seconds=0.2
    )
    runner, port, app = await serve_app(config)
    try:
        sink = _sink(app)
        await _requests(port, 20)
        await until(lambda: sink.stats.appended == 20)
        private_redis.stop()  # and with it the 20 events it held (no persistence)

        during = await _requests(port, 500)  # none waits for the store
        await until(lambda: sink.stats.spilled >= 480)
        assert sink.stats.dropped == 0
        on_disk = _spilled_request_ids(spill)
        assert len(on_disk) == sink.stats.spilled
        assert set(on_disk) <= set(during)

        private_redis.start()  # empty, on the same port
        await until(lambda: sink.stats.replayed == sink.stats.spilled and sink.stats.queued == 0)
        after = await _requests(port, 10)
        await until(lambda: sink.stats.queued == 0)
        stats = sink.stats
    finally:
        await runner.cleanup()
        if private_redis.pid is None:
            private_redis.start()  # as the module's other tests expect it
    assert (stats.received, stats.dropped) == (530, 0)
    assert stats.appended + stats.spilled == 530
    assert not spill.exists()  # replayed, then deleted
    assert sorted(await _stream_request_ids(private_redis.url, prefix)) == sorted(during + after)
    records = _assert_quiet(caplog, most=4)
    # Refused by the server, timed out, or refused at once by the store's open circuit breaker.
    causes = {"ConnectionError", "TimeoutError", "ServiceUnavailable"}
    assert {getattr(r, "cause", None) for r in records} <= causes
    assert records[-1].getMessage() == "the audit store accepts events again"


async def test_store_paused_shutdown_is_bounded(
    private_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spill, prefix = tmp_path / "spill.jsonl", f"{secrets.token_hex(4)}:"
    config = _config(private_redis.url, prefix, spill, append_timeout_seconds=0.5, shutdown_timeout_seconds=1)
    runner, port, app = await serve_app(config)
    cleaned = False
    try:
        sink = _sink(app)
        before = await _requests(port, 10)
        await until(lambda: sink.stats.appended == 10)
        private_redis.pause()  # connections stay open; nothing is answered

        during = await _requests(port, 300)  # none waits for the store
        # The deadline is the feature under test, so the test bounds the shutdown: 30 s is far
        # above the 1 s configured (plus the store's own close) and far below the old sink's
        # 5 s per queued event (~25 minutes for these 300).
        await asyncio.wait_for(runner.cleanup(), timeout=30)
        cleaned = True
        stats = sink.stats
    finally:
        private_redis.resume()
        if not cleaned:
            await runner.cleanup()
    assert (stats.received, stats.appended, stats.dropped, stats.queued) == (310, 10, 0, 0)
    assert stats.spilled == 300
    on_disk = _spilled_request_ids(spill)
    assert sorted(on_disk) == sorted(during)
    # A batch cancelled at the deadline may still have reached the server: at least once.
    in_stream = await _stream_request_ids(private_redis.url, prefix)
    assert set(before) <= set(in_stream) <= set(before + during)
    _assert_quiet(caplog, most=3)
