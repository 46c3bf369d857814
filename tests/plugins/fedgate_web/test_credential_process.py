"""``fedgate credential-process`` consumed by boto3 through a real ``~/.aws/config`` in a temporary HOME.

The profile is written by ``fedgate login`` (loopback flow) approved by the scripted browser; boto3
then runs the real ``fedgate`` console script as its credential process.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from gateway import login_cli
from tests.plugins.fedgate_web.conftest import ACCOUNT, ROLE, Browser, Live, csrf, form


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME with no AWS settings leaking in from the machine."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "FEDGATE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


async def _login(live: Live, browser: Browser, profile: str) -> dict[str, Any]:
    """``fedgate login`` in a thread; the scripted browser signs in and picks the developer role."""
    loop = asyncio.get_running_loop()
    opened: asyncio.Queue[str] = asyncio.Queue()
    cli = asyncio.create_task(
        asyncio.to_thread(
            login_cli.loopback_login,
            live.url,
            profile,
            open_browser=lambda url: loop.call_soon_threadsafe(opened.put_nowait, url),
            out=io.StringIO(),
            timeout=30,
        )
    )
    page = await browser.sign_in("alice", start=await asyncio.wait_for(opened.get(), 10))
    chooser = form(page, "/sso/roles")
    response = await browser.post(
        "/sso/roles",
        {"csrf": chooser["fields"]["csrf"], "request": chooser["fields"]["request"], "role": ROLE},
    )
    assert response.status == 200 and "return to the terminal" in await response.text()
    return await asyncio.wait_for(cli, 20)


def _caller(live: Live, profile: str) -> dict[str, Any]:
    session = boto3.Session(profile_name=profile)
    sts = session.client("sts", endpoint_url=live.url, config=Config(retries={"max_attempts": 1}))
    return sts.get_caller_identity()  # type: ignore[no-any-return]


def _set_expiration(home: Path, profile: str, moved: Callable[[datetime], datetime]) -> str:
    path = home / ".fedgate" / "profiles" / f"{profile}.json"
    data = json.loads(path.read_text())
    data["credentials"]["Expiration"] = moved(datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(json.dumps(data))
    return str(data["credentials"]["AccessKeyId"])


@pytest.mark.timeout(150)  # several `fedgate credential-process` runs, each a fresh Python process
async def test_boto3_uses_credential_process(live: Live, browser: Browser, home: Path) -> None:
    profile = await _login(live, browser, "work")
    config = (home / ".aws" / "config").read_text()
    assert "[profile work]" in config
    assert f"{Path(sys.executable).with_name('fedgate')} credential-process --profile work" in config
    assert f"endpoint_url = {live.url}" in config

    # The profile alone sends the call to the gateway: no endpoint given, none of AWS reached.
    def caller_from_profile() -> dict[str, Any]:
        sts = boto3.Session(profile_name="work").client("sts", config=Config(retries={"max_attempts": 1}))
        assert sts.meta.endpoint_url == live.url
        return sts.get_caller_identity()  # type: ignore[no-any-return]

    assert (await asyncio.to_thread(caller_from_profile))["Account"] == ACCOUNT

    identity = await asyncio.to_thread(_caller, live, "work")
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/developer/alice"
    assert identity["Account"] == ACCOUNT

    # Still fresh: the cached credentials are printed as they are.
    fedgate = str(Path(sys.executable).with_name("fedgate"))
    run = await asyncio.to_thread(
        subprocess.run, [fedgate, "credential-process", "--profile", "work"], capture_output=True, text=True
    )
    printed = json.loads(run.stdout)
    assert printed["Version"] == 1 and printed["AccessKeyId"] == profile["credentials"]["AccessKeyId"]
    assert set(printed) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}

    # About to expire: renewed through the refresh token before it is handed out.
    old = _set_expiration(home, "work", lambda now: now + timedelta(seconds=60))
    identity = await asyncio.to_thread(_caller, live, "work")
    assert identity["Arn"].endswith("assumed-role/developer/alice")
    renewed = json.loads((home / ".fedgate" / "profiles" / "work.json").read_text())
    assert renewed["credentials"]["AccessKeyId"] != old

    # Signing out in the browser ends the CLI's ability to renew.
    _status, page, _ = await browser.get("/sso/roles")
    out = await browser.post("/sso/logout", {"csrf": csrf(page, "/sso/logout")})
    assert str(out.url).endswith("/sso/signed-out")
    _set_expiration(home, "work", lambda now: now - timedelta(seconds=1))
    run = await asyncio.to_thread(
        subprocess.run, [fedgate, "credential-process", "--profile", "work"], capture_output=True, text=True
    )
    assert run.returncode == 1 and "fedgate login --profile work" in run.stderr
    assert run.stdout == ""
    with pytest.raises((ClientError, BotoCoreError)):
        await asyncio.to_thread(_caller, live, "work")
