"""Reading deploy/: the configurations, their secret references, and the real ``check-config``.

The deployment files are checked twice: against their schemas, and for what the schemas cannot
see (a probe on the wrong port, a secret the configuration names but nothing provides). These
helpers find what the configurations refer to so the tests can hold the manifests to it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
BIN = Path(sys.executable).parent
WILDCARDS = {"0.0.0.0", "::"}  # what a container must bind for anything outside it to connect


def load_yaml(path: Path) -> Any:
    """One YAML document, safely."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class SecretUse:
    """One ``{env: ...}``, ``{file: ...}`` or ``{value: ...}`` reference in a configuration."""

    where: str  # key path, e.g. keyring.keys[0].secret
    kind: str  # env, file or value
    name: str  # the variable's name, the file's path (never the value of an inline secret)


def secret_uses(node: Any, where: str = "") -> Iterator[SecretUse]:
    """Every secret reference in a parsed configuration, wherever it sits."""
    if isinstance(node, Mapping):
        keys = set(node)
        if keys and keys <= {"env", "file", "value"} and len(keys) == 1:
            (kind,) = keys
            yield SecretUse(where, kind, "<inline>" if kind == "value" else str(node[kind]))
            return
        for key, value in node.items():
            yield from secret_uses(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from secret_uses(value, f"{where}[{i}]")


def dummy_secret(placeholder: str) -> str:
    """A test value shaped like ``placeholder``: URLs keep their shape, keys become 64 random hex."""
    if "://" in placeholder and "REPLACE-ME" in placeholder:
        return placeholder.replace("REPLACE-ME", secrets.token_hex(16))
    return secrets.token_hex(32)


def check_config(config: Path, files: Mapping[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the real ``fedgate check-config`` on ``config`` as deployed, its secrets supplied.

    ``files`` maps each secret file path the configuration names (``/run/secrets/...``, provided in
    the container) to test content. The configuration is copied with those paths moved into
    ``tmp_path``, the only change made to it. Variables it names (``{env: ...}``) get test values.
    """
    raw = load_yaml(config)
    uses = list(secret_uses(raw))
    missing = [u.name for u in uses if u.kind == "file" and u.name not in files]
    assert not missing, f"{config.name}: no test content for secret files {missing}"
    variables = {u.name: secrets.token_hex(32) for u in uses if u.kind == "env"}
    moved = tmp_path / "secrets"
    moved.mkdir(exist_ok=True)
    relocated = {}
    for i, (path, content) in enumerate(sorted(files.items())):
        target = moved / f"{i}-{Path(path).name}"
        target.write_text(content + "\n", encoding="utf-8")
        relocated[path] = str(target)

    def move(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"file"} and node["file"] in relocated:
                return {"file": relocated[node["file"]]}
            return {key: move(value) for key, value in node.items()}
        if isinstance(node, list):
            return [move(value) for value in node]
        return node

    copy = move(raw)
    checked = tmp_path / config.name
    checked.write_text(yaml.safe_dump(copy, sort_keys=False), encoding="utf-8")
    run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **variables}
    return subprocess.run(
        [str(BIN / "fedgate"), "check-config", "-c", str(checked)],
        env=run_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
