"""The stock S3 clients the proxy tests drive as subprocesses: the JS SDK v3, the aws CLI, s3cmd.

Each runs with explicit credentials, no shared config files, and IMDS disabled, so nothing on the
machine can change what it sends.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

JS = Path(__file__).resolve().parents[1] / "js"
BIN = Path(sys.executable).parent


def client_env(credentials: Mapping[str, str], home: Path, **extra: str) -> dict[str, str]:
    """An environment holding only ``credentials`` (boto3 keyword names) and what the clients need."""
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
    }
    if "aws_session_token" in credentials:
        env["AWS_SESSION_TOKEN"] = credentials["aws_session_token"]
    env.update(extra)
    return env


def node() -> str:
    """The ``node`` binary, with the JS SDK's S3 client installed; fails with the fix when missing."""
    binary = shutil.which("node")
    if binary is None:
        pytest.fail("node is not installed: apt-get install nodejs npm (.ci/run does)", pytrace=False)
    if not (JS / "node_modules" / "@aws-sdk" / "client-s3").is_dir():
        pytest.fail("the JS SDK is not installed in tests/js: run `make install` (npm ci)", pytrace=False)
    return binary


def run_js_s3(endpoint: str, env: Mapping[str, str], *args: str) -> dict[str, Any]:
    """``tests/js/s3.mjs ENDPOINT ARGS...`` with ``env``; its JSON line."""
    run = subprocess.run(
        [node(), str(JS / "s3.mjs"), endpoint, *args],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=120,
        cwd=JS,
    )
    lines = run.stdout.strip().splitlines()
    assert lines, f"no output from node (status {run.returncode}): {run.stderr}"
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def run(
    argv: Sequence[str], env: Mapping[str, str], *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a client binary from this virtualenv (``aws``, ``s3cmd``) with ``env``."""
    binary = BIN / argv[0]
    if not binary.exists():
        pytest.fail(f"{argv[0]} is not installed in {BIN}: run `make install`", pytrace=False)
    return subprocess.run(
        [str(binary), *argv[1:]], capture_output=True, text=True, env=dict(env), timeout=timeout
    )


def s3cmd_config(
    path: Path, endpoint: str, credentials: Mapping[str, str], *, signature_v2: bool = False
) -> Path:
    """An ``.s3cfg`` for s3cmd talking path-style to ``endpoint`` (``http://host:port``)."""
    host = endpoint.removeprefix("http://")
    path.write_text(
        "[default]\n"
        f"access_key = {credentials['aws_access_key_id']}\n"
        f"secret_key = {credentials['aws_secret_access_key']}\n"
        f"access_token = {credentials.get('aws_session_token', '')}\n"
        f"host_base = {host}\nhost_bucket = {host}\n"
        "use_https = False\nbucket_location = us-east-1\n"
        f"signature_v2 = {signature_v2}\n"
        "check_ssl_certificate = False\nguess_mime_type = False\n"
    )
    return path
