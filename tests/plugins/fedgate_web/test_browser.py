"""The whole browser journey in headless Chromium (Debian's package, driven by Playwright).

Sign in at the test IdP's form, choose a role, read the credentials page, renew, sign out; and the
CLI's loopback and device sign-ins approved in the same real browser. With
``FEDGATE_SCREENSHOTS=DIR`` the role chooser is also saved as ``DIR/sso-role-chooser.png`` (the
README's picture).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser as Chromium
from playwright.async_api import Page, async_playwright

from gateway import login_cli
from tests.plugins.fedgate_web.conftest import ACCOUNT, CHROMIUM_ARGS, READER, ROLE, SECRET_RE, Live

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
async def chromium() -> AsyncIterator[Chromium]:
    """Headless Chromium; a missing browser fails the test (install it with .ci/run)."""
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once, before the browser starts
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)", pytrace=False)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def _sign_in(page: Page, live: Live, start: str) -> None:
    await page.goto(live.url + start)
    await page.get_by_label("Username").fill("alice")
    await page.get_by_role("button", name="Sign in").click()


async def test_browser_sign_in_to_credentials_and_out(live: Live, chromium: Chromium) -> None:
    context = await chromium.new_context(viewport={"width": 390, "height": 844})  # a phone
    page = await context.new_page()
    await page.goto(live.url + "/sso/")
    await page.get_by_role("link", name="Sign in with Corp").click()
    assert live.issuer.issuer in page.url
    await page.get_by_label("Username").fill("alice")
    await page.keyboard.press("Enter")  # the keyboard alone submits the form

    await page.wait_for_url("**/sso/roles")
    assert await page.get_by_role("heading", name="Choose a role").is_visible()
    group = page.get_by_role("group", name=f"Account {ACCOUNT}")
    assert await group.get_by_role("radio").count() == 2
    if os.environ.get("FEDGATE_SCREENSHOTS"):
        await page.set_viewport_size({"width": 760, "height": 620})
        await page.screenshot(path=str(Path(os.environ["FEDGATE_SCREENSHOTS"]) / "sso-role-chooser.png"))
    await page.get_by_label("developer").check()  # radio buttons are labelled by role name
    await page.get_by_role("button", name="Get credentials").click()
    await page.wait_for_url("**/sso/credentials")
    assert await page.get_by_role("heading", name="Credentials for developer").is_visible()
    exports = await page.locator("#exports").inner_text()
    first = SECRET_RE.search(exports)
    assert first and "AWS_SESSION_TOKEN=" in exports
    assert "aws_secret_access_key" in await page.locator("#credentials-file").inner_text()
    assert "UTC" in await page.locator("#expiry").inner_text()
    cookies = {c["name"]: c for c in await context.cookies()}
    session = cookies["fedgate-session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"

    await page.get_by_role("button", name="Renew credentials").click()
    await page.wait_for_url("**/sso/credentials")
    second = SECRET_RE.search(await page.locator("#exports").inner_text())
    assert second and second.group(1) != first.group(1)

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/sso/signed-out")
    assert await page.get_by_role("heading", name="Signed out").is_visible()
    assert live.issuer.logouts == 1
    assert "fedgate-session" not in {c["name"] for c in await context.cookies()}
    # Back out for real: the credentials page now starts a new sign-in at the IdP.
    await page.goto(live.url + "/sso/credentials")
    assert await page.get_by_label("Username").is_visible()
    await context.close()


async def test_fedgate_login_loopback_in_chromium(
    live: Live, chromium: Chromium, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FEDGATE_HOME", str(tmp_path / ".fedgate"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / ".aws" / "config"))
    loop = asyncio.get_running_loop()
    opened: asyncio.Queue[str] = asyncio.Queue()
    cli = asyncio.create_task(
        asyncio.to_thread(
            login_cli.loopback_login,
            live.url,
            "work",
            open_browser=lambda url: loop.call_soon_threadsafe(opened.put_nowait, url),
            timeout=30,
        )
    )
    url = await asyncio.wait_for(opened.get(), 10)
    page = await chromium.new_page()
    await page.goto(url)
    await page.get_by_label("Username").fill("alice")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/sso/cli/authorize**")
    assert await page.get_by_text("The fedgate command line on this computer").is_visible()
    await page.get_by_label("reader").check()
    await page.get_by_role("button", name="Send credentials to the CLI").click()
    await page.wait_for_url("http://127.0.0.1:*/callback?**")
    assert "return to the terminal" in await page.content()
    profile = await asyncio.wait_for(cli, 20)
    assert profile["role_arn"] == READER and profile["refresh_token"]
    config = (tmp_path / ".aws" / "config").read_text()
    assert "[profile work]" in config and "credential-process --profile work" in config
    assert (tmp_path / ".fedgate" / "profiles" / "work.json").stat().st_mode & 0o077 == 0


async def test_fedgate_login_device_in_chromium(
    live: Live, chromium: Chromium, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDGATE_HOME", str(tmp_path / ".fedgate"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / ".aws" / "config"))
    printed: list[str] = []
    approved = threading.Event()

    class Out:
        def write(self, text: str) -> int:
            printed.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    def sleep(seconds: float) -> None:  # poll once right away, then after the approval
        if len(printed) > 1 or any("Signed in" in p for p in printed):
            return
        approved.wait(20)

    cli = asyncio.create_task(
        asyncio.to_thread(login_cli.device_login, live.url, "headless", out=Out(), sleep=sleep)  # type: ignore[arg-type]
    )
    for _ in range(100):
        if printed:
            break
        await asyncio.sleep(0.05)
    text = "".join(printed)
    user_code = text.split("enter the code:")[1].split()[0]
    page = await chromium.new_page()
    await _sign_in(page, live, "/sso/device")
    await page.wait_for_url("**/sso/device")
    await page.get_by_label("Device code").fill(user_code.lower().replace("-", " "))
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("developer").check()
    await page.get_by_role("button", name="Approve the device").click()
    assert await page.get_by_role("heading", name="Device approved").is_visible()
    approved.set()
    profile = await asyncio.wait_for(cli, 20)
    assert profile["role_arn"] == ROLE
    assert profile["credentials"]["AccessKeyId"].startswith("ASIA")
