"""The agent's configuration: what it accepts, and one line naming the key for everything it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.agent.config import AgentConfig, default_session_name, parse_agent_config
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
ARN = "arn:aws:iam::123456789012:role/app"


def raw(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "gateway": {"url": "https://fedgate.example.com"},
        "authorization_token_file": "/run/fedgate-agent/token",
        "roles": [
            {"name": "app", "role_arn": ARN, "source": {"token_file": "/var/run/secrets/tokens/fedgate"}}
        ],
    }
    config.update(changes)
    return config


def role(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": "app", "role_arn": ARN, "source": {"token_file": "/t"}}
    entry.update(changes)
    return entry


def problems(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_agent_config(config)
    return str(info.value).splitlines()


def test_the_smallest_configuration_and_its_defaults() -> None:
    config = parse_agent_config(raw())
    assert isinstance(config, AgentConfig)
    assert (config.listen.host, config.listen.port) == ("127.0.0.1", 9911)
    only = config.roles[0]
    assert only.served_path() == "/roles/app" and only.imds is None
    assert only.duration_seconds == 3600 and only.source.type == "web_identity"
    assert only.session() == default_session_name() and 2 <= len(only.session()) <= 64
    assert only.imds_role_name() == "app"
    assert config.refresh.renew_before == 900 and config.refresh.expiry_margin == 60


def test_a_role_path_in_the_arn_and_a_link_local_listener() -> None:
    config = parse_agent_config(
        raw(
            listen={"host": "169.254.170.23", "port": 80},
            roles=[
                role(
                    role_arn="arn:aws:iam::123456789012:role/teams/data/reader",
                    imds={"host": "169.254.169.254", "port": 80},
                )
            ],
        )
    )
    assert config.roles[0].imds_role_name() == "reader"
    assert config.listen.host == "169.254.170.23"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"listen": {"host": "0.0.0.0"}}, "listen.host: must be a loopback or link-local address"),
        ({"listen": {"host": "10.1.2.3"}}, "listen.host: must be a loopback or link-local address"),
        ({"listen": {"host": "agent.local"}}, "listen.host: must be an IP address"),
        ({"listen": {"port": 70000}}, "listen.port: Input should be less than or equal to 65535"),
        ({"gateway": {"url": "http://fedgate.example.com"}}, "gateway.url: must use https"),
        (
            {"gateway": {"url": "https://user:pw@fedgate.example.com"}},
            "gateway.url: must not contain credentials",
        ),
        ({"gateway": {"url": "https://f.example.com/?a=b"}}, "gateway.url: must not contain a query"),
        ({"roles": []}, "roles: List should have at least 1 item after validation, not 0"),
        ({"roles": [role(role_arn="arn:aws:iam::1:user/x")]}, "roles[0].role_arn: must be a role ARN"),
        ({"roles": [role(name="a b")]}, "roles[0].name: must be 1-64 characters"),
        ({"roles": [role(session_name="x")]}, "roles[0].session_name: must be 2-64 characters"),
        ({"roles": [role(duration_seconds=600)]}, "roles[0].duration_seconds: Input should be greater than"),
        ({"roles": [role(path="/healthz")]}, "roles[0].path: must be an absolute path"),
        ({"roles": [role(path="/a/../b")]}, "roles[0].path: must be an absolute path"),
        (
            {"roles": [role(source={"type": "password"})]},
            "roles[0].source: Input tag 'password' found using _source_kind() does not match",
        ),
        (
            {"roles": [role(source={"type": "access_key", "access_key_id": "ASIAABCDEFGHIJKLMNOP"})]},
            "roles[0].source.access_key_id: must be a long-term access key id",
        ),
        (
            {"roles": [role(source={"type": "access_key", "access_key_id": "AKIAABCDEFGHIJKLMNOP"})]},
            "roles[0].source.secret_access_key: Field required",
        ),
        (
            {
                "roles": [
                    role(
                        source={
                            "type": "access_key",
                            "access_key_id": "AKIAABCDEFGHIJKLMNOP",
                            "secret_access_key": {"env": "S"},
                            "external_id": "a b",
                        }
                    )
                ]
            },
            "roles[0].source.external_id: must be 2-1224 characters",
        ),
        ({"gateway": {"url": "https://f.example.com", "region": "mars"}}, "gateway.region: must be a region"),
        ({"roles": [role(source={})]}, "roles[0].source.token_file: Field required"),
        ({"roles": [role(imds={"host": "8.8.8.8", "port": 1})]}, "roles[0].imds.host: must be a loopback"),
        ({"roles": [role(), role()]}, "roles[1].name: duplicate name 'app'"),
        (
            {"roles": [role(), role(name="b", path="/roles/app")]},
            "roles[1].path: /roles/app is already served",
        ),
        (
            {"roles": [role(imds={"port": 9911})]},
            "roles[0].imds: 127.0.0.1 port 9911 is already in use",
        ),
        (
            {"roles": [role(duration_seconds=900)]},
            "roles[0].duration_seconds: must exceed refresh.renew_before + refresh.jitter (1020 s)",
        ),
        ({"refresh": {"renew_before": 30}}, "refresh: expiry_margin must be less than renew_before"),
        (
            {"refresh": {"retry_initial": 5, "retry_max": 1}},
            "refresh: retry_initial must not exceed retry_max",
        ),
        ({"listn": {}}, "listn: Extra inputs are not permitted"),
    ],
)
def test_every_mistake_names_its_key(changes: dict[str, Any], expected: str) -> None:
    lines = problems(raw(**changes))
    assert any(line.startswith(expected) for line in lines), lines


def test_an_access_key_source() -> None:
    """A fedgate user's key as the identity: the secret by reference, never inline in the model's repr."""
    source = {
        "type": "access_key",
        "access_key_id": "AKIAABCDEFGHIJKLMNOP",
        "secret_access_key": {"file": "/etc/fedgate-agent/secret"},
        "external_id": "build-host-7",
    }
    config = parse_agent_config(raw(roles=[role(source=source)]))
    parsed = config.roles[0].source
    assert parsed.type == "access_key"
    assert parsed.access_key_id == "AKIAABCDEFGHIJKLMNOP"  # type: ignore[union-attr]
    assert parsed.external_id == "build-host-7"  # type: ignore[union-attr]
    assert config.gateway.region == "us-east-1"


def test_several_mistakes_one_line_each() -> None:
    config = raw(listen={"host": "0.0.0.0", "port": -1})
    del config["gateway"]
    lines = problems(config)
    assert len(lines) == 3
    assert {line.split(":")[0] for line in lines} == {"gateway", "listen.host", "listen.port"}


def test_flags_are_named_instead_of_keys() -> None:
    config = raw(roles=[role(duration_seconds=5)])
    with pytest.raises(ConfigError) as info:
        parse_agent_config(config, flags={"roles[0].duration_seconds": "--duration"})
    assert str(info.value) == "--duration: Input should be greater than or equal to 900"


def test_the_reference_is_current() -> None:
    """docs/agent-configuration.md is generated; regenerate it with `fedgate agent config-reference`."""
    from gateway.agent.cli import reference_text

    assert (ROOT / "docs" / "agent-configuration.md").read_text() == reference_text()
