"""The reverse proxy's CPU per request, measured with wrk: fedgate against a bare aiohttp proxy.

Run: ``.venv/bin/python bench/wrk_proxy_bench.py [--seconds 2] [--rounds 3] [--concurrency 8 32 128]``.

Needs ``wrk`` (https://github.com/wg/wrk): ``apt-get install -y wrk`` on Debian and Ubuntu, ``brew
install wrk`` on macOS. Without it the bench says so and fails; it never skips.

The servers are those of ``proxy_bench.py`` (same upstream serving 2 KiB, same bare pass-through
proxy, same fedgate configuration: S3 upstream in ``resign`` mode, memory store, audit sink
``none``), each a subprocess on 127.0.0.1, plus ``fedgate serve --workers 2``. The load is wrk (one
thread, a native client, so it never caps the servers as bench/'s Python client does) replaying,
with a Lua script, 256 distinct S3 GETs signed for the bench role: once header-signed
(``Authorization`` + ``x-amz-security-token``), once presigned (botocore's
``generate_presigned_url``, query ``X-Amz-*``). Before anything is timed fedgate is checked to
answer one of each ``200``, and a forged one ``403``; any non-2xx answer in a window fails the run.

For each round, in alternation (so that other load on the host falls on each alike): for every
concurrency and request form, the bare proxy then fedgate; at 32 header-signed also the upstream
alone and fedgate with two workers. Each window is a timed wrk run (after a warm-up in the first
round); the CPU time (utime + stime from ``/proc/PID/stat``, workers summed) of the server over the
window divided by the requests it answered is its CPU per request, which unlike req/s barely depends
on what else runs on the host. Printed: per target, medians over rounds of CPU ms/request, req/s and
p99; then the CPU ratio bare / fedgate per concurrency and form (target >= 0.65), the p99 fedgate
adds over the bare proxy at 32 (target <= 10 ms) and the throughput of ``--workers 2`` over one
worker (target >= 1.4, which needs the two cores the proxy workers get to themselves).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import math
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import boto3
from botocore.config import Config
from proxy_bench import BARE_PROXY_MAIN, HOST, POOL, UPSTREAM_MAIN, config, signed_pool
from sts_bench import Servers, add_baseline_option, cpu_seconds, free_port, load_average, wait_ready

from gateway.credentials import CredentialService, KeyRing, Revocations

ACCOUNT = "123456789012"
VENV_BIN = Path(sys.executable).parent
WRK_HINT = (
    "wrk is needed: install it with `apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk` "
    "(macOS), or build it from https://github.com/wg/wrk"
)
# The Lua the requests are replayed with: {requests} is a list of wrk.format(...) calls.
LUA = """
local requests = {{
{requests}
}}
local i = 0
request = function()
  i = i + 1
  return requests[(i % #requests) + 1]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d status=%d errors=%d p50=%d p99=%d duration=%d\\n",
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
"""
RESULT = re.compile(r"RESULT requests=(\d+) status=(\d+) errors=(\d+) p50=(\d+) p99=(\d+) duration=(\d+)")
Request = tuple[str, dict[str, str]]


def presigned_pool(secret: str) -> list[Request]:
    """Presigned S3 GETs (valid 15 minutes) for the bench role, made by botocore's own presigner."""
    service = CredentialService(KeyRing({"bench": secret.encode()}, "bench"), Revocations.local())
    creds = service.issue(
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/bench", session_name="bench", duration_seconds=3600
    )
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{HOST}",
        region_name="us-east-1",
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        aws_session_token=creds.session_token,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    pool = []
    for i in range(POOL):
        url = client.generate_presigned_url(
            "get_object", Params={"Bucket": "bench", "Key": f"objects/{i:04d}.bin"}, ExpiresIn=900
        )
        pool.append((url.removeprefix(f"http://{HOST}"), {"Host": HOST}))
    return pool


def lua_script(pool: list[Request], path: Path) -> Path:
    """Write the wrk script replaying ``pool`` to ``path``."""

    def lua_string(text: str) -> str:
        assert "]==]" not in text
        return f"[==[{text}]==]"

    lines = []
    for target, headers in pool:
        fields = ", ".join(f"[ {lua_string(k)} ] = {lua_string(v)}" for k, v in headers.items())
        lines.append(f'  wrk.format("GET", {lua_string(target)}, {{{fields}}}),')
    path.write_text(LUA.format(requests="\n".join(lines)))
    return path


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``fedgate serve --workers N`` forks N workers)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            found.extend(process_tree(int(child)))
    return found


def tree_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


@dataclass
class Window:
    """One timed wrk run against one server."""

    requests: int
    seconds: float
    cpu: float  # server CPU seconds over the window
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        # A window in which nothing completed (a starved host) has no figure; medians skip it.
        return 1e3 * self.cpu / self.requests if self.requests else math.nan


def wrk(port: int, script: Path, seconds: int, concurrency: int) -> tuple[int, int, float, float]:
    """Run wrk once: (requests, failures, seconds, p99 ms)."""
    run = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    )
    match = RESULT.search(run.stdout)
    if match is None or run.stderr.strip():  # a Lua error is only a line on stderr
        raise RuntimeError(f"wrk failed:\n{run.stdout}{run.stderr}")
    requests, status, errors, _p50, p99, duration = (int(g) for g in match.groups())
    return requests, status + errors, duration / 1e6, p99 / 1e3


def measure(pids: list[int], port: int, script: Path, seconds: int, warmup: int, c: int) -> Window:
    if warmup:
        wrk(port, script, warmup, c)
    before = tree_cpu(pids)
    requests, failures, elapsed, p99 = wrk(port, script, seconds, c)
    cpu = tree_cpu(pids) - before
    if failures:
        raise RuntimeError(f"{failures} of {requests} requests to port {port} failed")
    return Window(requests, elapsed, cpu, p99)


def median(values: Iterable[float]) -> float:
    """The median of the figures that exist (``nan`` where a window completed nothing)."""
    present = [v for v in values if not math.isnan(v)]
    return statistics.median(present) if present else math.nan


def check(port: int, request: Request, expected: int) -> None:
    target, headers = request
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != expected:
        raise RuntimeError(f"expected {expected}, got {response.status}: {body[:300]!r}")


def forged(request: Request) -> Request:
    target, headers = request
    if "Authorization" in headers:
        return target, {**headers, "Authorization": headers["Authorization"][:-4] + "0000"}
    return re.sub(r"(X-Amz-Signature=[0-9a-f]+)[0-9a-f]{4}", r"\g<1>0000", target), headers


async def ready(servers: Servers, urls: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as session:
        for name, url in urls.items():
            await wait_ready(session, servers, name, url)


def run(args: argparse.Namespace, servers: Servers, workdir: Path) -> None:
    secret = secrets.token_urlsafe(48)
    names = ("upstream", "bare", "fedgate", "workers") + (("baseline",) if args.baseline else ())
    ports = {name: free_port() for name in names}
    cfg = workdir / "fedgate.yaml"
    config(secret, ports["upstream"], cfg)
    upstream_url = f"http://127.0.0.1:{ports['upstream']}"
    fedgate = str(VENV_BIN / "fedgate")
    servers.start("upstream", [sys.executable, "-c", UPSTREAM_MAIN, str(ports["upstream"])])
    servers.start("bare", [sys.executable, "-c", BARE_PROXY_MAIN, str(ports["bare"]), upstream_url])
    servers.start("fedgate", [fedgate, "serve", "-c", str(cfg), "--port", str(ports["fedgate"])])
    servers.start(
        "workers", [fedgate, "serve", "-c", str(cfg), "--port", str(ports["workers"]), "--workers", "2"]
    )
    probes = {
        "upstream": f"{upstream_url}/",
        "bare": f"http://127.0.0.1:{ports['bare']}/",
        "fedgate": f"http://127.0.0.1:{ports['fedgate']}/healthz",
        "workers": f"http://127.0.0.1:{ports['workers']}/healthz",
    }
    if args.baseline is not None:
        servers.start_baseline(args.baseline, ["serve", "-c", str(cfg), "--port", str(ports["baseline"])])
        probes["baseline"] = f"http://127.0.0.1:{ports['baseline']}/healthz"
    asyncio.run(ready(servers, probes))
    time.sleep(1.0)  # both workers up
    pools = {"header": signed_pool(secret), "presigned": presigned_pool(secret)}
    scripts = {form: lua_script(pool, workdir / f"{form}.lua") for form, pool in pools.items()}
    for pool in pools.values():  # correctness before speed
        for port in (ports[name] for name in ("fedgate", "workers", "baseline") if name in ports):
            check(port, pool[0], 200)
            check(port, forged(pool[0]), 403)
    pids = {name: process_tree(proc.pid) for name, proc in servers.procs.items()}
    if len(pids["workers"]) < 3:
        raise RuntimeError(f"fedgate --workers 2 runs {len(pids['workers'])} processes, not 3")

    plan: list[tuple[str, str, int]] = []  # (target, form, concurrency) in the order of one round
    for c in args.concurrency:
        for form in pools:
            if c == 32 and form == "header":
                plan.append(("direct", form, c))
            plan += [("bare", form, c), ("fedgate", form, c)]
            if args.baseline is not None:
                plan.append(("baseline", form, c))
            if c == 32 and form == "header":
                plan.append(("workers", form, c))
    windows: dict[tuple[str, str, int], list[Window]] = {key: [] for key in plan}
    targets = {"direct": "upstream", "bare": "bare", "fedgate": "fedgate", "workers": "workers"}
    targets["baseline"] = "baseline"
    for n in range(args.rounds):
        for target, form, c in plan:
            name = targets[target]
            windows[target, form, c].append(
                # Warm-up in the first round only: later rounds start warm (wrk counts whole seconds).
                measure(pids[name], ports[name], scripts[form], args.seconds, args.warmup if n == 0 else 0, c)
            )
        print(f"round {n + 1}/{args.rounds} done (load average {load_average()})", flush=True)

    print(f"\n{'target':<10}{'form':<11}{'c':>4}{'req/s':>9}{'CPU ms/req':>12}{'p99 ms':>9}")
    for (target, form, c), got in windows.items():
        print(
            f"{target:<10}{form:<11}{c:>4}{median(w.rps for w in got):>9.0f}"
            f"{median(w.cpu_ms for w in got):>12.3f}"
            f"{median(w.p99_ms for w in got):>9.1f}"
        )
    print("\nmedians over rounds of the per-round figures:")
    for c in args.concurrency:
        for form in pools:
            ratio = median(
                b.cpu_ms / f.cpu_ms
                for b, f in zip(windows["bare", form, c], windows["fedgate", form, c], strict=True)
            )
            verdict = "OK" if ratio >= 0.65 else "BELOW TARGET"
            print(f"CPU ratio bare/fedgate, {form:<9} c={c:<4} {ratio:.2f} (target >= 0.65) {verdict}")
            if args.baseline is not None:
                base = median(
                    b.cpu_ms / f.cpu_ms
                    for b, f in zip(windows["bare", form, c], windows["baseline", form, c], strict=True)
                )
                change = median(
                    f.cpu_ms / b.cpu_ms
                    for b, f in zip(windows["baseline", form, c], windows["fedgate", form, c], strict=True)
                )
                print(f"  baseline's ratio {base:.2f}; CPU per request {change:.2f}x the baseline's")
    if 32 in args.concurrency:
        added = median(
            f.p99_ms - b.p99_ms
            for b, f in zip(windows["bare", "header", 32], windows["fedgate", "header", 32], strict=True)
        )
        verdict = "OK" if added <= 10 else "ABOVE TARGET"
        print(f"p99 added over bare, header c=32: {added:+.1f} ms (target <= 10) {verdict}")
        scale = median(
            w.rps / f.rps if f.rps else math.nan
            for w, f in zip(windows["workers", "header", 32], windows["fedgate", "header", 32], strict=True)
        )
        print(
            f"--workers 2 / 1 worker req/s, header c=32: {scale:.2f} (target >= 1.4) "
            f"{'OK' if scale >= 1.4 else 'BELOW TARGET'} on {os.cpu_count()} cores"
        )


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=2, help="timed window per target and round")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up before each first-round window")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 128])
    add_baseline_option(parser)
    args = parser.parse_args(argv)
    bounded = 0 < args.seconds <= 60 and 0 < args.rounds <= 20
    if not (bounded and all(0 < c <= 1024 for c in args.concurrency)):
        parser.error("bounded runs only: seconds in (0, 60], rounds in (0, 20], concurrency in (0, 1024]")
    if shutil.which("wrk") is None:
        sys.exit(WRK_HINT)
    signal.signal(signal.SIGTERM, _terminate)
    with tempfile.TemporaryDirectory(prefix="fedgate-wrk-bench-") as workdir:
        servers = Servers(Path(workdir))
        try:
            run(args, servers, Path(workdir))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None
        finally:
            servers.stop_all()


if __name__ == "__main__":
    main()
