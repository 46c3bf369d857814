"""The sign-in journey over real HTTP with a scripted browser: fast checks of every step."""

from __future__ import annotations

import json
import re

import boto3
from botocore.config import Config

from tests.plugins.fedgate_web.conftest import ACCOUNT, READER, ROLE, SECRET_RE, Browser, Live, csrf, form


async def test_sign_in_choose_role_credentials_renew_logout(live: Live, browser: Browser) -> None:
    page = await browser.sign_in("alice")
    assert "Choose a role" in page and "alice@example.com" in page
    chooser = form(page, "/sso/roles")
    # alice may be developer or reader, not admin (its trust policy names another subject).
    assert sorted(chooser["radios"]) == sorted([ROLE, READER])
    assert f"Account {ACCOUNT}" in page

    response = await browser.post("/sso/roles", {"csrf": chooser["fields"]["csrf"], "role": ROLE})
    assert response.status == 200 and str(response.url).endswith("/sso/credentials")
    page = await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    secret = SECRET_RE.search(page)
    key_id = re.search(r"AWS_ACCESS_KEY_ID=(ASIA[A-Z2-7]{16})", page)
    token = re.search(r"AWS_SESSION_TOKEN=(\S+)", page)
    assert secret and key_id and token
    assert "aws_secret_access_key = " + secret.group(1) in page
    assert f"arn:aws:sts::{ACCOUNT}:assumed-role/developer/alice" in page

    # The credentials work: GetCallerIdentity signed with them, against the same gateway.
    sts = boto3.client(
        "sts",
        endpoint_url=live.url,
        region_name="us-east-1",
        aws_access_key_id=key_id.group(1),
        aws_secret_access_key=secret.group(1),
        aws_session_token=token.group(1),
        config=Config(retries={"max_attempts": 1}),
    )
    import asyncio

    identity = await asyncio.to_thread(sts.get_caller_identity)
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/developer/alice"

    renewed = await browser.post("/sso/renew", {"csrf": csrf(page, "/sso/renew")})
    assert renewed.status == 200
    renewed_page = await renewed.text()
    assert SECRET_RE.search(renewed_page) and SECRET_RE.search(renewed_page).group(1) != secret.group(1)  # type: ignore[union-attr]

    out = await browser.post("/sso/logout", {"csrf": csrf(renewed_page, "/sso/logout")})
    assert out.status == 200 and str(out.url).endswith("/sso/signed-out")
    assert live.issuer.logouts == 1
    _status, page, _url = await browser.get("/sso/credentials")
    assert "Test IdP" in page  # signed out: back to the IdP's sign-in form

    events = [json.loads(line) for line in live.audit_path.read_text().splitlines()]
    minted = [e for e in events if e["eventName"] == "AssumeRoleWithWebIdentity"]
    assert len(minted) == 2 and all(e["userIdentity"]["signInVia"] == "fedgate-web" for e in minted)
    assert secret.group(1) not in live.audit_path.read_text()
