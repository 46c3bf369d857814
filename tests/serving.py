"""`fedgate serve` as a child process on a free port, for tests that probe it from outside."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(path: Path, port: int, store: str = "{backend: memory}", host: str = "127.0.0.1") -> Path:
    """A minimal configuration listening on ``host:port``."""
    path.write_text(f'account_id: "123456789012"\nlisten: {{host: "{host}", port: {port}}}\nstore: {store}\n')
    return path


def serve(
    command: list[str], config: Path, port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``command`` (a `fedgate serve` line) and wait until ``port`` answers /healthz."""
    process = subprocess.Popen(
        command, cwd=config.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"fedgate did not start: {process.communicate()[1]}") from None
            time.sleep(0.1)


def stop(process: subprocess.Popen[str]) -> None:
    """Stop a server started by :func:`serve`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
