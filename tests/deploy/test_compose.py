"""deploy/compose.yaml: valid Compose, and consistent with the configuration it mounts.

The schema is the Compose Specification's, as vendored by check-jsonschema (no network needed).
The rest are the mistakes a schema cannot see: a probe or a port mapping that is not the port
fedgate listens on, a secret the configuration reads that compose does not mount, a Redis that
forgets one-time-use markers when it restarts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.manifests import BIN, DEPLOY, WILDCARDS, check_config, load_yaml, secret_uses

COMPOSE = DEPLOY / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def fedgate(compose: dict[str, Any]) -> dict[str, Any]:
    service = compose["services"]["fedgate"]
    assert isinstance(service, dict)
    return service


def _mounted_config(service: dict[str, Any]) -> Path:
    """The host file behind the service's $FEDGATE_CONFIG, which must be mounted read-only."""
    target = service["environment"]["FEDGATE_CONFIG"]
    (mount,) = [v for v in service["volumes"] if isinstance(v, dict) and v["target"] == target]
    assert mount["type"] == "bind"
    assert mount["read_only"] is True, "the configuration must be mounted read-only"
    return (COMPOSE.parent / mount["source"]).resolve()


@pytest.fixture(scope="module")
def config(fedgate: dict[str, Any]) -> dict[str, Any]:
    data = load_yaml(_mounted_config(fedgate))
    assert isinstance(data, dict)
    return data


def _command(test: list[str]) -> list[str]:
    assert test[0] == "CMD", "exec form, so no shell is needed in the image"
    return test[1:]


def test_validates_against_the_compose_specification() -> None:
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_misspelt_key(tmp_path: Path) -> None:
    """The validation above is not vacuous: the same command refuses a one-letter slip."""
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("read_only: true", "read_onyl: true", 1))
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "read_onyl" in result.stdout


def test_ports_and_probe_follow_the_mounted_config(fedgate: dict[str, Any], config: dict[str, Any]) -> None:
    listen = config["listen"]
    assert listen["host"] in WILDCARDS, "fedgate must listen beyond the container's loopback"
    port = listen["port"]
    published = [str(p).rsplit(":", 1) for p in fedgate["ports"]]
    assert [container for _, container in published] == [str(port)]
    host_side = published[0][0].rsplit(":", 1)[-1]
    first, last = (int(n) for n in host_side.split("-"))
    assert last - first + 1 >= fedgate["deploy"]["replicas"], "one host port per replica"
    probe = _command(fedgate["healthcheck"]["test"])
    assert probe[:3] == ["python", "-m", "gateway.healthcheck"]
    assert "--ready" in probe, "compose's health is readiness (/readyz)"
    assert "--port" not in probe, "the probe reads listen.port from $FEDGATE_CONFIG"
    assert "--config" not in probe and "-c" not in probe


def test_two_replicas_share_state(fedgate: dict[str, Any], config: dict[str, Any]) -> None:
    assert fedgate["deploy"]["replicas"] >= 2
    assert "container_name" not in fedgate, "a fixed name allows one container only"
    assert config["store"]["backend"] == "redis"
    assert urlsplit(config["store"]["url"]).hostname == "redis", "the compose service"
    assert "keyring" in config, "replicas need the same keys to open each other's tokens"
    assert config["database"]["url"] == {"file": "/run/secrets/fedgate_database_url"}


def test_waits_for_healthy_redis_and_postgres(compose: dict[str, Any], fedgate: dict[str, Any]) -> None:
    for name in ("redis", "postgres"):
        assert fedgate["depends_on"][name] == {"condition": "service_healthy"}
        assert compose["services"][name]["healthcheck"]["test"][0] == "CMD"
    assert _command(compose["services"]["redis"]["healthcheck"]["test"]) == ["redis-cli", "ping"]
    assert _command(compose["services"]["postgres"]["healthcheck"]["test"])[0] == "pg_isready"


def test_redis_keeps_markers_across_restarts(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    args = redis["command"]
    assert args[0] == "redis-server"
    options = dict(zip(args[1::2], args[2::2], strict=True))
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] in ("always", "everysec")
    assert options["--maxmemory-policy"] == "noeviction", "evicting a replay marker reopens a replay"
    (data,) = [v for v in redis["volumes"] if v.endswith(":/data")]
    assert data.split(":")[0] in compose["volumes"], "a named volume, not the container's own layer"


def test_fedgate_runs_hardened(compose: dict[str, Any], fedgate: dict[str, Any]) -> None:
    assert fedgate["read_only"] is True
    assert fedgate["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in fedgate["security_opt"]
    assert "user" not in fedgate or fedgate["user"] not in ("0", "root")
    assert all(":" in p and p.startswith("127.0.0.1:") for p in fedgate["ports"]), "loopback only"
    for other in ("redis", "postgres"):
        assert "ports" not in compose["services"][other], "only fedgate is published"


def test_every_secret_the_config_reads_is_mounted(
    compose: dict[str, Any], fedgate: dict[str, Any], config: dict[str, Any]
) -> None:
    uses = list(secret_uses(config))
    assert uses, "the compose configuration reads its keys by reference"
    assert all(u.kind == "file" for u in uses), [u for u in uses if u.kind != "file"]
    mounted = {f"/run/secrets/{name}" for name in fedgate["secrets"]}
    for use in uses:
        assert use.name in mounted, f"{use.where} reads {use.name}, which compose does not mount"
    for name in fedgate["secrets"]:
        assert compose["secrets"][name]["file"].startswith("./secrets/")
    postgres = compose["services"]["postgres"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "POSTGRES_PASSWORD" not in postgres["environment"]


@pytest.fixture(scope="module")
def made_secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/make-secrets.sh, run for real into a temporary directory."""
    target = tmp_path_factory.mktemp("compose") / "secrets"
    result = subprocess.run(
        ["sh", str(DEPLOY / "make-secrets.sh"), str(target)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return target


def test_make_secrets_makes_every_file_compose_needs(compose: dict[str, Any], made_secrets: Path) -> None:
    for name, secret in compose["secrets"].items():
        made = made_secrets / Path(secret["file"]).name
        assert made.stat().st_size > 0, name
        assert made.stat().st_mode & 0o777 == 0o644, "compose bind-mounts it: uid 10001 must read it"
    assert made_secrets.stat().st_mode & 0o777 == 0o700, "the directory keeps other host users out"
    key = (made_secrets / "fedgate_keyring_k1").read_text()
    assert len(bytes.fromhex(key)) == 32
    password = (made_secrets / "postgres_password").read_text()
    postgres = compose["services"]["postgres"]["environment"]
    user, database = postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]
    assert (made_secrets / "fedgate_database_url").read_text() == (
        f"postgresql://{user}:{password}@postgres:5432/{database}"
    )


def test_make_secrets_keeps_what_exists(made_secrets: Path) -> None:
    """Run again, nothing changes: a new key would void every session, PostgreSQL keeps its password."""
    before = {p.name: p.read_text() for p in made_secrets.iterdir()}
    result = subprocess.run(
        ["sh", str(DEPLOY / "make-secrets.sh"), str(made_secrets)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("kept") == len(before)
    assert {p.name: p.read_text() for p in made_secrets.iterdir()} == before


def test_the_mounted_config_passes_check_config(
    compose: dict[str, Any], fedgate: dict[str, Any], made_secrets: Path, tmp_path: Path
) -> None:
    """`fedgate check-config` on deploy/fedgate.yaml, with the secrets make-secrets.sh made."""
    files = {
        f"/run/secrets/{name}": (made_secrets / Path(compose["secrets"][name]["file"]).name).read_text()
        for name in fedgate["secrets"]
    }
    result = check_config(_mounted_config(fedgate), files, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "OK (account 123456789012" in result.stdout
    assert "store redis" in result.stdout
