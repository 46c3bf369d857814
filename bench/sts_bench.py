"""STS AssumeRoleWithWebIdentity over HTTP: fedgate against moto's server (the peer), same run.

Run: ``.venv/bin/python bench/sts_bench.py [--seconds 6] [--rounds 3] [--concurrency 16 64]``.

Both servers run as one subprocess each on 127.0.0.1 (a free port each): ``fedgate serve`` (memory
store, audit sink ``none``, log level WARNING, so no per-request output is measured) and moto's
``moto_server`` (its threaded werkzeug server, with only werkzeug's access-log line turned off, for
the same reason). One aiohttp client in this process drives both with the same fixed concurrency, in
alternating rounds of a warm-up then a timed window; only 200 responses count. Tokens come from a
pool minted up front by a live :class:`gateway.testing.OIDCTestIssuer` in this process (RS256,
2048-bit key): fedgate checks each one in full (signature against the issuer's JWKS, iss, aud, exp,
nbf, iat, sub, the role's trust policy with aud and sub conditions) and mints sealed credentials; moto
checks nothing. A forged token is sent to both to show that difference, and a sample response from
each server is parsed with botocore's own STS parser before anything is timed.

Prints requests/s, p50/p99 latency, server CPU per request, how busy the server and this client were
(a client near 100% of a core would mean the client, not the server, is the limit) and how long the
server waited for a CPU, then the ratios fedgate/moto. The whole run takes about 35 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import botocore.session
import yaml
from botocore.parsers import QueryParser
from joserfc.jwk import RSAKey

from gateway.testing import OIDCTestIssuer

ACCOUNT = "123456789012"
ROLE = "bench"
SUBJECT_PREFIX = "repo:acme/app-"
TOKEN_POOL = 512
READY_TIMEOUT = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
VENV_BIN = Path(sys.executable).parent
# moto_server exactly, except werkzeug's per-request access log line, which fedgate does not write
# either (its log level is WARNING): so neither side is measured formatting log lines.
MOTO_MAIN = (
    "import logging, sys; logging.getLogger('werkzeug').setLevel(logging.WARNING); "
    "from moto.server import main; sys.exit(main(sys.argv[1:]))"
)


@dataclass
class Result:
    """Measured windows against one server, summed over rounds."""

    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    server_wait: float = 0.0
    client_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        """Server CPU per successful request: unlike req/s, barely moved by other load on the host."""
        return 1e3 * self.server_cpu / self.ok if self.ok else float("nan")

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def runqueue_wait(pid: int) -> float:
    """Seconds the threads of ``pid`` spent runnable but waiting for a CPU (other load on the host)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a moto thread that just ended
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (and its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def load_average() -> str:
    """The 1-minute load average: other work on the host shows up here (and in req/s)."""
    return f"{os.getloadavg()[0]:.2f}"


def fedgate_config(issuer: OIDCTestIssuer) -> dict[str, Any]:
    """A production-shaped configuration: one OIDC provider, RS256 only, a conditional trust policy."""
    key = issuer.issuer.removeprefix("http://")
    return {
        "account_id": ACCOUNT,
        "log_level": "WARNING",
        "store": {"backend": "memory"},
        "audit": {"sink": "none"},
        "providers": [issuer.provider_config(algorithms=["RS256"])],
        "policies": [
            {
                "name": "read",
                "document": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
                },
            }
        ],
        "roles": [
            {
                "name": ROLE,
                "managed_policies": ["read"],
                "trust_policy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{key}"},
                            "Action": "sts:AssumeRoleWithWebIdentity",
                            "Condition": {
                                "StringEquals": {f"{key}:aud": issuer.audience},
                                "StringLike": {f"{key}:sub": f"{SUBJECT_PREFIX}*"},
                            },
                        }
                    ],
                },
            }
        ],
    }


def request_body(token: str, i: int) -> bytes:
    """The form body botocore sends for AssumeRoleWithWebIdentity."""
    return urlencode(
        {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/{ROLE}",
            "RoleSessionName": f"bench-{i}",
            "WebIdentityToken": token,
        }
    ).encode()


HEADERS = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the bench dies without cleaning up (even SIGKILL)."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Servers:
    """Subprocesses started by the bench; :meth:`stop_all` always runs (``finally`` in :func:`main`)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        # Output goes to a file, not a pipe nobody reads, so a chatty server can never block.
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # fine here: the bench starts no threads
        )
        log.close()
        self.procs[name] = proc
        return proc

    def log_tail(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


async def wait_ready(
    session: aiohttp.ClientSession, servers: Servers, name: str, url: str, method: str = "GET"
) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it dies or never does."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if servers.procs[name].poll() is not None:
            sys.exit(f"{name} exited early:\n{servers.log_tail(name)}")
        try:
            async with session.request(method, url) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    sys.exit(f"{name} not ready after {READY_TIMEOUT}s:\n{servers.log_tail(name)}")


def parse_credentials(body: bytes, status: int) -> dict[str, Any]:
    """Parse an AssumeRoleWithWebIdentity response exactly as botocore does; return its Credentials."""
    model = botocore.session.get_session().get_service_model("sts")
    shape = model.operation_model("AssumeRoleWithWebIdentity").output_shape
    parsed = QueryParser().parse({"body": body, "headers": {}, "status_code": status}, shape)
    creds = parsed.get("Credentials")
    if not isinstance(creds, dict):
        raise SystemExit(f"no Credentials in the response: {body[:300]!r}")
    for member in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"):
        if not creds.get(member):
            raise SystemExit(f"Credentials.{member} missing in the response: {body[:300]!r}")
    return creds


async def check_server(session: aiohttp.ClientSession, name: str, url: str, token: str, forged: str) -> str:
    """Parse one real response with botocore, and see what the server does with a forged token."""
    async with session.post(url, data=request_body(token, 0), headers=HEADERS) as resp:
        body = await resp.read()
        if resp.status != 200:
            raise SystemExit(f"{name}: sample request failed with {resp.status}: {body[:300]!r}")
        creds = parse_credentials(body, resp.status)
    async with session.post(url, data=request_body(forged, 0), headers=HEADERS) as resp:
        forged_body = await resp.read()
        verdict = f"{resp.status}"
        if resp.status != 200:
            code = forged_body.partition(b"<Code>")[2].partition(b"</Code>")[0].decode(errors="replace")
            verdict += f" {code}"
    return (
        f"  {name}: sample parsed by botocore (AccessKeyId {creds['AccessKeyId'][:4]}..., "
        f"SessionToken {len(creds['SessionToken'])} chars); forged-signature token -> {verdict}"
    )


async def load(
    session: aiohttp.ClientSession,
    url: str,
    bodies: Sequence[bytes],
    concurrency: int,
    warmup: float,
    seconds: float,
    pid: int,
    into: Result,
) -> None:
    """Drive ``url`` with ``concurrency`` workers: ``warmup`` seconds, then a ``seconds`` window."""
    measuring = False
    stop = False
    counter = 0

    async def worker() -> None:
        nonlocal counter
        while not stop:
            body = bodies[counter % len(bodies)]
            counter += 1
            start = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=HEADERS) as resp:
                    await resp.read()
                    success = resp.status == 200
            except aiohttp.ClientError:
                success = False
            if measuring:
                if success:
                    into.ok += 1
                    into.latencies.append(time.perf_counter() - start)
                else:
                    into.failed += 1

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        await asyncio.sleep(warmup)
        server0, wait0, client0 = cpu_seconds(pid), runqueue_wait(pid), time.process_time()
        t0 = time.perf_counter()
        measuring = True
        await asyncio.sleep(seconds)
        measuring = False
        into.seconds += time.perf_counter() - t0
        into.server_cpu += cpu_seconds(pid) - server0
        # Ended threads take their run_delay with them, so moto's figure is a lower bound.
        into.server_wait += max(0.0, runqueue_wait(pid) - wait0)
        into.client_cpu += time.process_time() - client0
    finally:
        stop = True
        await asyncio.gather(*tasks, return_exceptions=True)


def report(name: str, result: Result) -> None:
    print(
        f"  {name:<8} {result.rate:>7,.0f} req/s  p50 {result.percentile(0.5) * 1e3:6.1f} ms  "
        f"p99 {result.percentile(0.99) * 1e3:6.1f} ms  ok {result.ok:>6}  failed {result.failed:>3}  "
        f"server {result.cpu_ms_per_request:5.2f} cpu-ms/req; busy: server "
        f"{result.server_cpu / result.seconds:4.0%} (+{result.server_wait / result.seconds:3.0%} waiting for "
        f"a CPU) client {result.client_cpu / result.seconds:4.0%}"
    )


async def run(args: argparse.Namespace, servers: Servers) -> None:
    async with OIDCTestIssuer(audience="sts.amazonaws.com") as issuer:
        tokens = [issuer.mint(sub=f"{SUBJECT_PREFIX}{i}:ref:refs/heads/main") for i in range(TOKEN_POOL)]
        bodies = [request_body(token, i) for i, token in enumerate(tokens)]
        attacker = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True)
        forged = issuer.mint(sub=f"{SUBJECT_PREFIX}0", signing_key=attacker)

        config_path = servers.workdir / "fedgate.yaml"
        config_path.write_text(yaml.safe_dump(fedgate_config(issuer)))
        fed_port, moto_port = free_port(), free_port()
        fedgate_argv = [str(VENV_BIN / "fedgate"), "serve", "-c", str(config_path)]
        fedgate = servers.start("fedgate", [*fedgate_argv, "--host", "127.0.0.1", "--port", str(fed_port)])
        moto = servers.start(
            "moto", [sys.executable, "-c", MOTO_MAIN, "-H", "127.0.0.1", "-p", str(moto_port)]
        )
        targets = {
            "fedgate": (f"http://127.0.0.1:{fed_port}/", fedgate.pid),
            "moto": (f"http://127.0.0.1:{moto_port}/", moto.pid),
        }

        connector = aiohttp.TCPConnector(limit=max(args.concurrency) * 2)
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_ready(session, servers, "fedgate", f"http://127.0.0.1:{fed_port}/healthz")
            await wait_ready(session, servers, "fedgate", f"http://127.0.0.1:{fed_port}/readyz")
            await wait_ready(session, servers, "moto", f"http://127.0.0.1:{moto_port}/moto-api/data.json")

            print(
                f"STS AssumeRoleWithWebIdentity over HTTP, {os.cpu_count()} CPUs, python "
                f"{sys.version.split()[0]}, aiohttp client in one process, {TOKEN_POOL} pre-minted RS256 "
                f"tokens\n  fedgate: `fedgate serve`, memory store, audit sink none, log level WARNING; "
                "moto: moto_server (threaded werkzeug), access log off"
            )
            for name, (url, _) in targets.items():
                print(await check_server(session, name, url, tokens[0], forged))

            names = [name for name in targets if args.only in (None, name)]
            window = args.seconds / args.rounds
            for concurrency in args.concurrency:
                print(
                    f"concurrency {concurrency}: {args.rounds} alternating rounds per server, each a "
                    f"{args.warmup}s warm-up then a {window:.2g}s window; load average {load_average()}"
                )
                results = {name: Result() for name in names}
                # Alternating short windows share out any other load on the host between the two.
                for _ in range(args.rounds):
                    for name in names:
                        url, pid = targets[name]
                        await load(session, url, bodies, concurrency, args.warmup, window, pid, results[name])
                for name in names:
                    report(name, results[name])
                if len(results) == 2:
                    fed, moto_result = results["fedgate"], results["moto"]
                    print(
                        f"  ratio fedgate/moto: {fed.rate / max(moto_result.rate, 1e-9):.2f}x req/s, "
                        f"{moto_result.cpu_ms_per_request / fed.cpu_ms_per_request:.2f}x less server CPU "
                        "per request"
                    )


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="measured seconds per server and concurrency"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating windows the seconds are split into"
    )
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up before each window")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument(
        "--only", choices=["fedgate", "moto"], help="measure one server (e.g. to attach a profiler to it)"
    )
    args = parser.parse_args(argv)
    if not (
        0 < args.seconds <= 60
        and 0 < args.rounds <= 20
        and 0 <= args.warmup <= 10
        and all(0 < c <= 512 for c in args.concurrency)
    ):
        parser.error(
            "bounded runs only: seconds in (0, 60], rounds in (0, 20], warmup in [0, 10], "
            "concurrency in (0, 512]"
        )

    # SIGTERM (run_all.py's time limit) unwinds like Ctrl-C, so the finally below stops the servers.
    signal.signal(signal.SIGTERM, _terminate)
    with tempfile.TemporaryDirectory(prefix="fedgate-sts-bench-") as workdir:
        servers = Servers(Path(workdir))
        try:
            asyncio.run(run(args, servers))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None
        finally:
            servers.stop_all()


if __name__ == "__main__":
    main()
