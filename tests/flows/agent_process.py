"""``fedgate agent`` run as a real process, and the stock clients that read credentials from it.

The agent is started from a YAML file exactly as an operator would (``fedgate agent -c FILE``), on
127.0.0.1 with ports chosen by the kernel; the endpoints it bound are read from its first log line.
Its stderr is kept, so a test can check that nothing in it is a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "tests" / "js"
FEDGATE = str(Path(sys.executable).with_name("fedgate"))


class AgentProcess:
    """A running ``fedgate agent``; use :func:`start_agent`."""

    def __init__(self, proc: subprocess.Popen[str], token_file: Path) -> None:
        self.proc = proc
        self.token_file = token_file
        self.lines: list[str] = []
        self.container = ""
        self.imds: dict[str, str] = {}
        self.paths: dict[str, str] = {}
        self._serving = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if "container_endpoint" in entry:
                self.container = entry["container_endpoint"]
                self.imds = entry["imds_endpoints"]
                self.paths = entry["paths"]
                self._serving.set()
        self._serving.set()

    def wait_serving(self, timeout: float = 20) -> None:
        """Until the agent logs its endpoints; fails the test with its log if it exits instead."""
        self._serving.wait(timeout)
        if not self.container:
            self.stop()
            pytest.fail("fedgate agent did not start:\n" + self.log(), pytrace=False)

    def url(self, role: str) -> str:
        """The container credentials URL of ``role``."""
        return self.container + self.paths[role]

    def health(self) -> dict[str, Any]:
        """``/healthz``."""
        with urllib.request.urlopen(self.container + "/healthz", timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def role_status(self, role: str) -> dict[str, Any]:
        """One role's entry in ``/healthz``."""
        return self.health()["roles"][role]  # type: ignore[no-any-return]

    def wait_for(
        self, role: str, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 20
    ) -> None:
        """Poll the role's status until ``check`` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check(self.role_status(role)):
                return
            time.sleep(0.1)
        pytest.fail(f"{what}: not within {timeout} s; status {self.role_status(role)}", pytrace=False)

    def wait_renewal(self, role: str, timeout: float = 20) -> None:
        """Until ``role`` has been renewed once more than now."""
        seen = self.role_status(role)["renewals"]
        self.wait_for(role, lambda s: s["renewals"] > seen and s["valid"], f"a renewal of {role}", timeout)

    def stop(self) -> int:
        """SIGTERM, then wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return self.proc.returncode

    def log(self) -> str:
        """Everything the agent wrote to stderr."""
        return "\n".join(self.lines)

    def assert_clean_log(self) -> None:
        """No traceback, no exception field, and every line a JSON log entry."""
        text = self.log()
        assert "Traceback" not in text, text
        for line in self.lines:
            entry = json.loads(line)
            assert "exception" not in entry, line


def start_agent(config: Mapping[str, Any], directory: Path) -> AgentProcess:
    """Write ``config`` to ``directory/agent.yaml`` and run ``fedgate agent -c`` on it."""
    path = directory / "agent.yaml"
    path.write_text(yaml.safe_dump(dict(config)))
    return launch_agent(["-c", str(path)], Path(config["authorization_token_file"]))


def launch_agent(args: list[str], token_file: Path, cwd: Path | None = None) -> AgentProcess:
    """``fedgate agent ARGS``, once it serves; ``token_file`` is its authorization token file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [FEDGATE, "agent", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )
    agent = AgentProcess(proc, token_file)
    agent.wait_serving()
    return agent


def write_token(path: Path, token: str) -> None:
    """Replace the token file in one rename, as the kubelet swaps a projected token."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(token)
    os.replace(tmp, path)


def client_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a client process: no AWS settings but ``extra``, nothing from the machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "HOME": str(home),
            "AWS_CONFIG_FILE": str(home / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
    )
    env.update(extra)
    return env


def node() -> str:
    """The ``node`` binary, with the JS SDK installed; fails with the fix when either is missing."""
    binary = shutil.which("node")
    if binary is None:
        pytest.fail("node is not installed: apt-get install nodejs npm (.ci/run does)", pytrace=False)
    if not (JS / "node_modules" / "@aws-sdk" / "client-sts").is_dir():
        pytest.fail("the JS SDK is not installed in tests/js: run `make install` (npm ci)", pytrace=False)
    return binary


def run_js_caller_identity(endpoint: str, env: Mapping[str, str]) -> dict[str, Any]:
    """``tests/js/sts-get-caller-identity.mjs`` with ``env``; its JSON line."""
    run = subprocess.run(
        [node(), str(JS / "sts-get-caller-identity.mjs"), endpoint],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=60,
        cwd=JS,
    )
    lines = run.stdout.strip().splitlines()
    assert lines, f"no output from node (status {run.returncode}): {run.stderr}"
    return json.loads(lines[-1])  # type: ignore[no-any-return]
