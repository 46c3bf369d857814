"""STS AssumeRoleWithWebIdentity over HTTP: fedgate against moto's server (the peer), same run.

Run: ``.venv/bin/python bench/sts_bench.py [--seconds 6] [--rounds 3] [--concurrency 16 64]``.
Needs ``wrk`` (``apt-get install wrk``), the load generator.

Both servers run as one subprocess each on 127.0.0.1 (a free port each): ``fedgate serve`` (memory
store, audit sink ``none``, log level WARNING, so no per-request output is measured) and moto's
``moto_server`` (its threaded werkzeug server, with only werkzeug's access-log line turned off, for
the same reason). The load comes from another process, wrk (C, one thread), replaying a Lua script
that POSTs AssumeRoleWithWebIdentity with the next of a pool of pre-minted tokens, so no Python
client shares the measurement. Both servers get the same fixed concurrency in alternating rounds of
a warm-up run then a timed run; only 200 responses count. The figure that matters is server CPU
per request, read from ``/proc/PID/stat`` of the server process before and after each timed run.
Tokens come from a live :class:`gateway.testing.OIDCTestIssuer` in this process (RS256, 2048-bit
key): fedgate checks each one in full (signature against the issuer's JWKS, iss, aud, exp, nbf, iat,
sub, the role's trust policy with aud and sub conditions) and mints sealed credentials; moto checks
nothing. A forged token is sent to both to show that difference, and a sample response from each
server is parsed with botocore's own STS parser before anything is timed.

Prints requests/s, p50/p99 latency (the median p50 and the worst p99 of the rounds), server CPU per
request, how busy the server and wrk were (wrk near 100% of a core would mean the client, not the
server, is the limit) and how long the server waited for a CPU, then the ratios fedgate/moto.
``--baseline SRC`` also serves fedgate from another source tree (an earlier commit unpacked with
``git archive``), measured in the same alternating rounds, to tell what a change did in one run on a
shared host. ``--profile FILE`` runs fedgate under pyinstrument (``pip install pyinstrument``) and writes its
text report there when the bench ends. The whole run takes about 45 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import resource
import shutil
import signal
import socket
import statistics
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
READY_TIMEOUT = 90.0  # a loaded host can take a minute to start three servers
CLK_TCK = os.sysconf("SC_CLK_TCK")
VENV_BIN = Path(sys.executable).parent
# moto_server exactly, except werkzeug's per-request access log line, which fedgate does not write
# either (its log level is WARNING): so neither side is measured formatting log lines.
MOTO_MAIN = (
    "import logging, sys; logging.getLogger('werkzeug').setLevel(logging.WARNING); "
    "from moto.server import main; sys.exit(main(sys.argv[1:]))"
)
# `fedgate serve` from whatever `gateway` package comes first on the path (--baseline's checkout).
BASELINE_MAIN = "import sys; from gateway.cli import main; sys.exit(main(sys.argv[1:]))"
# `fedgate serve` under pyinstrument's sampling profiler (low overhead, unlike cProfile); the report
# is written when the server stops (SIGTERM ends serve() normally).
PROFILED_MAIN = (
    "import sys; from pyinstrument import Profiler; from gateway.cli import main; "
    "out = sys.argv[1]; profiler = Profiler(interval=0.0002); profiler.start()\n"
    "try: main(sys.argv[2:])\n"
    "finally:\n"
    "    profiler.stop(); text = profiler.output_text(unicode=True, show_all=False)\n"
    "    with open(out, 'w') as f: f.write(text)"
)


@dataclass
class Result:
    """Measured runs against one server, summed over rounds."""

    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    server_wait: float = 0.0
    client_cpu: float = 0.0
    p50s: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)
    round_cpu: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        """Server CPU per successful request: unlike req/s, barely moved by other load on the host."""
        return 1e3 * self.server_cpu / self.ok if self.ok else float("nan")

    @property
    def best_cpu_ms(self) -> float:
        """Server CPU per request of the least disturbed round: other load only ever adds to it."""
        return 1e3 * min(self.round_cpu) if self.round_cpu else float("nan")

    @property
    def p50(self) -> float:
        """The median of the rounds' p50 latencies, in seconds."""
        return statistics.median(self.p50s) if self.p50s else float("nan")

    @property
    def p99(self) -> float:
        """The worst of the rounds' p99 latencies, in seconds."""
        return max(self.p99s) if self.p99s else float("nan")


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

    def __init__(self, workdir: Path, stop_timeout: float = 5.0) -> None:
        self.workdir = workdir
        self.stop_timeout = stop_timeout
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        # Output goes to a file, not a pipe nobody reads, so a chatty server can never block.
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            # Not the checkout: `python -c` puts its working directory first on sys.path, which
            # would shadow a --baseline tree given on PYTHONPATH with this checkout's code.
            cwd=self.workdir,
            preexec_fn=_die_with_parent,  # fine here: the bench starts no threads
        )
        log.close()
        self.procs[name] = proc
        return proc

    def start_baseline(self, source: Path, fedgate_argv: list[str]) -> subprocess.Popen[bytes]:
        """``fedgate FEDGATE_ARGV`` from the source tree ``source`` (--baseline), as ``baseline``:
        its code is found before the editable install's, since PYTHONPATH comes first."""
        root = source.resolve()
        env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'plugins'}"}
        return self.start("baseline", [sys.executable, "-c", BASELINE_MAIN, *fedgate_argv], env=env)

    def log_tail(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=self.stop_timeout)
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


def wrk_script(bodies: Sequence[bytes], path: Path) -> Path:
    """A wrk Lua script POSTing ``bodies`` in turn, whose summary line :func:`run_wrk` reads."""
    entries = []
    for body in bodies:
        text = body.decode("ascii")
        # Form bodies are percent-encoded: nothing in them needs escaping in a Lua string.
        if not set(text) <= _FORM_CHARS:
            raise SystemExit("a request body has characters the Lua script cannot hold as they are")
        entries.append(f'  "{text}",')
    headers = ", ".join(f'["{k}"] = "{v}"' for k, v in HEADERS.items())
    path.write_text(
        "local bodies = {\n" + "\n".join(entries) + "\n}\n"
        f"local headers = {{{headers}}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i + 1\n"
        '  return wrk.format("POST", "/", headers, bodies[(i % #bodies) + 1])\n'
        "end\n"
        "done = function(summary, latency, requests)\n"
        "  local e = summary.errors\n"
        '  io.write(string.format("BENCH %d %d %d %d %d %d\\n", summary.requests, e.status,\n'
        "    e.connect + e.read + e.write + e.timeout, summary.duration,\n"
        "    latency:percentile(50), latency:percentile(99)))\n"
        "end\n"
    )
    return path


_FORM_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789%-._~+=&*")


async def run_wrk(url: str, script: Path, concurrency: int, seconds: int) -> dict[str, int]:
    """One wrk run of ``seconds`` at ``concurrency``: the counts of its summary line."""
    argv = [
        "wrk",
        "--threads",
        "1",
        "--connections",
        str(concurrency),
        "--duration",
        f"{seconds}s",
        "--timeout",
        "10s",
        "--script",
        str(script),
        url,
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, preexec_fn=_die_with_parent
    )
    out, _ = await proc.communicate()
    line = next((x for x in out.decode(errors="replace").splitlines() if x.startswith("BENCH ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({proc.returncode}):\n{out.decode(errors='replace')[-2000:]}")
    names = ("requests", "non_2xx", "socket_errors", "duration_us", "p50_us", "p99_us")
    return dict(zip(names, map(int, line.split()[1:]), strict=True))


def children_cpu() -> float:
    """CPU seconds of this process's reaped children (the wrk runs), user + system."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def load(
    url: str, script: Path, concurrency: int, warmup: int, seconds: int, pid: int, into: Result
) -> None:
    """Drive ``url`` with wrk at ``concurrency``: a ``warmup``-second run, then a measured one."""
    if warmup:
        await run_wrk(url, script, concurrency, warmup)
    # wrk is reaped by the time run_wrk returns, so its CPU time is in the children's counters.
    server0, wait0, client0 = cpu_seconds(pid), runqueue_wait(pid), children_cpu()
    summary = await run_wrk(url, script, concurrency, seconds)
    cpu = cpu_seconds(pid) - server0
    into.server_cpu += cpu
    # Ended threads take their run_delay with them, so moto's figure is a lower bound.
    into.server_wait += max(0.0, runqueue_wait(pid) - wait0)
    into.client_cpu += children_cpu() - client0
    into.seconds += summary["duration_us"] / 1e6
    failed = summary["non_2xx"] + summary["socket_errors"]
    into.ok += summary["requests"] - summary["non_2xx"]
    into.failed += failed
    ok = summary["requests"] - summary["non_2xx"]
    if ok:
        into.round_cpu.append(cpu / ok)
    into.p50s.append(summary["p50_us"] / 1e6)
    into.p99s.append(summary["p99_us"] / 1e6)


def report(name: str, result: Result) -> None:
    print(
        f"  {name:<8} {result.rate:>7,.0f} req/s  p50 {result.p50 * 1e3:6.1f} ms  "
        f"p99 {result.p99 * 1e3:6.1f} ms  ok {result.ok:>6}  failed {result.failed:>3}  "
        f"server {result.cpu_ms_per_request:5.2f} cpu-ms/req (best round {result.best_cpu_ms:4.2f}); "
        f"busy: server "
        f"{result.server_cpu / result.seconds:4.0%} (+{result.server_wait / result.seconds:3.0%} waiting for "
        f"a CPU) wrk {result.client_cpu / result.seconds:4.0%}"
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
        fedgate_argv = [str(VENV_BIN / "fedgate")]
        if args.profile is not None:
            fedgate_argv = [sys.executable, "-c", PROFILED_MAIN, str(args.profile.resolve())]
        fedgate_argv += ["serve", "-c", str(config_path), "--host", "127.0.0.1", "--port", str(fed_port)]
        fedgate = servers.start("fedgate", fedgate_argv)
        moto = servers.start(
            "moto", [sys.executable, "-c", MOTO_MAIN, "-H", "127.0.0.1", "-p", str(moto_port)]
        )
        targets = {
            "fedgate": (f"http://127.0.0.1:{fed_port}/", fedgate.pid),
            "moto": (f"http://127.0.0.1:{moto_port}/", moto.pid),
        }
        if args.baseline is not None:
            base_port = free_port()
            base_argv = ["serve", "-c", str(config_path), "--host", "127.0.0.1", "--port", str(base_port)]
            base = servers.start_baseline(args.baseline, base_argv)
            targets["baseline"] = (f"http://127.0.0.1:{base_port}/", base.pid)

        script = wrk_script(bodies, servers.workdir / "assume.lua")
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, servers, "fedgate", f"http://127.0.0.1:{fed_port}/healthz")
            await wait_ready(session, servers, "fedgate", f"http://127.0.0.1:{fed_port}/readyz")
            await wait_ready(session, servers, "moto", f"http://127.0.0.1:{moto_port}/moto-api/data.json")
            if "baseline" in targets:
                await wait_ready(session, servers, "baseline", targets["baseline"][0] + "readyz")

            print(
                f"STS AssumeRoleWithWebIdentity over HTTP, {os.cpu_count()} CPUs, python "
                f"{sys.version.split()[0]}, load from wrk (one thread), {TOKEN_POOL} pre-minted RS256 "
                f"tokens\n  fedgate: `fedgate serve`, memory store, audit sink none, log level WARNING; "
                "moto: moto_server (threaded werkzeug), access log off"
            )
            for name, (url, _) in targets.items():
                print(await check_server(session, name, url, tokens[0], forged))

            names = [name for name in targets if args.only in (None, name) or name == "baseline"]
            window = max(1, round(args.seconds / args.rounds))
            for concurrency in args.concurrency:
                print(
                    f"concurrency {concurrency}: {args.rounds} alternating rounds per server, each a "
                    f"{args.warmup}s warm-up run then a {window}s measured run; load average {load_average()}"
                )
                results = {name: Result() for name in names}
                # Alternating short windows share out any other load on the host between the two.
                for _ in range(args.rounds):
                    for name in names:
                        url, pid = targets[name]
                        await load(url, script, concurrency, args.warmup, window, pid, results[name])
                for name in names:
                    report(name, results[name])
                fed = results.get("fedgate")
                for peer in ("moto", "baseline"):
                    other = results.get(peer)
                    if fed is not None and other is not None:
                        print(
                            f"  ratio fedgate/{peer}: {fed.rate / max(other.rate, 1e-9):.2f}x req/s, "
                            f"{other.cpu_ms_per_request / fed.cpu_ms_per_request:.2f}x less server CPU "
                            "per request"
                        )


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def add_baseline_option(parser: argparse.ArgumentParser) -> None:
    """``--baseline SRC``: another checkout's fedgate, measured beside this one's."""
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="SRC",
        help="also serve fedgate from the source tree SRC (e.g. `git archive main | tar -x -C SRC`), "
        "measured beside this checkout's in the same rounds",
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="measured seconds per server and concurrency"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating windows the seconds are split into"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="seconds of the warm-up run before each measured one"
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument(
        "--only", choices=["fedgate", "moto"], help="measure one server (e.g. with --profile)"
    )
    add_baseline_option(parser)
    parser.add_argument(
        "--profile", type=Path, metavar="FILE", help="run fedgate under pyinstrument; its report goes here"
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
    if shutil.which("wrk") is None:
        sys.exit("sts_bench.py needs wrk, the HTTP load generator: apt-get install wrk")

    # SIGTERM (run_all.py's time limit) unwinds like Ctrl-C, so the finally below stops the servers.
    signal.signal(signal.SIGTERM, _terminate)
    with tempfile.TemporaryDirectory(prefix="fedgate-sts-bench-") as workdir:
        # A profiled server writes its report as it stops: give it time to.
        servers = Servers(Path(workdir), stop_timeout=5.0 if args.profile is None else 120.0)
        try:
            asyncio.run(run(args, servers))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None
        finally:
            servers.stop_all()


if __name__ == "__main__":
    main()
