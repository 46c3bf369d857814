"""Heavy libraries are imported for the features that use them, at start-up, and only then.

A server keeps every module it imports for its whole life (a resting fedgate's memory is nearly
all modules), so redis-py, Alembic, asyncpg, pysaml2, joserfc and the like are imported by the code
that builds the feature needing them (``gateway.requires``), when the configuration asks for it:
never for a feature that is off, never on a request's path, and a missing library is one line at
start-up, not a traceback. Each check runs in a fresh interpreter, whose ``sys.modules`` is what a
server started there would hold.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.errors import ConfigError
from gateway.requires import require
from tests.conftest import free_port

ROOT = Path(__file__).parent.parent
FEDGATE = str(Path(sys.executable).with_name("fedgate"))
#: Libraries no part of the proxy-only configuration below uses (nor does any server: the AWS SDK
#: and moto are test tools).
UNUSED = (
    "alembic",
    "asyncpg",
    "authlib",
    "boto3",
    "botocore",
    "joserfc",
    "mako",
    "moto",
    "opentelemetry",
    "pygments",
    "redis",
    "saml2",
    "signxml",
    "sqlalchemy.dialects.postgresql",
    "gateway.agent.config",
)
# Loads the file, runs the start-up checks and builds the application as `fedgate serve` does;
# with "setup", also runs every start-up context (database, catalog, proxy...) and stops again.
# Prints the imported modules.
START_UP = """
import asyncio, json, sys
from aiohttp import web
from gateway.app import create_app
from gateway.startup import load, preflight

config, host = load(sys.argv[1])
preflight(config)
app = create_app(config, host=host)
if sys.argv[2] == "setup":
    async def run():
        runner = web.AppRunner(app)
        await runner.setup()
        await runner.cleanup()
    asyncio.run(run())
print(json.dumps(sorted(sys.modules)))
"""


def _proxy_only(target: str = "http://127.0.0.1:9") -> dict[str, Any]:
    """bench/proxy_rss_bench.py's kind of configuration: memory store, no database, one S3 upstream."""
    return {
        "account_id": "123456789012",
        "log_level": "WARNING",
        "store": {"backend": "memory"},
        "audit": {"sink": "none"},
        "keyring": {"active": "k", "keys": [{"id": "k", "secret": {"value": "k" * 48}}]},
        "upstreams": [
            {
                "name": "s3",
                "match": {"hosts": ["localhost"]},
                "target": target,
                "service": "s3",
                "mapping": "s3",
                "auth": "resign",
                "credentials": {"access_key_id": {"value": "AK"}, "secret_access_key": {"value": "SK"}},
            }
        ],
    }


def _modules_after_start_up(tmp_path: Path, config: dict[str, Any], *, setup: bool) -> set[str]:
    path = tmp_path / "fedgate.yaml"
    path.write_text(yaml.safe_dump(config))
    out = subprocess.run(
        [sys.executable, "-c", START_UP, str(path), "setup" if setup else "build"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


def _loaded(modules: set[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def test_require_imports_the_module() -> None:
    assert require("json", feature="x", package="json") is json


def test_a_missing_library_is_one_line_naming_the_key_and_the_package() -> None:
    with pytest.raises(ConfigError) as caught:
        require("fedgate_no_such_module.sub", feature="store.backend: redis", package="redis")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("store.backend: redis needs the Python package 'redis'")
    assert "fedgate_no_such_module" in message and "pip install 'redis'" in message


def test_a_proxy_only_server_imports_none_of_the_libraries_it_does_not_use(tmp_path: Path) -> None:
    modules = _modules_after_start_up(tmp_path, _proxy_only(), setup=True)
    assert "gateway.proxy.handler" in modules and "sqlalchemy.dialects.sqlite" in modules  # it did start
    assert [name for name in UNUSED if _loaded(modules, name)] == []


def test_a_configured_feature_imports_its_library_at_start_up(tmp_path: Path) -> None:
    """Before any request: when the configuration is checked and the application built."""
    config = _proxy_only()
    config["store"] = {"backend": "redis", "url": "redis://127.0.0.1:6379/0"}  # never connected here
    config["upstreams"][0]["auth"] = "identity"
    config["dev_issuer"] = {"issuer": "http://127.0.0.1:8080/dev-issuer", "key_file": str(tmp_path / "k.pem")}
    modules = _modules_after_start_up(tmp_path, config, setup=False)
    assert _loaded(modules, "redis") and _loaded(modules, "joserfc")
    assert "fedgate_devissuer.issuer" in modules


@pytest.mark.parametrize("command", ["serve", "check-config"])
def test_a_configured_feature_whose_library_is_missing_fails_at_start_up_in_one_line(
    tmp_path: Path, command: str
) -> None:
    hidden = tmp_path / "hidden" / "redis"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("hidden by the test", name="redis")\n')
    config = tmp_path / "fedgate.yaml"
    config.write_text(yaml.safe_dump({**_proxy_only(), "store": {"backend": "redis"}}))
    argv = [FEDGATE, command, "-c", str(config)]
    if command == "serve":
        argv += ["--port", str(free_port())]
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(hidden.parent), "HOME": str(tmp_path)},
    )
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if "redis" in line]
    assert len(lines) == 1, out.stderr
    assert "store.backend: redis needs the Python package 'redis'" in lines[0]
    assert "Traceback" not in out.stderr and "fedgate starting" not in out.stderr  # before it binds
