"""deploy/kubernetes: every manifest validates against the Kubernetes schemas, and they agree.

Schemas: kubernetes-validate, which bundles the Kubernetes JSON schemas (strict: an unknown field
is an error), so no cluster and no network is needed. The manifests are read the way ``kubectl
apply -k`` reads them: the resources kustomization.yaml lists, plus the ConfigMap its
configMapGenerator makes from fedgate.yaml. Then what no schema sees: probes and ports on the
port fedgate listens on according to that ConfigMap, every secret it reads provided by the
Secret, selectors that select the pods, a NetworkPolicy that lets through what fedgate needs.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

from gateway.config import KeyRingSettings
from gateway.credentials.keyring import KeyRing
from gateway.errors import ConfigError
from tests.deploy.manifests import KUBERNETES, WILDCARDS, check_config, dummy_secret, load_yaml, secret_uses

# The oldest Kubernetes release still supported upstream when this was written, and the newest
# the installed schemas know.
VERSIONS = ["1.32.0", kubernetes_validate.utils.latest_version()]
SECRET_EXAMPLE = KUBERNETES / "secret.example.yaml"


def _kustomization() -> dict[str, Any]:
    data = load_yaml(KUBERNETES / "kustomization.yaml")
    assert isinstance(data, dict)
    return data


def _resources() -> list[dict[str, Any]]:
    """What `kubectl apply -k deploy/kubernetes` applies (before kustomize's name suffixes)."""
    kustomization = _kustomization()
    found: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        path = KUBERNETES / name
        assert path.is_file(), f"kustomization.yaml lists {name}, which does not exist"
        found.append(load_yaml(path))
    for generator in kustomization["configMapGenerator"]:
        found.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"], "namespace": kustomization["namespace"]},
                "data": {Path(f).name: (KUBERNETES / f).read_text() for f in generator["files"]},
            }
        )
    return found


RESOURCES = _resources()


def _one(kind: str) -> dict[str, Any]:
    (found,) = [r for r in RESOURCES if r["kind"] == kind]
    return found


def _ids(resource: dict[str, Any]) -> str:
    return f"{resource['kind']}/{resource['metadata']['name']}"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("resource", [*RESOURCES, load_yaml(SECRET_EXAMPLE)], ids=_ids)
def test_validates_against_the_kubernetes_schema(resource: dict[str, Any], version: str) -> None:
    try:
        kubernetes_validate.validate(resource, version, strict=True)
    except SchemaNotFoundError as exc:
        pytest.fail(exc.message)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{_ids(resource)}: {'.'.join(map(str, exc.path))}: {exc.message}")


def test_the_schema_check_catches_a_misspelt_field() -> None:
    """strict=True is not vacuous: a misspelt field in the pod's security context is refused."""
    broken = load_yaml(KUBERNETES / "deployment.yaml")
    pod = broken["spec"]["template"]["spec"]
    pod["securityContext"]["runAsNonroot"] = pod["securityContext"].pop("runAsNonRoot")
    with pytest.raises(kubernetes_validate.ValidationError, match="runAsNonroot"):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_lists_every_manifest_but_the_secret_example() -> None:
    listed = set(_kustomization()["resources"])
    on_disk = {p.name for p in KUBERNETES.glob("*.yaml")}
    assert on_disk - listed == {"kustomization.yaml", "fedgate.yaml", SECRET_EXAMPLE.name}
    kinds = sorted(r["kind"] for r in RESOURCES)
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "Namespace",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount",
        ]
    )


# -- the pod ------------------------------------------------------------------------------------


def _pod() -> dict[str, Any]:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    assert isinstance(pod, dict)
    return pod


def _container() -> dict[str, Any]:
    (container,) = _pod()["containers"]
    assert isinstance(container, dict)
    return container


def _env(name: str) -> str | None:
    return next((e["value"] for e in _container().get("env", []) if e["name"] == name), None)


def _mount_for(path: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The volume mount holding ``path`` in the container, its volume, and the path inside it."""
    for mount in _container()["volumeMounts"]:
        base = PurePosixPath(mount["mountPath"])
        if PurePosixPath(path).is_relative_to(base):
            (volume,) = [v for v in _pod()["volumes"] if v["name"] == mount["name"]]
            return mount, volume, str(PurePosixPath(path).relative_to(base))
    raise AssertionError(f"nothing is mounted at {path}")


def _config_path() -> str:
    args = _container()["args"]
    for flag in ("-c", "--config"):
        if flag in args:
            return str(args[args.index(flag) + 1])
    path = _env("FEDGATE_CONFIG")
    assert path, "the container names no configuration (-c or $FEDGATE_CONFIG)"
    return path


def _mounted_config_text() -> str:
    """fedgate.yaml as the container sees it: through the ConfigMap volume at its config path."""
    mount, volume, inside = _mount_for(_config_path())
    assert mount.get("readOnly") is True
    name = volume["configMap"]["name"]
    (config_map,) = [r for r in RESOURCES if r["kind"] == "ConfigMap" and r["metadata"]["name"] == name]
    return str(config_map["data"][inside])


CONFIG = yaml.safe_load(_mounted_config_text())


def _listen_port() -> int:
    """The port fedgate listens on in the pod: --port if the args give one, else listen.port."""
    args = _container()["args"]
    if "--port" in args:
        return int(args[args.index("--port") + 1])
    return int(CONFIG["listen"]["port"])


def _port_number(port: int | str) -> int:
    """A probe's or Service's port, named or numbered, as the container port it resolves to."""
    if isinstance(port, int):
        return port
    (found,) = [p["containerPort"] for p in _container()["ports"] if p["name"] == port]
    return int(found)


def test_probes_are_on_the_port_fedgate_listens_on() -> None:
    container = _container()
    port = _listen_port()
    host = "--host" in container["args"] and container["args"][container["args"].index("--host") + 1]
    assert (host or CONFIG["listen"]["host"]) in WILDCARDS, "the kubelet probes the pod's address"
    assert [p["containerPort"] for p in container["ports"]] == [port]
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}
    for probe, path in expected.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert _port_number(get["port"]) == port, probe
        assert get.get("scheme", "HTTP") == "HTTP"


def test_service_and_network_policy_reach_that_port() -> None:
    port = _listen_port()
    (service_port,) = _one("Service")["spec"]["ports"]
    assert _port_number(service_port["targetPort"]) == port
    (ingress,) = _one("NetworkPolicy")["spec"]["ingress"]
    assert "from" not in ingress, "any client may reach the gateway port"
    assert [(_port_number(p["port"]), p["protocol"]) for p in ingress["ports"]] == [(port, "TCP")]


def test_selectors_select_the_pods() -> None:
    labels = _one("Deployment")["spec"]["template"]["metadata"]["labels"]
    selectors = [
        _one("Deployment")["spec"]["selector"]["matchLabels"],
        _one("Service")["spec"]["selector"],
        _one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        _one("NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
        *[c["labelSelector"]["matchLabels"] for c in _pod()["topologySpreadConstraints"]],
    ]
    for selector in selectors:
        assert selector and selector.items() <= labels.items(), selector


def test_two_replicas_spread_and_kept_through_disruptions() -> None:
    replicas = _one("Deployment")["spec"]["replicas"]
    assert replicas == 2
    assert _one("PodDisruptionBudget")["spec"]["minAvailable"] < replicas
    keys = {c["topologyKey"]: c["whenUnsatisfiable"] for c in _pod()["topologySpreadConstraints"]}
    assert keys["kubernetes.io/hostname"] == "DoNotSchedule"
    assert _one("Deployment")["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert CONFIG["store"]["backend"] == "redis", "replicas share replay markers and revocations"
    assert "keyring" in CONFIG, "replicas need the same keys to open each other's tokens"


def test_pod_is_unprivileged() -> None:
    pod, container = _pod(), _container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert "add" not in context["capabilities"]
    assert pod["automountServiceAccountToken"] is False
    account = _one("ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}, kind
    assert _one("Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# -- secrets ------------------------------------------------------------------------------------


def _secret_example() -> dict[str, Any]:
    data = load_yaml(SECRET_EXAMPLE)
    assert isinstance(data, dict)
    return data


def _provided_files() -> dict[str, str]:
    """Each secret file the config reads, mapped to the Secret key that provides it.

    Fails naming the reference when the file is not on a Secret volume or its key is missing.
    """
    example = _secret_example()
    provided = {}
    for use in secret_uses(CONFIG):
        assert use.kind == "file", f"{use.where}: secrets come from the Secret as files, not {use.kind}"
        mount, volume, inside = _mount_for(use.name)
        assert mount.get("readOnly") is True
        assert "secret" in volume, f"{use.where}: {use.name} is not on a Secret volume"
        assert volume["secret"]["secretName"] == example["metadata"]["name"]
        keys = {item["path"]: item["key"] for item in volume["secret"]["items"]}
        assert inside in keys, f"{use.where}: {use.name} is not among the volume's items"
        assert keys[inside] in example["stringData"], f"the Secret example has no key {keys[inside]}"
        provided[use.name] = keys[inside]
    return provided


def test_every_secret_the_config_reads_is_provided_by_the_secret() -> None:
    provided = _provided_files()
    assert len(provided) == 3
    volume = next(v for v in _pod()["volumes"] if "secret" in v)
    assert volume["secret"]["defaultMode"] & 0o007 == 0, "secret files are not world-readable"
    # Every item the pod mounts is one the configuration reads: nothing is mounted for nobody.
    assert sorted(i["key"] for i in volume["secret"]["items"]) == sorted(provided.values())


def test_the_secret_example_holds_only_placeholders(tmp_path: Path) -> None:
    example = _secret_example()
    assert "data" not in example, "base64 would hide what the values are"
    for key, value in example["stringData"].items():
        assert "REPLACE-ME" in value, key
    assert "EXAMPLE ONLY" in SECRET_EXAMPLE.read_text().splitlines()[0]
    # Applied as it is, the placeholder key seals nothing: fedgate's key ring refuses it.
    (key,) = CONFIG["keyring"]["keys"]
    placeholder = tmp_path / "keyring-k1"
    placeholder.write_text(example["stringData"][_provided_files()[key["secret"]["file"]]])
    settings = KeyRingSettings.model_validate(
        {"active": key["id"], "keys": [{"id": key["id"], "secret": {"file": str(placeholder)}}]}
    )
    with pytest.raises(ConfigError, match=r"keyring\.keys\[0\]\.secret: must be at least 32 bytes"):
        KeyRing.from_settings(settings)


def test_the_configmap_passes_check_config(tmp_path: Path) -> None:
    """`fedgate check-config` on the mounted fedgate.yaml, the Secret's keys given test values."""
    placeholders = _secret_example()["stringData"]
    files = {path: dummy_secret(placeholders[key]) for path, key in _provided_files().items()}
    source = tmp_path / "fedgate.yaml"
    source.write_text(_mounted_config_text())
    result = check_config(source, files, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "store redis" in result.stdout


# -- the network policy -------------------------------------------------------------------------


def _egress_ports() -> set[tuple[int, str]]:
    return {
        (p["port"], p["protocol"]) for rule in _one("NetworkPolicy")["spec"]["egress"] for p in rule["ports"]
    }


def test_egress_allows_dns_redis_postgres_and_https_only() -> None:
    placeholders = _secret_example()["stringData"]
    needed = {
        (53, "UDP"),
        (53, "TCP"),
        (urlsplit(placeholders["redis-url"]).port or 6379, "TCP"),
        (urlsplit(placeholders["database-url"]).port or 5432, "TCP"),
        (443, "TCP"),  # identity providers: discovery, JWKS, metadata, token endpoints
    }
    assert _egress_ports() == needed
    assert set(_one("NetworkPolicy")["spec"]["policyTypes"]) == {"Ingress", "Egress"}


def test_https_egress_excludes_link_local_metadata() -> None:
    rules = _one("NetworkPolicy")["spec"]["egress"]
    (https,) = [r for r in rules if any(p["port"] == 443 for p in r["ports"])]
    metadata = ipaddress.ip_address("169.254.169.254")
    for peer in https["to"]:
        block = peer["ipBlock"]
        if ipaddress.ip_network(block["cidr"]).version == 4:
            assert any(metadata in ipaddress.ip_network(e) for e in block["except"])
    dns = next(r for r in rules if any(p["port"] == 53 for p in r["ports"]))
    assert all("ipBlock" not in peer for peer in dns["to"]), "DNS only to the cluster's resolver"
