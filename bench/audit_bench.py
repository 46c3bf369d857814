"""The store audit sink: sustained events/s into Redis against one XADD per event, in the same run.

Run: ``.venv/bin/python bench/audit_bench.py [--seconds 1.5] [--rounds 3]``.

Everything talks to a private ``redis-server`` (:class:`gateway.testing.redis.RedisServer`: a free port,
a temporary directory, no persistence) that the bench starts and stops; the shared Redis is never
touched.

1. **Sink throughput**, in this process. A producer offers CloudTrail-shaped events (as
   ``Auditor.build`` makes them, ~900 bytes of JSON) as fast as each contestant takes them (it
   keeps at most 2,000 waiting), and counts the events that reached Redis in a timed window, with
   the CPU time spent per event by this process and by redis-server:
   - fedgate's ``StoreSink``: a queue drained in batches (``audit.batch_size``, default 500),
     each one ``Store.append_events`` call: one script running ``XADD MAXLEN ~`` per event;
   - peer *MULTI pipeline*: the same batches as one redis-py ``MULTI``/``EXEC`` pipeline of
     ``XADD`` commands (what ``append_events`` would be without the script);
   - peer *one XADD per event*: the previous sink's design, a queue drained by one task calling
     ``Store.append_event`` for each event (one round trip each);
   - peer *redis-py loop*: the same queue drained by ``await redis.xadd(...)`` per event, with no
     store layer: the floor of any one-at-a-time design.
   Contestants alternate within each round; the best round of each is reported.
2. **End to end**: ``fedgate serve`` with ``audit: {sink: store}`` and, as peers, with
   ``{sink: file, path: /dev/null}`` (the event built and written, no network) and ``{sink:
   none}`` (no event built at all), flooded in turn with unsigned ``GetCallerIdentity`` requests
   (answered 403 and audited) by 64 concurrent clients from this process. Reports requests/s and
   the server's CPU per request (from /proc, steadier than requests/s on a shared host), and, after
   stopping the store-sink server, how many of the requests it answered have their event in the
   stream (or in the spill file).
3. **Faults**: while the sink takes ~1,000 events/s, Redis is killed for 1 s and started again
   empty; reports how many events were spilled, how long after Redis answered again the first
   append succeeded and the spill file was fully re-appended. Then Redis is paused (SIGSTOP) and
   the time ``close()`` takes with ``shutdown_timeout_seconds: 1`` is reported, with the number of
   log lines the sink wrote over both faults.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import yaml

from gateway.audit import StoreSink
from gateway.config import AuditSettings
from gateway.store import RedisStore
from gateway.testing.redis import RedisServer

STREAM = "audit"
MAXLEN = 100_000
BACKLOG = 2_000  # most events the producer leaves waiting in a contestant's queue
CALLER_IDENTITY = {"Action": "GetCallerIdentity", "Version": "2011-06-15"}


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the bench dies without cleaning up (even SIGKILL)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGCONT)  # if paused, let SIGTERM be handled
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def flush(server: RedisServer) -> None:
    with server.client() as client:
        client.flushall()  # the bench's own server: nobody else's keys


def sample_event() -> dict[str, Any]:
    """An event shaped as Auditor.build makes it for an AssumeRoleWithWebIdentity call."""
    return {
        "eventVersion": "1.08",
        "eventTime": "2026-11-28T10:00:00Z",
        "eventSource": "sts.amazonaws.com",
        "eventName": "AssumeRoleWithWebIdentity",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "10.1.2.3",
        "userAgent": "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.1 lang/python#3.11.7",
        "userIdentity": {"type": "WebIdentityUser", "principalId": "https://issuer.example:app:sub-1"},
        "requestParameters": {
            "roleArn": "arn:aws:iam::123456789012:role/deploy",
            "roleSessionName": "ci-run-1234",
            "durationSeconds": 3600,
        },
        "responseElements": {
            "assumedRoleUser": {"arn": "arn:aws:sts::123456789012:assumed-role/deploy/ci-run-1234"},
            "credentials": {"accessKeyId": "ASIAEXAMPLE", "expiration": "2026-11-28T11:00:00Z"},
        },
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "resources": [{"ARN": "arn:aws:iam::123456789012:role/deploy", "type": "AWS::IAM::Role"}],
        "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012",
    }


@dataclass
class Contestant:
    """How the producer offers an event, sees the backlog, and counts what reached Redis."""

    name: str
    offer: Callable[[dict[str, Any]], None]
    backlog: Callable[[], int]
    delivered: Callable[[], int]
    stop: Callable[[], Any]


def new_sink(store: RedisStore, spill: Path) -> Contestant:
    settings = AuditSettings(
        sink="store", stream=STREAM, max_events=MAXLEN, spill_path=spill, queue_size=1_000_000
    )
    sink = StoreSink(store, settings)
    sink.start()
    return Contestant(
        "StoreSink (batched)",
        sink.fedgate_audit_event,
        lambda: sink.stats.queued,
        lambda: sink.stats.appended,
        sink.close,
    )


def queued_writer(name: str, append: Callable[[list[str]], Any], batch: int) -> Contestant:
    """A queue drained by one task, ``batch`` events per ``append`` call (round trip)."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    done = [0]

    async def writer() -> None:
        while True:
            lines = [await queue.get()]
            while len(lines) < batch and not queue.empty():
                lines.append(queue.get_nowait())
            await append(lines)
            done[0] += len(lines)

    task = asyncio.get_running_loop().create_task(writer())

    def offer(event: dict[str, Any]) -> None:
        queue.put_nowait(json.dumps(event, separators=(",", ":"), default=str))

    async def stop_writer() -> None:
        # Cancel until it takes: on Python 3.11 redis-py's asyncio.wait_for can swallow one.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)

    return Contestant(name, offer, queue.qsize, lambda: done[0], stop_writer)


def contestants(store: RedisStore, client: aioredis.Redis, spill: Path) -> list[Callable[[], Contestant]]:
    """Builders of every contestant, on one store (prefix ``b:``) and one raw client."""

    async def old_sink(lines: list[str]) -> None:
        await store.append_event(STREAM, {"event": lines[0]}, maxlen=MAXLEN)

    async def xadd_loop(lines: list[str]) -> None:
        await client.xadd("b:" + STREAM, {"event": lines[0]}, maxlen=MAXLEN, approximate=True)

    async def multi_pipeline(lines: list[str]) -> None:
        async with client.pipeline(transaction=True) as pipe:
            for line in lines:
                pipe.xadd("b:" + STREAM, {"event": line}, maxlen=MAXLEN, approximate=True)
            await pipe.execute()

    return [
        lambda: new_sink(store, spill),
        lambda: queued_writer("MULTI pipeline of 500 XADD", multi_pipeline, 500),
        lambda: queued_writer("one XADD per event (old sink)", old_sink, 1),
        lambda: queued_writer("redis-py XADD loop", xadd_loop, 1),
    ]


@dataclass
class Measure:
    """One timed window: delivered events (or answered requests) per second, and CPU per item."""

    rate: float
    local_us: float  # CPU of the process doing the work (this one, or the fedgate server)
    redis_us: float  # CPU of redis-server


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from /proc (clock ticks: 10 ms resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def window(
    contestant: Contestant, event: dict[str, Any], redis_pid: int, warmup: float, seconds: float
) -> Measure:
    """Offer events for ``warmup + seconds``; what was delivered during the timed part."""
    start = time.perf_counter()
    measure_from, end = start + warmup, start + warmup + seconds
    first: tuple[int, float, float] | None = None
    while (now := time.perf_counter()) < end:
        if first is None and now >= measure_from:
            first, measure_from = (contestant.delivered(), time.process_time(), cpu_seconds(redis_pid)), now
        if contestant.backlog() < BACKLOG:
            for _ in range(100):
                contestant.offer(event)
            await asyncio.sleep(0)
        else:
            await asyncio.sleep(0.001)
    assert first is not None
    count = contestant.delivered() - first[0]
    local, remote = time.process_time() - first[1], cpu_seconds(redis_pid) - first[2]
    return Measure(count / (time.perf_counter() - measure_from), 1e6 * local / count, 1e6 * remote / count)


async def sink_throughput(server: RedisServer, tmp: Path, args: argparse.Namespace) -> dict[str, Measure]:
    event = sample_event()
    results: dict[str, list[Measure]] = {}
    assert server.pid is not None
    for round_no in range(args.rounds):
        for index in range(4):
            flush(server)
            store = RedisStore.from_url(server.url, prefix="b:")
            client = aioredis.Redis.from_url(server.url)
            contestant = contestants(store, client, tmp / "spill.jsonl")[index]()
            m = await window(contestant, event, server.pid, 0.5, args.seconds)
            await contestant.stop()
            await client.aclose()
            await store.close()
            print(
                f"  round {round_no + 1}: {contestant.name:30} {m.rate:7,.0f} events/s, CPU per event: "
                f"{m.local_us:5.1f} us here + {m.redis_us:5.1f} us redis-server"
            )
            results.setdefault(contestant.name, []).append(m)
    return {name: max(ms, key=lambda m: m.rate) for name, ms in results.items()}


async def flood(port: int, seconds: float, concurrency: int = 64) -> int:
    """Unsigned GetCallerIdentity requests for ``seconds``; how many were answered 403."""
    answered = 0
    end = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal answered
            while time.perf_counter() < end:
                async with session.post(f"http://127.0.0.1:{port}/", data=CALLER_IDENTITY) as response:
                    await response.read()
                    answered += response.status == 403

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answered


async def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"fedgate exited early; its log is {log}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.1)
    sys.exit("fedgate did not start")


async def end_to_end(server: RedisServer, tmp: Path, args: argparse.Namespace) -> None:
    flush(server)
    fedgate = str(Path(sys.executable).with_name("fedgate"))
    procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    spill = tmp / "e2e-spill.jsonl"
    try:
        for sink in ("store", "file", "none"):
            audit: dict[str, Any] = {"sink": sink, "stream": STREAM, "max_events": 10_000_000}
            audit |= {"spill_path": str(spill)} if sink == "store" else {"path": os.devnull}
            config = {
                "account_id": "123456789012",
                "log_level": "WARNING",
                "store": {"backend": "redis", "url": server.url, "prefix": "e2e:"},
                "audit": audit,
            }
            path = tmp / f"fedgate-{sink}.yaml"
            path.write_text(yaml.safe_dump(config))
            port = free_port()
            log = tmp / f"fedgate-{sink}.log"
            proc = spawn([fedgate, "serve", "--config", str(path), "--port", str(port)], log)
            procs[sink] = (proc, port)
            await wait_listening(port, proc, log)
        answered = dict.fromkeys(procs, 0)
        results: dict[str, list[Measure]] = {sink: [] for sink in procs}
        assert server.pid is not None
        for round_no in range(args.rounds):
            for sink, (proc, port) in procs.items():
                answered[sink] += await flood(port, 0.5)  # warm-up, audited all the same
                before = cpu_seconds(proc.pid), cpu_seconds(server.pid)
                count = await flood(port, args.seconds)
                local, remote = cpu_seconds(proc.pid) - before[0], cpu_seconds(server.pid) - before[1]
                answered[sink] += count
                m = Measure(count / args.seconds, 1e6 * local / count, 1e6 * remote / count)
                results[sink].append(m)
                print(
                    f"  round {round_no + 1}: fedgate serve, audit sink {sink:5} {m.rate:5,.0f} requests/s, "
                    f"server CPU per request {m.local_us:4.0f} us"
                )
        stop(procs["store"][0])  # SIGTERM: the sink flushes what is queued
        with server.client() as client:
            kept = int(client.xlen("e2e:" + STREAM))
        spilled = len(spill.read_text().splitlines()) if spill.exists() else 0
        print(
            f"  events of the store-sink server: {kept:,} in the stream + {spilled:,} spilled "
            f"for {answered['store']:,} requests answered ({100 * (kept + spilled) / answered['store']:.1f}%)"
        )
        cpu = {sink: min(m.local_us for m in ms) for sink, ms in results.items()}
        rate = {sink: max(m.rate for m in ms) for sink, ms in results.items()}
        for peer in ("file", "none"):
            print(
                f"  sink store / sink {peer}: requests/s {rate['store'] / rate[peer]:.2f} (best rounds), "
                f"server CPU per request {cpu['store'] / cpu[peer]:.2f} ({cpu['store'] - cpu[peer]:+.0f} us)"
            )
    finally:
        for proc, _ in procs.values():
            stop(proc)


class CountingHandler(logging.Handler):
    """Counts the sink's log lines (and tracebacks) instead of printing them."""

    def __init__(self) -> None:
        super().__init__()
        self.lines = self.tracebacks = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.lines += 1
        self.tracebacks += record.exc_info is not None


async def faults(server: RedisServer, tmp: Path) -> None:
    flush(server)
    counter, breaker = CountingHandler(), CountingHandler()
    for name, handler in (("gateway.audit", counter), ("gateway.store", breaker)):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    store = RedisStore.from_url(server.url, prefix="f:")
    spill = tmp / "fault-spill.jsonl"
    sink = StoreSink(
        store, AuditSettings(sink="store", stream=STREAM, spill_path=spill, shutdown_timeout_seconds=1)
    )
    sink.start()
    event = sample_event()
    running = True

    async def produce() -> None:  # ~1,000 events/s, about what one gateway process serves
        while running:
            for _ in range(50):
                sink.fedgate_audit_event(event)
            await asyncio.sleep(0.05)

    producer = asyncio.get_running_loop().create_task(produce())
    await asyncio.sleep(0.5)
    server.stop()
    await asyncio.sleep(1.0)
    server.start()
    back = time.perf_counter()
    appended = sink.stats.appended
    first_append = replayed = None
    while first_append is None or replayed is None:
        stats = sink.stats
        now = time.perf_counter() - back
        if first_append is None and stats.appended > appended:
            first_append = now
        if replayed is None and stats.spilled and stats.replayed >= stats.spilled and not spill.exists():
            replayed = now
        if now > 30:
            sys.exit(f"no recovery within 30 s: {stats}")
        await asyncio.sleep(0.005)
    stats = sink.stats
    print(
        f"  Redis killed for 1 s: {stats.failures} failed appends, {stats.spilled:,} events "
        f"spilled, {stats.dropped} dropped"
    )
    print(
        f"  after Redis answered again: first append {first_append * 1000:.0f} ms, "
        f"spill re-appended in {replayed * 1000:.0f} ms"
    )
    server.pause()
    await asyncio.sleep(0.5)
    running = False
    await producer
    start = time.perf_counter()
    await sink.close()
    closed = time.perf_counter() - start
    server.resume()
    await store.close()
    print(
        f"  Redis paused: close() returned in {closed:.2f} s (deadline 1 s), "
        f"{sink.stats.spilled - stats.spilled:,} events spilled at shutdown, {sink.stats.dropped} dropped"
    )
    print(
        f"  log lines over both faults: the sink {counter.lines} ({counter.tracebacks} tracebacks), "
        f"the store's circuit breaker {breaker.lines} ({breaker.tracebacks} tracebacks)"
    )


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="fedgate-audit-bench-") as workdir, RedisServer() as server:
        tmp = Path(workdir)
        print(f"1. sink throughput into Redis ({args.rounds} rounds of {args.seconds:.1f} s, best round)")
        best = await sink_throughput(server, tmp, args)
        ours = best["StoreSink (batched)"]
        print("  best rounds; ratio = ours / peer (events/s), peer / ours (CPU per event):")
        for name, m in best.items():
            print(
                f"  {name:30} {m.rate:9,.0f} events/s ({ours.rate / m.rate:5.2f}x), CPU per event "
                f"{m.local_us:5.1f} us ({m.local_us / ours.local_us:5.2f}x) + redis-server "
                f"{m.redis_us:5.1f} us ({m.redis_us / ours.redis_us:5.2f}x)"
            )
        print(f"2. end to end ({args.rounds} rounds of {args.seconds:.1f} s, 64 concurrent clients)")
        await end_to_end(server, tmp, args)
        print("3. faults")
        await faults(server, tmp)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=1.5, help="timed window per contestant and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not (0 < args.seconds <= 30 and 0 < args.rounds <= 10):
        parser.error("bounded runs only: seconds in (0, 30], rounds in (0, 10]")
    signal.signal(signal.SIGTERM, _terminate)  # run_all.py's time limit unwinds like Ctrl-C
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
