"""Store fault recovery: a gateway whose Redis is paused, resumed and restarted, beside the old behaviour.

Run: ``.venv/bin/python bench/store_faults_bench.py [--concurrency 4] [--pause 7]``.

A private ``redis-server`` (:class:`gateway.testing.redis.RedisServer`: a free port, no persistence)
backs one ``fedgate serve`` subprocess (SAML provider, ``clock_skew_seconds: 0``, audit ``none``,
log level WARNING). ``--concurrency`` clients send ``AssumeRoleWithSAML`` back to back with a few
responses from an in-process :class:`gateway.testing.saml.SAMLTestIdP`, minted up front: each is
accepted once and then refused as a replay, which only the store can decide, so every call needs
the store (a 503 when it cannot answer). "Answered" below means accepted or refused as a replay.
Then:

1. **SIGSTOP** Redis for ``--pause`` seconds: the time from the signal to the first 503 and to the
   first 503 the open circuit breaker answered (``circuit open``: no wait at all), and the median
   latency of the 503s to requests sent while Redis was paused (the pause outlasts the peer's 5 s),
   beside the median latency while Redis was healthy (the SAML checks themselves, a few ms);
2. **SIGCONT**: the time from the signal until requests are answered again;
3. **restart empty** (the same port): the time from Redis answering again until requests are
   answered again, and until a freshly minted SAML response is accepted (which also waits for the
   first whole second after the store's new generation began: IssueInstant has whole seconds).

The peer is the same gateway as fedgate behaved before it had a deadline and a breaker: operation
deadline 5 s (the socket timeout it used to wait), breaker threshold 1000. The last lines are the
ratios before/now: failing is about twenty times faster now, recovering slower by up to one
breaker cool-down (``store.breaker_cooldown``, 1 s), the price of not hammering a dead server.
Also printed: how many "store is unavailable" lines each gateway logged. The run takes about 40 s.
Figures depend on the machine's load; the ratios much less.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
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
import yaml

from gateway.testing.redis import RedisServer, backdate_generation
from gateway.testing.saml import SAMLTestIdP

ACCOUNT = "123456789012"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Engineers"
PREFIX = "fedgate-bench:"
VENV_BIN = Path(sys.executable).parent
HEADERS = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
PHASE_LIMIT = 20.0  # seconds any one recovery may take before the bench gives up on it


@dataclass
class Outcome:
    sent: float
    done: float
    status: int
    code: str


@dataclass
class Run:
    """What the clients saw, in monotonic time."""

    outcomes: list[Outcome] = field(default_factory=list)

    def first(self, after: float, pred: Any) -> Outcome | None:
        found = [o for o in self.outcomes if o.done >= after and pred(o)]
        return min(found, key=lambda o: o.done) if found else None


def _config(workdir: Path, idp: SAMLTestIdP, redis_url: str, *, timeout: float, failures: int) -> Path:
    raw = {
        "account_id": ACCOUNT,
        "log_level": "WARNING",
        "audit": {"sink": "none"},
        "clock_skew_seconds": 0,
        "store": {
            "backend": "redis",
            "url": redis_url,
            "prefix": PREFIX,
            "operation_timeout": timeout,
            "breaker_failures": failures,
            "breaker_cooldown": 1.0,
        },
        "providers": [idp.provider_config(name="corp")],
        "roles": [
            {
                "name": "Engineers",
                "trust_policy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": PROVIDER},
                            "Action": "sts:AssumeRoleWithSAML",
                        }
                    ],
                },
            }
        ],
    }
    path = workdir / f"fedgate-{timeout}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the bench dies without cleaning up (even SIGKILL)."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gateway:
    """One ``fedgate serve`` subprocess; its stderr goes to a file counted at the end."""

    def __init__(self, config: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "fedgate"), "serve", "-c", str(config), "--port", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # fine here: the bench starts no threads
            )

    async def wait_ready(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{self.url}/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise SystemExit(f"fedgate did not become ready; see {self.log}")

    def outage_lines(self) -> int:
        return self.log.read_text(errors="replace").count("the store is unavailable")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _body(assertion: str) -> str:
    return urlencode(
        {
            "Action": "AssumeRoleWithSAML",
            "Version": "2011-06-15",
            "RoleArn": ROLE,
            "PrincipalArn": PROVIDER,
            "SAMLAssertion": assertion,
        }
    )


async def _post(http: aiohttp.ClientSession, gateway: Gateway, body: str) -> Outcome:
    sent = time.monotonic()
    try:
        async with http.post(gateway.url + "/", data=body, headers=HEADERS) as response:
            text = await response.text()
            status = response.status
    except (aiohttp.ClientError, OSError):
        status, text = 0, ""
    return Outcome(sent, time.monotonic(), status, "ok" if status == 200 else _code(text))


async def _client(
    http: aiohttp.ClientSession, gateway: Gateway, bodies: list[str], run: Run, stop: asyncio.Event
) -> None:
    # Minting a response costs the client ~25 ms of CPU, which would be measured as latency: the
    # load cycles through a few minted up front. After its first use each is refused as a replay,
    # which the replay guard can only decide by asking the store, so every call still needs it.
    n = 0
    while not stop.is_set():
        run.outcomes.append(await _post(http, gateway, bodies[n % len(bodies)]))
        n += 1


async def _fresh_accepted(http: aiohttp.ClientSession, gateway: Gateway, idp: SAMLTestIdP) -> float:
    """Send freshly minted responses until one is accepted; return when it was (monotonic)."""
    deadline = time.monotonic() + PHASE_LIMIT
    while time.monotonic() < deadline:
        # Minted here, on the loop (no thread: the gateways are forked with a pre-exec hook).
        body = _body(SAMLTestIdP.b64(idp.response(roles=[(ROLE, PROVIDER)])))
        outcome = await _post(http, gateway, body)
        if outcome.status == 200:
            return outcome.done
        await asyncio.sleep(0.02)
    raise SystemExit(f"no fresh response was accepted within {PHASE_LIMIT:.0f} s")


def _code(text: str) -> str:
    if "circuit open" in text:
        return "ServiceUnavailable/open"
    start = text.find("<Code>")
    return text[start + 6 : text.find("</Code>")] if start >= 0 else "?"


async def _until(run: Run, after: float, pred: Any, what: str) -> Outcome:
    deadline = time.monotonic() + PHASE_LIMIT
    while (found := run.first(after, pred)) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"never saw {what} within {PHASE_LIMIT:.0f} s")
        await asyncio.sleep(0.01)
    return found


def _answered(o: Outcome) -> bool:
    """The store was reachable: accepted, or refused as a replay (which only the store can tell)."""
    return o.status == 200 or o.code == "InvalidIdentityToken"


async def measure(
    label: str, gateway: Gateway, server: RedisServer, idp: SAMLTestIdP, args: argparse.Namespace
) -> dict[str, float]:
    bodies = [_body(SAMLTestIdP.b64(idp.response(roles=[(ROLE, PROVIDER)]))) for _ in range(16)]
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await gateway.wait_ready(http)
        run, stop = Run(), asyncio.Event()
        clients = [
            asyncio.create_task(_client(http, gateway, bodies, run, stop)) for _ in range(args.concurrency)
        ]
        try:
            start = time.monotonic()
            await _until(run, start, _answered, "a first answer")
            warm = time.monotonic()
            await asyncio.sleep(1.0)

            server.pause()
            paused = time.monotonic()
            healthy = [o.done - o.sent for o in run.outcomes if _answered(o) and warm <= o.sent < paused]
            first_503 = await _until(run, paused, lambda o: o.status == 503, "a 503 while paused")
            remaining = args.pause - (time.monotonic() - paused)
            if remaining > 0:
                await asyncio.sleep(remaining)
            fast = run.first(paused, lambda o: o.code == "ServiceUnavailable/open")
            server.resume()
            resumed = time.monotonic()
            back = await _until(run, resumed, lambda o: _answered(o) and o.sent >= resumed, "an answer")
            await asyncio.sleep(0.5)
            during = [o.done - o.sent for o in run.outcomes if o.status == 503 and paused <= o.sent < resumed]

            server.restart()  # returns once the new, empty server answers PING
            restarted = time.monotonic()
            answered = await _until(
                run, restarted, lambda o: _answered(o) and o.sent >= restarted, "an answer"
            )
            accepted = await _fresh_accepted(http, gateway, idp)
        finally:
            stop.set()
            await asyncio.gather(*clients, return_exceptions=True)
    figures = {
        "SIGSTOP -> first 503 (s)": first_503.done - paused,
        "SIGSTOP -> first breaker 503 (s)": (fast.done - paused) if fast else float("nan"),
        "latency while healthy, median (ms)": statistics.median(healthy) * 1000,
        "503 latency while hung, median (ms)": statistics.median(during) * 1000 if during else float("nan"),
        "SIGCONT -> answered again (s)": back.done - resumed,
        "restart -> answered again (s)": answered.done - restarted,
        "restart -> fresh SAML accepted (s)": accepted - restarted,
        "requests": float(len(run.outcomes)),
    }
    print(f"\n{label}", flush=True)
    for name, value in figures.items():
        print(f"  {name:<40} {value:>10.3f}" if name != "requests" else f"  {name:<40} {value:>10.0f}")
    return figures


async def run_all(args: argparse.Namespace, workdir: Path) -> None:
    with SAMLTestIdP() as idp, RedisServer() as server:
        results = {}
        for label, timeout, failures in (
            ("fedgate (250 ms deadline, breaker after 3 failures)", 0.25, 3),
            ("peer: before (5 s deadline, as the socket timeout; no breaker)", 5.0, 1000),
        ):
            with server.client() as client:
                client.flushall()  # our own server: a clean start for each gateway
                backdate_generation(client, PREFIX, time.time() - 3600)
            config = _config(workdir, idp, server.url, timeout=timeout, failures=failures)
            gateway = Gateway(config, workdir / f"fedgate-{timeout}.log")
            try:
                results[label] = await measure(label, gateway, server, idp, args)
            finally:
                gateway.stop()
            print(f"  {'store outage log lines':<40} {gateway.outage_lines():>10d}")
        new, old = results.values()
        # Below 1: slower now. Recovery waits for the breaker's cool-down (1 s) before it probes.
        print("\nratios before/now (above 1: faster now)")
        for name in (
            "SIGSTOP -> first 503 (s)",
            "503 latency while hung, median (ms)",
            "SIGCONT -> answered again (s)",
            "restart -> answered again (s)",
            "restart -> fresh SAML accepted (s)",
        ):
            print(f"  {name:<40} {old[name] / new[name]:>10.2f}x")


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, default=4, help="clients sending back to back")
    parser.add_argument("--pause", type=float, default=7.0, help="seconds Redis stays paused")
    args = parser.parse_args(argv)
    if not (0 < args.concurrency <= 64 and 0 < args.pause <= 30):
        parser.error("bounded runs only: concurrency in (0, 64], pause in (0, 30]")
    # SIGTERM (run_all.py's time limit) unwinds like Ctrl-C, so the servers are stopped.
    signal.signal(signal.SIGTERM, _terminate)
    with tempfile.TemporaryDirectory(prefix="fedgate-store-bench-") as workdir:
        try:
            asyncio.run(run_all(args, Path(workdir)))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None


if __name__ == "__main__":
    main()
