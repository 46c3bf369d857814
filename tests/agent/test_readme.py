"""The README's "Credentials agent" walk-through, run as a newcomer would against the demo.

The demo and the agent listen on free ports rather than 8080, 9911 and 9912 (other test runs may
hold those); everything else is the README's lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.flows.agent_process import launch_agent
from tests.test_cli import demo  # noqa: F401 - the fixture serving config/demo.yaml

BIN = Path(sys.executable).parent
ROLE = "arn:aws:iam::123456789012:role/demo-reader"


# F811: ``demo`` is the fixture imported above, requested by its name.
def test_readme_agent_walkthrough(demo: tuple[subprocess.Popen[str], Path, int], tmp_path: Path) -> None:  # noqa: F811
    _process, config, port = demo
    url = f"http://127.0.0.1:{port}"
    token = tmp_path / "fedgate-token"
    minted = subprocess.run(
        [str(BIN / "fedgate"), "dev-token", "-c", str(config), "--sub", "alice", "-o", str(token)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert minted.returncode == 0, minted.stderr
    auth = tmp_path / "fedgate-agent" / "token"
    agent = launch_agent(
        [
            "--gateway-url", url, "--role-arn", ROLE, "--token-file", str(token),
            "--authorization-token-file", str(auth), "--imds", "127.0.0.1:0", "--listen", "127.0.0.1:0",
        ],
        auth,
        cwd=tmp_path,
    )  # fmt: skip
    try:
        agent.wait_for("demo-reader", lambda s: s["valid"], "credentials for demo-reader")
        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        }
        container = dict(
            base,
            AWS_CONTAINER_CREDENTIALS_FULL_URI=agent.url("demo-reader"),
            AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(auth),
            AWS_EC2_METADATA_DISABLED="true",
        )
        imds = dict(base, AWS_EC2_METADATA_SERVICE_ENDPOINT=agent.imds["demo-reader"] + "/")
        assert agent.url("demo-reader").endswith("/roles/demo-reader")
        for env in (container, imds):
            who = subprocess.run(
                [
                    str(BIN / "aws"),
                    "sts",
                    "get-caller-identity",
                    "--endpoint-url",
                    url,
                    "--region",
                    "us-east-1",
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert who.returncode == 0, who.stderr
            assert json.loads(who.stdout)["Arn"].startswith(
                "arn:aws:sts::123456789012:assumed-role/demo-reader/"
            )
        with urllib.request.urlopen(agent.container + "/status", timeout=5) as response:
            line = response.read().decode()
        assert line.startswith(f"demo-reader ({ROLE}): valid until ") and "next renewal in" in line
    finally:
        code = agent.stop()
    assert code == 0, agent.log()
    agent.assert_clean_log()
