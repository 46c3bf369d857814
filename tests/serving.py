"""`fedgate serve` as a child process on a port only its configuration names, for probing from outside."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import wait_until_listening


def write_config(path: Path, port: int, store: str = "{backend: memory}", host: str = "127.0.0.1") -> Path:
    """A minimal configuration listening on ``host:port``."""
    path.write_text(f'account_id: "123456789012"\nlisten: {{host: "{host}", port: {port}}}\nstore: {store}\n')
    return path


def serve(
    command: list[str], config: Path, port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` (a `fedgate serve` line for ``config``) and wait until ``port`` accepts."""
    log = config.with_suffix(".log")
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=config.parent, env=env, stdout=subprocess.DEVNULL, stderr=out)
    try:
        wait_until_listening(process, port, log, within=30)
    except BaseException:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started by :func:`serve` (SIGTERM, then SIGKILL if it lingers)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
