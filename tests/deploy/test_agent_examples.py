"""deploy/agent: the sidecar's manifests validate against the Kubernetes schemas, its configuration
and the VM's are valid agent configurations, and the pod's variables and mounts agree with them."""

from __future__ import annotations

import configparser
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.agent.config import AgentConfig, load_agent_config, parse_agent_config
from tests.deploy.manifests import DEPLOY, ROOT
from tests.deploy.test_kubernetes import VERSIONS

AGENT = DEPLOY / "agent"
SIDECAR = list(yaml.safe_load_all((AGENT / "kubernetes-sidecar.yaml").read_text()))


def _kind(kind: str) -> dict[str, Any]:
    (found,) = [d for d in SIDECAR if d["kind"] == kind]
    return found


def _sidecar_config() -> AgentConfig:
    return parse_agent_config(yaml.safe_load(_kind("ConfigMap")["data"]["agent.yaml"]))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("resource", SIDECAR, ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_sidecar_manifests_validate(resource: dict[str, Any], version: str) -> None:
    try:
        kubernetes_validate.validate(resource, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{resource['kind']}: {'.'.join(map(str, exc.path))}: {exc.message}")


def test_the_pod_agrees_with_the_agent_configuration() -> None:
    config = _sidecar_config()
    role = config.roles[0]
    pod = _kind("Deployment")["spec"]["template"]["spec"]
    (agent,) = pod["initContainers"]
    assert agent["restartPolicy"] == "Always"  # a native sidecar: up before the app, down after it
    assert agent["args"] == ["agent", "--config", "/etc/fedgate/agent.yaml"]
    assert agent["startupProbe"]["httpGet"] == {
        "host": "127.0.0.1",
        "path": "/readyz",
        "port": config.listen.port,
    }
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert (
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        == f"http://127.0.0.1:{config.listen.port}{role.served_path()}"
    )
    assert env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == str(config.authorization_token_file)
    mounts = {m["name"]: m for m in agent["volumeMounts"]}
    app_mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    token_dir = str(config.authorization_token_file).rsplit("/", 1)[0]
    assert mounts["agent-run"]["mountPath"] == app_mounts["agent-run"]["mountPath"] == token_dir
    assert app_mounts["agent-run"]["readOnly"] and "fedgate-token" not in app_mounts
    (projected,) = [v for v in pod["volumes"] if v["name"] == "fedgate-token"]
    token = projected["projected"]["sources"][0]["serviceAccountToken"]
    assert str(role.source.token_file) == f"{mounts['fedgate-token']['mountPath']}/{token['path']}"
    # The token file is mode 0600: the app must run as the agent's user.
    assert pod["securityContext"]["runAsUser"] == 10001 and "runAsUser" not in pod["containers"][0].get(
        "securityContext", {}
    )


def test_the_vm_unit_runs_the_example_configuration() -> None:
    vm = parse_agent_config(load_agent_config(ROOT / "config" / "agent-example.yaml"))
    assert [r.name for r in vm.roles] == ["reports", "backup"]
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((AGENT / "fedgate-agent.service").read_text())
    service = unit["Service"]
    assert service["ExecStart"] == "/usr/local/bin/fedgate agent -c /etc/fedgate/agent.yaml"
    assert service["RuntimeDirectory"] == "fedgate-agent"
    assert str(vm.authorization_token_file) == "/run/fedgate-agent/token"
