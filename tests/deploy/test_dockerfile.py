"""deploy/Dockerfile, read statically (this machine has no Docker engine to build it), and its
HEALTHCHECK run for real against a live gateway on a port only the configuration names.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from tests.conftest import free_port
from tests.deploy.manifests import BIN, DEPLOY, KUBERNETES, ROOT, load_yaml
from tests.serving import serve, stop, write_config

DOCKERFILE = DEPLOY / "Dockerfile"
SECRETISH = re.compile(r"KEY|SECRET|PASSW|TOKEN|CREDENTIAL|PRIVATE", re.IGNORECASE)


def _instructions() -> list[dict[str, Any]]:
    parsed = DockerfileParser(path=str(DOCKERFILE))
    return [i for i in parsed.structure if i["instruction"] != "COMMENT"]


def _final_stage() -> list[dict[str, Any]]:
    instructions = _instructions()
    last_from = max(i for i, ins in enumerate(instructions) if ins["instruction"] == "FROM")
    return instructions[last_from:]


def _only(instruction: str, stage: list[dict[str, Any]] | None = None) -> str:
    found = [i["value"] for i in (stage or _final_stage()) if i["instruction"] == instruction]
    assert len(found) == 1, f"expected one {instruction} in the final stage, found {found}"
    return str(found[0])


def _exec_form(value: str) -> list[str]:
    words = json.loads(value)
    assert isinstance(words, list) and all(isinstance(w, str) for w in words), value
    return words


def _healthcheck() -> tuple[dict[str, str], list[str]]:
    """HEALTHCHECK's options and its command (exec form)."""
    value = " ".join(_only("HEALTHCHECK").split())
    options, _, command = value.partition(" CMD ")
    flags = dict(re.findall(r"--([a-z-]+)=(\S+)", options))
    return flags, _exec_form(command)


def _entrypoint_and_cmd() -> list[str]:
    return _exec_form(_only("ENTRYPOINT")) + _exec_form(_only("CMD"))


def test_every_base_image_is_pinned() -> None:
    stages: list[str] = []
    for ins in _instructions():
        if ins["instruction"] != "FROM":
            continue
        image, _, alias = ins["value"].partition(" AS ")
        if image in stages:
            continue  # an earlier stage of this file
        if "@sha256:" not in image:
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag, f"{image}: no tag"
            assert tag != "latest" and re.search(r"\d", tag), f"{image}: pin a version"
        if alias:
            stages.append(alias.strip())


def test_runs_as_a_numeric_unprivileged_user_matching_kubernetes() -> None:
    user, _, group = _only("USER").partition(":")
    assert user.isdigit() and int(user) > 0, "numeric, so runAsNonRoot can verify it"
    assert group.isdigit() and int(group) > 0
    pod = load_yaml(KUBERNETES / "deployment.yaml")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(user)
    assert pod["securityContext"]["runAsGroup"] == int(group)
    final = _final_stage()
    last_user = max(i for i, ins in enumerate(final) if ins["instruction"] == "USER")
    assert all(ins["instruction"] != "RUN" for ins in final[last_user:]), "nothing runs as root after USER"


def test_no_secret_in_env_or_arg() -> None:
    parsed = DockerfileParser(path=str(DOCKERFILE))
    for name in [*parsed.envs, *parsed.args]:
        assert not SECRETISH.search(name), f"{name}: secrets reach fedgate by reference at run time"
    for ins in _instructions():
        if ins["instruction"] in ("RUN", "ENV", "ARG"):
            assert not re.search(r"--mount=type=secret|AKIA|ASIA|BEGIN .*PRIVATE KEY", ins["value"])


def test_the_config_path_is_the_one_compose_and_kubernetes_mount() -> None:
    path = DockerfileParser(path=str(DOCKERFILE)).envs["FEDGATE_CONFIG"]
    compose = load_yaml(DEPLOY / "compose.yaml")["services"]["fedgate"]
    assert compose["environment"]["FEDGATE_CONFIG"] == path
    (container,) = load_yaml(KUBERNETES / "deployment.yaml")["spec"]["template"]["spec"]["containers"]
    assert {"name": "FEDGATE_CONFIG", "value": path} in container["env"]
    assert "--config" not in _entrypoint_and_cmd() and "-c" not in _entrypoint_and_cmd()


def test_healthcheck_follows_the_configured_port() -> None:
    flags, command = _healthcheck()
    assert {"interval", "timeout", "start-period", "retries"} <= set(flags)
    assert command[:3] == ["python", "-m", "gateway.healthcheck"]
    assert "--port" not in command, "the port comes from $FEDGATE_CONFIG, as serve's does"
    assert not any(re.fullmatch(r"\d{2,5}", word) for word in command), "no hard-coded port"
    serve_line = _entrypoint_and_cmd()
    assert "--port" not in serve_line
    # The probe is aimed like the server binds: the same --host override, or none.
    host = serve_line[serve_line.index("--host") + 1] if "--host" in serve_line else None
    probe_host = command[command.index("--host") + 1] if "--host" in command else None
    assert probe_host == host
    assert _only("EXPOSE") == str(load_yaml(DEPLOY / "fedgate.yaml")["listen"]["port"])


def test_dockerignore_keeps_the_build_context_small_and_secret_free() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "everything is out unless listed: .venv, deploy/secrets, keys"
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for ins in _instructions():
        if ins["instruction"] == "COPY" and "--from=" not in ins["value"]:
            copied.update(ins["value"].split()[:-1])
    assert copied == kept


@pytest.fixture()
def image_server(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A gateway started with the image's ENTRYPOINT and CMD on a port only its config names."""
    port = free_port()
    config = write_config(tmp_path / "fedgate.yaml", port)
    line = _entrypoint_and_cmd()
    # Bound to loopback here rather than every address, the one change to the image's command.
    line[line.index("--host") + 1] = "127.0.0.1"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FEDGATE_CONFIG": str(config)}
    process = serve([str(BIN / line[0]), *line[1:]], config, port, env=env)
    try:
        yield config, port
    finally:
        stop(process)


def test_the_healthcheck_command_finds_the_server(image_server: tuple[Path, int]) -> None:
    config, _ = image_server
    _, command = _healthcheck()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FEDGATE_CONFIG": str(config)}
    result = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, "")
    # Compose's readiness probe, run the same way.
    compose_test = load_yaml(DEPLOY / "compose.yaml")["services"]["fedgate"]["healthcheck"]["test"]
    result = subprocess.run(
        [sys.executable, *compose_test[2:]], env=env, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, "")
    # And the same probe against a config naming another port reports the server missing.
    elsewhere = write_config(config.parent / "other.yaml", free_port())
    result = subprocess.run(
        [sys.executable, *command[1:]],
        env={**env, "FEDGATE_CONFIG": str(elsewhere)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no answer" in result.stderr
