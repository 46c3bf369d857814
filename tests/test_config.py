"""Configuration validation: every problem is refused with a message naming its path."""

from __future__ import annotations

import concurrent.futures
import copy
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import GatewayConfig, parse_config
from gateway.errors import ConfigError
from gateway.plugin_host import PluginHost
from gateway.startup import load_config

ROOT = Path(__file__).resolve().parents[1]
PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/issuer.example.com"

BASE: dict[str, Any] = {
    "account_id": "123456789012",
    "providers": [{"type": "oidc", "issuer": "https://issuer.example.com", "audiences": ["sts"]}],
    "roles": [
        {
            "name": f"role{i}",
            "trust_policy": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": PROVIDER_ARN},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                    }
                ],
            },
        }
        for i in range(3)
    ],
}


def _parse(raw: dict[str, Any]) -> GatewayConfig:
    host = PluginHost()
    return parse_config(raw, provider_types=host.provider_types(), sections=host.config_sections())


def _error(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        _parse(raw)
    return str(info.value)


def test_valid_config() -> None:
    config = _parse(BASE)
    assert config.role_arn(config.roles[2]) == "arn:aws:iam::123456789012:role/role2"
    assert config.providers[0].type == "oidc"
    assert config.store.backend == "memory"


def test_demo_config_is_valid() -> None:
    config = load_config(ROOT / "config" / "demo.yaml")
    assert {r.name for r in config.roles} == {"demo-reader", "demo-admin"}
    assert "dev_issuer" in config.sections


def test_bad_effect_names_the_full_path() -> None:
    raw = copy.deepcopy(BASE)
    raw["roles"][2]["trust_policy"]["Statement"][0]["Effect"] = "Maybe"
    message = _error(raw)
    assert message.startswith("roles[2].trust_policy.Statement[0].Effect:"), message


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r.update(unknown_key=1), "unknown_key: Extra inputs are not permitted"),
        (lambda r: r.update(account_id="12345"), "account_id: must be exactly 12 digits"),
        (lambda r: r["roles"][1].update(max_session_duration=60), "roles[1].max_session_duration:"),
        (lambda r: r["roles"][0].update(name="bad name"), "roles[0].name:"),
        (lambda r: r["roles"][0].update(colour="red"), "roles[0].colour: Extra inputs"),
        (lambda r: r["providers"][0].update(type="ldap"), "providers[0].type: unknown provider type 'ldap'"),
        (lambda r: r["providers"][0].update(audiences=[]), "providers[0].audiences"),
        (lambda r: r["providers"][0].update(bogus=True), "providers[0].bogus: Extra inputs"),
        (lambda r: r.update(store={"backend": "etcd"}), "store.backend:"),
        (lambda r: r["roles"][0].update(managed_policies=["nope"]), "roles[0].managed_policies[0]"),
        (
            lambda r: r.update(keyring={"active": "k2", "keys": [{"id": "k1", "secret": {"env": "X"}}]}),
            "keyring",
        ),
        (
            lambda r: r.update(
                keyring={"active": "k1", "keys": [{"id": "k1", "secret": {"env": "A", "file": "/x"}}]}
            ),
            "keyring.keys[0].secret: give exactly one of env, file or value",
        ),
        (
            lambda r: r.update(metrics={"allow_from": ["10.0.0.0/8", "10.0.0/33"]}),
            "metrics.allow_from: '10.0.0/33' is not an IP network",
        ),
    ],
)
def test_bad_values_are_refused_with_their_path(mutate: Any, expected: str) -> None:
    raw = copy.deepcopy(BASE)
    mutate(raw)
    assert expected in _error(raw)


def test_several_problems_are_all_reported() -> None:
    raw = copy.deepcopy(BASE)
    raw["account_id"] = "x"
    raw["providers"][0]["issuer"] = "ftp://nope"
    message = _error(raw)
    assert "account_id:" in message and "providers[0].issuer" in message


def test_duplicate_role_names_refused() -> None:
    raw = copy.deepcopy(BASE)
    raw["roles"][1]["name"] = "ROLE0"
    assert "roles[1].name: duplicate name" in _error(raw)


def test_secret_from_environment_is_resolved_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "correct-horse-battery-staple-0123456789"
    monkeypatch.setenv("FEDGATE_TEST_KEY", secret)
    raw = copy.deepcopy(BASE)
    raw["keyring"] = {"active": "k1", "keys": [{"id": "k1", "secret": {"env": "FEDGATE_TEST_KEY"}}]}
    config = _parse(raw)
    assert config.keyring is not None
    assert config.keyring.keys[0].secret.resolve().get_secret_value() == secret
    assert secret not in repr(config) and secret not in str(config.model_dump())


def test_secret_from_file(tmp_path: Path) -> None:
    path = tmp_path / "k1"
    path.write_text("from-a-file-0123456789abcdef0123456789\n")
    raw = copy.deepcopy(BASE)
    raw["keyring"] = {"active": "k1", "keys": [{"id": "k1", "secret": {"file": str(path)}}]}
    config = _parse(raw)
    assert config.keyring is not None
    assert (
        config.keyring.keys[0].secret.resolve().get_secret_value() == "from-a-file-0123456789abcdef0123456789"
    )


def test_a_created_secret_is_made_once_private_and_then_kept(tmp_path: Path) -> None:
    path = tmp_path / "state" / "session-key"
    raw = copy.deepcopy(BASE)
    raw["keyring"] = {"active": "k1", "keys": [{"id": "k1", "secret": {"file": str(path), "create": True}}]}
    config = _parse(raw)
    assert config.keyring is not None
    ref = config.keyring.keys[0].secret
    first = ref.resolve().get_secret_value()
    assert len(first) == 64 and path.read_text() == first
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert ref.resolve().get_secret_value() == first  # read back, never made again
    assert [p.name for p in path.parent.iterdir()] == ["session-key"]  # no temporary file left


def test_servers_starting_together_create_one_secret(tmp_path: Path) -> None:
    from gateway.secretref import SecretRef

    path = tmp_path / "cookie-secret"
    refs = [SecretRef(file=path, create=True) for _ in range(8)]
    start = threading.Barrier(len(refs))

    def read(ref: SecretRef) -> str:
        start.wait()
        return ref.resolve().get_secret_value()

    with concurrent.futures.ThreadPoolExecutor(len(refs)) as pool:
        seen = set(pool.map(read, refs))
    assert seen == {path.read_text()}


def test_create_needs_a_file_and_a_writable_directory(tmp_path: Path) -> None:
    from gateway.secretref import SecretRef

    with pytest.raises(ValueError, match="create: true needs file"):
        SecretRef(env="X", create=True)
    (tmp_path / "plain").write_text("x")  # a directory that cannot be made, even by root
    ref = SecretRef(file=tmp_path / "plain" / "k", create=True)
    with pytest.raises(ValueError, match="cannot create secret file"):
        ref.resolve()


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("account_id: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:2:1: not valid YAML"):
        load_config(path)


def test_disabled_plugin_makes_its_provider_type_unknown(tmp_path: Path) -> None:
    raw = copy.deepcopy(BASE)
    raw["disabled_plugins"] = ["oidc"]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"providers\[0\].type: unknown provider type 'oidc'"):
        load_config(path)


def test_configuration_reference_is_current() -> None:
    """docs/configuration.md is generated from the models; regenerate it with `fedgate config-reference`."""
    from gateway.configdoc import render_reference

    host = PluginHost()
    expected = render_reference(host.provider_types(), host.config_sections())
    assert (ROOT / "docs" / "configuration.md").read_text() == expected


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"Version": "2012-10-17", "Statement": [], "Extra": 1},
            "roles[0].trust_policy.Extra: unknown element",
        ),
        ({"Version": "2012-10-17"}, "roles[0].trust_policy.Statement: is required"),
    ],
)
def test_policy_paths_continue_the_config_path(document: dict[str, Any], expected: str) -> None:
    raw = copy.deepcopy(BASE)
    raw["roles"][0]["trust_policy"] = document
    assert expected in _error(raw)


def _table_rows(markdown: str) -> list[list[str]]:
    """The cells of every table row, split as a Markdown renderer splits them (at unescaped ``|``)."""
    import re

    rows = []
    for line in markdown.splitlines():
        if line.startswith("| `"):
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


@pytest.mark.parametrize("name", ["configuration.md", "agent-configuration.md"])
def test_configuration_reference_renders_as_tables(name: str) -> None:
    """Every row has exactly four cells, a description of its own, and defaults as YAML spells them."""
    text = (ROOT / "docs" / name).read_text()
    rows = _table_rows(text)
    assert len(rows) > 20
    for cells in rows:
        assert len(cells) == 4, cells  # a stray | (a union or Literal type) would add cells
        assert cells[3], f"{cells[0]} has no description"
    assert "The whole configuration file." not in text
    assert "PosixPath" not in text and "WindowsPath" not in text
    by_key = {cells[0]: cells for cells in rows}
    if name == "configuration.md":
        assert by_key["`log_level`"][1] == "'DEBUG' \\| 'INFO' \\| 'WARNING' \\| 'ERROR'"
        assert by_key["`audit.spill_path`"][2] == "`'fedgate-audit-spill.jsonl'`"
        assert by_key["`store`"][3].startswith("Where shared state lives")  # the section's own docstring


def test_relative_paths_resolve_against_the_configuration_file(tmp_path: Path) -> None:
    """Whatever directory a command runs in, a relative path names the file beside the configuration."""
    from fedgate_devissuer import DevIssuerSettings

    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "secrets").mkdir()
    (conf / "secrets" / "k1").write_text("k" * 40)
    path = conf / "fedgate.yaml"
    path.write_text(
        "account_id: '123456789012'\n"
        "database: {url: 'sqlite:///state/iam.db'}\n"
        "keyring: {active: k1, keys: [{id: k1, secret: {file: secrets/k1}}]}\n"
        "audit: {sink: file, path: logs/audit.jsonl}\n"
        "dev_issuer: {issuer: 'http://127.0.0.1:8080/dev-issuer'}\n"
    )
    config = load_config(path)
    assert config.database.url == f"sqlite:///{conf}/state/iam.db"
    assert config.keyring is not None and config.keyring.keys[0].secret.file == conf / "secrets" / "k1"
    assert config.audit.path == conf / "logs" / "audit.jsonl"
    assert config.audit.spill_path == conf / "fedgate-audit-spill.jsonl"  # a default too
    issuer = config.sections["dev_issuer"]
    assert (
        isinstance(issuer, DevIssuerSettings) and issuer.key_file == conf / ".fedgate" / "dev-issuer-key.pem"
    )
    # Absolute paths and the in-memory database are left as written.
    path.write_text(
        "account_id: '123456789012'\n"
        "database: {url: 'sqlite:///:memory:'}\n"
        f"audit: {{sink: file, path: {tmp_path}/audit.jsonl}}\n"
    )
    config = load_config(path)
    assert config.database.url == "sqlite:///:memory:" and config.audit.path == tmp_path / "audit.jsonl"
