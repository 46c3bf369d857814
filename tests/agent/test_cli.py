"""``fedgate agent`` on the command line: help for every action, and one line (exit 2) naming the
key or flag for every mistake, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.cli import main

FEDGATE = str(Path(sys.executable).with_name("fedgate"))
ARN = "arn:aws:iam::123456789012:role/app"


@pytest.mark.parametrize(
    "command",
    [["agent"], ["agent", "credential-process"], ["agent", "check-config"], ["agent", "config-reference"]],
)
def test_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: fedgate {' '.join(command)}") and len(out.splitlines()) > 6


def _file(tmp_path: Path, **changes: object) -> str:
    config: dict[str, object] = {
        "gateway": {"url": "http://127.0.0.1:1"},
        "authorization_token_file": str(tmp_path / "run" / "token"),
        "roles": [{"name": "app", "role_arn": ARN, "source": {"token_file": str(tmp_path / "jwt")}}],
    }
    config.update(changes)
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err.strip().splitlines()


def test_check_config_summarises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path)
    assert main(["agent", "check-config", "-c", path]) == 0
    assert (
        capsys.readouterr().out == f"{path}: OK (gateway http://127.0.0.1:1; 1 role(s): app at /roles/app)\n"
    )


def test_check_config_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, listen={"host": "0.0.0.0", "port": "many"})
    assert main(["agent", "check-config", "-c", path]) == 2
    lines = _lines(capsys)
    assert len(lines) == 2 and all(line.startswith("fedgate agent check-config: listen.") for line in lines)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "fedgate agent check-config: no configuration: give -c FILE"),
        (
            ["-c", "/nonexistent/agent.yaml"],
            "fedgate agent check-config: /nonexistent/agent.yaml: cannot read",
        ),
        (["--role-arn", ARN], "fedgate agent check-config: --role-arn and --token-file: give both"),
        (
            [
                "--gateway-url",
                "https://g.example.com",
                "--role-arn",
                ARN,
                "--token-file",
                "/t",
                "--duration",
                "5",
            ],
            "fedgate agent check-config: --duration: Input should be greater than or equal to 900",
        ),
        (
            ["--gateway-url", "http://g.example.com", "--role-arn", ARN, "--token-file", "/t"],
            "fedgate agent check-config: --gateway-url: must use https",
        ),
        (
            ["--gateway-url", "https://g.example.com", "--role-arn", "nope", "--token-file", "/t"],
            "fedgate agent check-config: --role-arn: must be a role ARN",
        ),
        (
            [
                "--gateway-url",
                "https://g.example.com",
                "--role-arn",
                ARN,
                "--token-file",
                "/t",
                "--listen",
                "x",
            ],
            "fedgate agent check-config: --listen: give HOST:PORT",
        ),
        (
            [
                "--gateway-url",
                "https://g.example.com",
                "--role-arn",
                ARN,
                "--token-file",
                "/t",
                "--imds",
                "0.0.0.0:80",
            ],
            "fedgate agent check-config: --imds: must be a loopback or link-local address",
        ),
    ],
)
def test_mistakes_name_the_flag(args: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agent", "check-config", *args]) == 2
    lines = _lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(expected), lines


def test_flags_alone_describe_one_role(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "--gateway-url",
        "https://g.example.com",
        "--role-arn",
        "arn:aws:iam::123456789012:role/ci/deploy+x",
    ]
    assert main(["agent", "check-config", *args, "--token-file", "/t", "--imds", "[::1]:9912"]) == 0
    assert "1 role(s): deploy-x at /roles/deploy-x and IMDSv2 ::1:9912" in capsys.readouterr().out


def test_roles_in_one_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["agent", "check-config", "-c", _file(tmp_path), "--role-arn", ARN, "--token-file", "/t"]) == 2
    )
    assert "already lists roles" in _lines(capsys)[0]


def test_bad_yaml_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("gateway: [unclosed\nroles: {")
    assert main(["agent", "check-config", "-c", str(path)]) == 2
    lines = _lines(capsys)
    assert len(lines) == 1 and "not valid YAML" in lines[0]


def _agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FEDGATE, "agent", *args], capture_output=True, text=True, timeout=60)


def test_run_without_a_token_file_to_write() -> None:
    run = _agent("--gateway-url", "https://g.example.com", "--role-arn", ARN, "--token-file", "/t")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [
        "fedgate agent: authorization_token_file: required to serve (or --authorization-token-file): "
        "the agent writes there the token SDKs must send"
    ]


def test_run_on_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = _agent("-c", _file(tmp_path, listen={"host": "127.0.0.1", "port": port}))
    assert run.returncode == 1
    assert f"fedgate agent: cannot listen on 127.0.0.1 port {port}: " in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "run" / "token").exists()  # what it wrote is taken back


def test_run_with_a_token_file_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    run = _agent("-c", _file(tmp_path, authorization_token_file=str(tmp_path / "file" / "token")))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"fedgate agent: cannot write the authorization token file {tmp_path}/file/token: "
    )


def test_credential_process_failures_are_one_line(tmp_path: Path) -> None:
    path = _file(tmp_path)
    (tmp_path / "jwt").write_text("a.b.c")
    direct = _agent("credential-process", "-c", path)
    assert direct.returncode == 1 and direct.stdout == ""
    assert direct.stderr.splitlines() == [
        "fedgate agent credential-process: cannot reach the gateway at http://127.0.0.1:1: "
        "Connect call failed ('127.0.0.1', 1)"
    ]
    cached = _agent("credential-process", "-c", path, "--from-agent")
    assert cached.returncode == 1 and cached.stdout == ""
    assert len(cached.stderr.splitlines()) == 1 and "(is the agent running?)" in cached.stderr
    missing = _agent("credential-process", "-c", path, "--role", "other")
    assert missing.returncode == 2
    assert missing.stderr.splitlines() == [
        "fedgate agent credential-process: --role: no role named 'other' (configured: app)"
    ]


def test_credential_process_from_a_file_that_is_no_token(tmp_path: Path) -> None:
    path = _file(tmp_path, listen={"host": "127.0.0.1", "port": 9})
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "token").write_text("two\nlines")
    run = _agent("credential-process", "-c", path, "--from-agent")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.splitlines() == [
        f"fedgate agent credential-process: {tmp_path}/run/token does not hold an agent's token (is this the "
        "right file?)"
    ]
