"""Every command-line failure a user can cause is one line on stderr naming the cause and the fix,
with exit status 2 and no traceback (unless ``--debug``). Each case runs the real ``fedgate`` in a
subprocess, as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ACCOUNT = "123456789012"
KEYRING = "keyring: {active: k1, keys: [{id: k1, secret: %s}]}\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fedgate(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FEDGATE_")} | (env or {})
    return subprocess.run(
        [str(BIN / "fedgate"), *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=60
    )


def _one_line(run: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The run failed with status 2 and exactly one ``fedgate:`` line holding ``expected``."""
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("fedgate:")]
    assert len(lines) == 1, run.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    # Nothing else but JSON log lines (the server's own start-up log).
    assert all(line.startswith("{") for line in run.stderr.splitlines() if not line.startswith("fedgate:"))
    return lines[0]


@pytest.fixture()
def config(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "fedgate.yaml"
    yield path


def _write(path: Path, *lines: str) -> Path:
    path.write_text(
        f"account_id: '{ACCOUNT}'\ndatabase: {{url: 'sqlite:///{path.parent}/iam.db'}}\n" + "".join(lines)
    )
    return path


def test_port_already_in_use(config: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        run = _fedgate("serve", "-c", str(_write(config)), "--port", port, cwd=tmp_path)
    _one_line(run, f"cannot listen on 127.0.0.1:{port}", "already in use", "--port")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_missing_secret_variable(config: Path, tmp_path: Path, workers: str) -> None:
    """With two workers too: said once, by the parent, before any worker starts."""
    _write(config, KEYRING % "{env: FEDGATE_TEST_UNSET_KEY}")
    port = str(_free_port())
    run = _fedgate("serve", "-c", str(config), "--port", port, "--workers", workers, cwd=tmp_path)
    _one_line(run, "keyring.keys[0].secret", "FEDGATE_TEST_UNSET_KEY is not set", "export it")


def test_missing_secret_file(config: Path, tmp_path: Path) -> None:
    _write(config, KEYRING % f"{{file: {tmp_path}/nope.key}}")
    run = _fedgate("serve", "-c", str(config), "--port", str(_free_port()), cwd=tmp_path)
    _one_line(run, "keyring.keys[0].secret", "cannot read secret file", "nope.key", "No such file")


def test_unreadable_secret_file(config: Path, tmp_path: Path) -> None:
    """A directory where the secret file should be (root reads any file, so permissions cannot show it)."""
    (tmp_path / "secret.d").mkdir()
    _write(config, KEYRING % f"{{file: {tmp_path}/secret.d}}")
    run = _fedgate("serve", "-c", str(config), "--port", str(_free_port()), cwd=tmp_path)
    _one_line(run, "cannot read secret file", "Is a directory")


def test_short_key(config: Path, tmp_path: Path) -> None:
    _write(config, KEYRING % "{env: FEDGATE_TEST_KEY}")
    run = _fedgate("serve", "-c", str(config), cwd=tmp_path, env={"FEDGATE_TEST_KEY": "abc"})
    _one_line(run, "keyring.keys[0].secret: must be at least 32 bytes")


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"\xff\xfe not text", "not UTF-8 text"), (b"account_id: [", "not valid YAML")],
)
def test_unreadable_configuration(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    _one_line(_fedgate("serve", "-c", str(path), cwd=tmp_path), "bad.yaml", expected)


def test_configuration_is_a_directory(tmp_path: Path) -> None:
    _one_line(_fedgate("serve", "-c", str(tmp_path), cwd=tmp_path), "cannot read", "--config")


def test_postgresql_down(config: Path, tmp_path: Path) -> None:
    config.write_text(
        f"account_id: '{ACCOUNT}'\n"
        f"database: {{url: 'postgresql://fedgate:pw-not-shown@127.0.0.1:{_free_port()}/iam', "
        "connect_timeout_seconds: 2}\n"
    )
    for command in (
        ["serve", "-c", str(config), "--port", str(_free_port())],
        ["db", "upgrade", "-c", str(config)],
    ):
        line = _one_line(_fedgate(*command, cwd=tmp_path), "the IAM database is unreachable", "database.url")
        assert "pw-not-shown" not in line


def test_revoke_sessions_with_redis_down(config: Path, tmp_path: Path) -> None:
    """Revocations live in the IAM database: a Redis that is down does not stop them."""
    _write(
        config,
        f"store: {{backend: redis, url: 'redis://127.0.0.1:{_free_port()}/0'}}\n",
        "roles: [{name: app, trust_policy: {Version: '2012-10-17', Statement: [{Effect: Allow, "
        "Principal: '*', Action: 'sts:AssumeRoleWithWebIdentity'}]}}]\n",
    )
    run = _fedgate("revoke-sessions", "-c", str(config), "--role", "app", cwd=tmp_path)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert "sessions issued before" in run.stdout


def test_unknown_role_to_revoke(config: Path, tmp_path: Path) -> None:
    run = _fedgate("revoke-sessions", "-c", str(_write(config)), "--role", "nope", cwd=tmp_path)
    _one_line(run, "--role: no role named 'nope'")


def test_debug_adds_the_traceback(config: Path, tmp_path: Path) -> None:
    _write(config, KEYRING % "{env: FEDGATE_TEST_UNSET_KEY}")
    run = _fedgate("serve", "--debug", "-c", str(config), "--port", str(_free_port()), cwd=tmp_path)
    assert run.returncode == 2
    assert "Traceback" in run.stderr and "fedgate: invalid configuration: keyring" in run.stderr
