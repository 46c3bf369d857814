"""The reverse proxy under load: fedgate against a bare aiohttp pass-through proxy, same upstream, same run.

Run: ``.venv/bin/python bench/proxy_bench.py [--seconds 5] [--rounds 2] [--concurrency 32] [--workers 2]``.

Every server is a subprocess on 127.0.0.1 with a free port: a minimal aiohttp upstream answering
``200`` with a 2 KiB body to anything; a *bare* proxy (aiohttp server plus one pooled
``ClientSession``, streaming both ways, no checks at all: the floor any Python proxy pays); and
``fedgate serve`` with one S3 upstream in ``resign`` mode (memory store, audit sink ``none``, log
level WARNING). For each request fedgate parses and verifies the SigV4 signature (the session token
unsealed, the signing key cached), maps method and path to ``s3:GetObject`` on
``arn:aws:s3:::bench/...``, evaluates the role's policy with the full global condition context,
strips and re-signs the request with the upstream's credentials, and streams the response back.

The client (one aiohttp session in this process) sends the same pool of pre-signed GETs, with the
same fixed concurrency, to each target in alternating rounds (warm-up, then a timed window); only
``200`` responses count, and a forged request is checked to be refused before anything is timed.

Prints requests/s and p50/p99 latency for: the upstream directly, the bare proxy, fedgate, fedgate
with ``metrics.enabled: false`` and ``fedgate serve --workers N`` (metrics merged across workers);
then the ratio fedgate/bare (target >= 0.85), metrics on/off (what counting costs), the latency fedgate
adds over the bare proxy and over the direct call, and the workers' scaling. All processes share the
machine's cores with the client and the upstream, so the scaling is bounded by what is left over.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import yaml

from gateway.credentials import CredentialService, KeyRing, Revocations
from gateway.sigv4 import HttpRequest, sign

ACCOUNT = "123456789012"
HOST = "bench.s3.local"
POOL = 256
VENV_BIN = Path(sys.executable).parent
UPSTREAM_MAIN = """
import sys
from aiohttp import web
BODY = b"x" * 2048
async def handle(request):
    return web.Response(body=BODY, content_type="application/octet-stream")
app = web.Application()
app.router.add_route("*", "/{tail:.*}", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""
BARE_PROXY_MAIN = """
import sys
import aiohttp
from aiohttp import web
TARGET = sys.argv[2]
HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer", "host",
       "proxy-authorization", "proxy-authenticate"}
async def ctx(app):
    app["client"] = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100), auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
    )
    yield
    await app["client"].close()
async def handle(request):
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP]
    data = request.content.iter_chunked(65536) if request.body_exists else None
    async with request.app["client"].request(
        request.method, TARGET + request.raw_path, headers=headers, data=data, allow_redirects=False
    ) as upstream:
        response = web.StreamResponse(status=upstream.status)
        for k, v in upstream.headers.items():
            if k.lower() not in HOP:
                response.headers.add(k, v)
        await response.prepare(request)
        async for piece in upstream.content.iter_chunked(65536):
            await response.write(piece)
        await response.write_eof()
        return response
app = web.Application()
app.cleanup_ctx.append(ctx)
app.router.add_route("*", "/{tail:.*}", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Result:
    """Latencies (seconds) of the 200 responses in one timed window."""

    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def config(secret: str, upstream_port: int, path: Path, *, metrics: bool = True) -> None:
    doc = {
        "account_id": ACCOUNT,
        "metrics": {"enabled": metrics},
        # --workers needs a database its workers share; each server gets its own file.
        "database": {"url": f"sqlite:///{path.with_suffix('.db')}"},
        "log_level": "WARNING",
        "audit": {"sink": "none"},
        "keyring": {"active": "bench", "keys": [{"id": "bench", "secret": {"value": secret}}]},
        "roles": [
            {
                "name": "bench",
                "trust_policy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": "x"},
                            "Action": "sts:AssumeRoleWithWebIdentity",
                        }
                    ],
                },
                "policies": [
                    {
                        "name": "read",
                        "document": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": ["s3:GetObject", "s3:ListBucket"],
                                    "Resource": ["arn:aws:s3:::bench", "arn:aws:s3:::bench/*"],
                                },
                                {
                                    "Effect": "Deny",
                                    "Action": "s3:*",
                                    "Resource": "arn:aws:s3:::bench/secret/*",
                                },
                            ],
                        },
                    }
                ],
            }
        ],
        "upstreams": [
            {
                "name": "s3",
                "match": {"hosts": [HOST]},
                "target": f"http://127.0.0.1:{upstream_port}",
                "service": "s3",
                "mapping": "s3",
                "auth": "resign",
                "credentials": {
                    "access_key_id": {"value": "UPSTREAM"},
                    "secret_access_key": {"value": "upstream-secret"},
                },
            }
        ],
    }
    path.write_text(yaml.safe_dump(doc))


def signed_pool(secret: str) -> list[tuple[str, dict[str, str]]]:
    """Pre-signed S3 GETs (valid 15 minutes) for the bench role."""
    service = CredentialService(KeyRing({"bench": secret.encode()}, "bench"), Revocations.local())
    creds = service.issue(
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/bench", session_name="bench", duration_seconds=3600
    )
    now = datetime.now(UTC)
    pool = []
    for i in range(POOL):
        path = f"/bench/objects/{i:04d}.bin"
        request = HttpRequest("GET", path, "", (("Host", HOST),), hashlib_empty())
        out = sign(
            request,
            access_key_id=creds.access_key_id,
            secret_key=creds.secret_access_key,
            session_token=creds.session_token,
            region="us-east-1",
            service="s3",
            now=now,
            normalize_path=False,
            content_sha256_header=True,
        )
        pool.append((path, dict(out.headers)))
    return pool


def hashlib_empty() -> str:
    return "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    """A quiet server subprocess."""
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_ready(port: int, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


async def drive(
    session: aiohttp.ClientSession,
    name: str,
    port: int,
    pool: list[tuple[str, dict[str, str]]],
    seconds: float,
    concurrency: int,
) -> Result:
    result = Result(name, seconds)
    stop_at = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            path, headers = pool[next(counter) % len(pool)]
            start = time.perf_counter()
            async with session.get(f"http://127.0.0.1:{port}{path}", headers=headers) as response:
                await response.read()
                if response.status == 200:
                    result.latencies.append(time.perf_counter() - start)
                else:
                    result.failures += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


async def main_async(args: argparse.Namespace) -> int:
    secret = secrets.token_urlsafe(48)
    procs: list[subprocess.Popen[bytes]] = []
    ports = {name: free_port() for name in ("upstream", "bare", "fedgate", "unmetered", "workers")}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "fedgate.yaml"
        config(secret, ports["upstream"], cfg)
        unmetered = Path(tmp) / "unmetered.yaml"
        config(secret, ports["upstream"], unmetered, metrics=False)
        fedgate = str(VENV_BIN / "fedgate")
        upstream_url = f"http://127.0.0.1:{ports['upstream']}"
        try:
            procs.append(spawn([sys.executable, "-c", UPSTREAM_MAIN, str(ports["upstream"])]))
            procs.append(spawn([sys.executable, "-c", BARE_PROXY_MAIN, str(ports["bare"]), upstream_url]))
            procs.append(spawn([fedgate, "serve", "-c", str(cfg), "--port", str(ports["fedgate"])]))
            procs.append(spawn([fedgate, "serve", "-c", str(unmetered), "--port", str(ports["unmetered"])]))
            procs.append(
                spawn(
                    [
                        fedgate,
                        "serve",
                        "-c",
                        str(cfg),
                        "--port",
                        str(ports["workers"]),
                        "--workers",
                        str(args.workers),
                    ]
                )
            )
            for port in ports.values():
                await wait_ready(port)
            pool = signed_pool(secret)
            connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
            async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
                # Correctness first: fedgate serves the pool, and refuses a denied key and a forged signature.
                path, headers = pool[0]
                async with session.get(f"http://127.0.0.1:{ports['fedgate']}{path}", headers=headers) as r:
                    assert r.status == 200, await r.text()
                forged = {**headers, "Authorization": headers["Authorization"][:-4] + "0000"}
                async with session.get(f"http://127.0.0.1:{ports['fedgate']}{path}", headers=forged) as r:
                    assert r.status == 403, r.status
                targets = {
                    "direct": ports["upstream"],
                    "bare": ports["bare"],
                    "fedgate": ports["fedgate"],
                    "no metrics": ports["unmetered"],
                    f"fedgate x{args.workers}": ports["workers"],
                }
                results: dict[str, list[Result]] = {name: [] for name in targets}
                for _ in range(args.rounds):
                    for name, port in targets.items():
                        await drive(
                            session, name, port, pool, min(1.0, args.seconds), args.concurrency
                        )  # warm-up
                        results[name].append(
                            await drive(session, name, port, pool, args.seconds, args.concurrency)
                        )
        finally:
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()

    merged = {}
    print(f"{'target':<14}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'failed':>8}")
    for name, rounds in results.items():
        all_latencies = [lat for r in rounds for lat in r.latencies]
        total = Result(name, sum(r.seconds for r in rounds), all_latencies, sum(r.failures for r in rounds))
        merged[name] = total
        print(
            f"{name:<14}{total.rps:>10.0f}{total.pct(0.5):>10.2f}{total.pct(0.99):>10.2f}{total.failures:>8}"
        )
    fed, bare, direct, workers = (
        merged["fedgate"],
        merged["bare"],
        merged["direct"],
        merged[f"fedgate x{args.workers}"],
    )
    ratio = fed.rps / bare.rps
    print(f"ratio fedgate/bare: {ratio:.2f} (target >= 0.85) {'OK' if ratio >= 0.85 else 'BELOW TARGET'}")
    print(
        f"added latency over bare: p50 {fed.pct(0.5) - bare.pct(0.5):+.2f} ms, "
        f"p99 {fed.pct(0.99) - bare.pct(0.99):+.2f} ms"
    )
    print(
        f"added latency over direct: p50 {fed.pct(0.5) - direct.pct(0.5):+.2f} ms, "
        f"p99 {fed.pct(0.99) - direct.pct(0.99):+.2f} ms"
    )
    print(f"workers x{args.workers} / 1 worker: {workers.rps / fed.rps:.2f} on {os.cpu_count()} cores")
    print(f"metrics on / off: {fed.rps / merged['no metrics'].rps:.2f} (what counting costs)")
    per_round = [f.rps / b.rps for f, b in zip(results["fedgate"], results["bare"], strict=True)]
    print(f"median per-round fedgate/bare: {statistics.median(per_round):.2f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="timed window per target and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
