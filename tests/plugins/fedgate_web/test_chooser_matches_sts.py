"""The role chooser offers exactly the roles STS grants for the same request, over real HTTP.

Both ask the one trust decision with the same request facts: trust policies conditioned on
``aws:SourceIp`` (through trusted proxies too), ``aws:UserAgent``, ``aws:SecureTransport``, the
token's claims and ``sts:RoleSessionName`` are offered by the chooser exactly when
``AssumeRoleWithWebIdentity`` from the same client allows them, and the offered role mints.
"""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway import keys
from gateway.app import create_app
from gateway.config import parse_config
from gateway.testing import OIDCTestIssuer
from tests.plugins.fedgate_web.conftest import (
    ACCOUNT,
    CLIENT_ID,
    CLIENT_SECRET,
    COOKIE_SECRET,
    Browser,
    Live,
    csrf,
    form,
    host,
)

PROXY_CLIENT = "198.51.100.7"
USER_AGENT = "fedgate-chooser-test/1.0"
CLAIMS = {"email": "alice@example.com", "preferred_username": "alice"}


def _config(issuer: OIDCTestIssuer, url: str, audit: Path) -> Any:
    key = issuer.issuer.removeprefix("http://")
    arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{key}"

    def role(name: str, **condition: Any) -> dict[str, Any]:
        statement: dict[str, Any] = {
            "Effect": "Allow",
            "Principal": {"Federated": arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{key}:aud": CLIENT_ID}, **condition},
        }
        return {"name": name, "trust_policy": {"Version": "2012-10-17", "Statement": [statement]}}

    raw = {
        "account_id": ACCOUNT,
        "audit": {"sink": "file", "path": str(audit)},
        "proxy": {"trusted_proxies": ["127.0.0.1/32"]},
        "providers": [issuer.provider_config(audiences=[CLIENT_ID])],
        "roles": [
            role("open"),
            role("from-loopback", IpAddress={"aws:SourceIp": "127.0.0.1/32"}),
            role("from-proxy-client", IpAddress={"aws:SourceIp": f"{PROXY_CLIENT}/32"}),
            role("from-elsewhere", IpAddress={"aws:SourceIp": "203.0.113.0/24"}),
            role("this-agent", StringEquals={f"{key}:aud": CLIENT_ID, "aws:UserAgent": USER_AGENT}),
            role("other-agent", StringLike={"aws:UserAgent": "aws-cli/*"}),
            role("tls-only", Bool={"aws:SecureTransport": "true"}),
            role("plain-http", Bool={"aws:SecureTransport": "false"}),
            role("alice-session", StringEquals={f"{key}:aud": CLIENT_ID, "sts:RoleSessionName": "alice"}),
            role("root-only", StringEquals={f"{key}:aud": CLIENT_ID, f"{key}:sub": "root"}),
        ],
        "web_login": {
            "public_url": url,
            "cookie_secret": {"value": COOKIE_SECRET},
            "oidc": [
                {
                    "name": "corp",
                    "issuer": issuer.issuer,
                    "client_id": CLIENT_ID,
                    "client_secret": {"value": CLIENT_SECRET},
                }
            ],
        },
    }
    plugins = host()
    return parse_config(raw, provider_types=plugins.provider_types(), sections=plugins.config_sections())


@pytest.fixture
async def chooser_live(tmp_path: Path) -> AsyncIterator[Live]:
    async with OIDCTestIssuer(audience=CLIENT_ID) as issuer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        issuer.register_client(CLIENT_ID, secret=CLIENT_SECRET, redirect_uris=[f"{url}/sso/callback/corp"])
        issuer.user_claims["alice"] = CLAIMS
        audit = tmp_path / "audit.jsonl"
        app = create_app(_config(issuer, url, audit), host=host())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        try:
            yield Live(url, app, issuer, audit)
        finally:
            await runner.cleanup()


def _role_arns(names: set[str]) -> set[str]:
    return {f"arn:aws:iam::{ACCOUNT}:role/{name}" for name in names}


async def _sts_grants(live: Live, headers: dict[str, str]) -> set[str]:
    """The roles AssumeRoleWithWebIdentity grants alice's token from this client."""
    token = live.issuer.mint(sub="alice", aud=CLIENT_ID, **CLAIMS)
    granted = set()
    async with aiohttp.ClientSession(headers=headers) as http:
        for role in live.app[keys.CATALOG].snapshot:
            form_data = {
                "Action": "AssumeRoleWithWebIdentity",
                "Version": "2011-06-15",
                "RoleArn": role.arn,
                "RoleSessionName": "alice",
                "WebIdentityToken": token,
            }
            async with http.post(live.url + "/", data=form_data) as response:
                body = await response.text()
            if response.status == 200:
                granted.add(role.arn)
            else:
                assert "<Code>AccessDenied</Code>" in body, body
    return granted


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        (None, {"open", "from-loopback", "this-agent", "plain-http", "alice-session"}),
        (PROXY_CLIENT, {"open", "from-proxy-client", "this-agent", "plain-http", "alice-session"}),
    ],
    ids=["direct", "through-a-trusted-proxy"],
)
async def test_the_chooser_offers_exactly_what_sts_grants(
    chooser_live: Live, forwarded: str | None, expected: set[str]
) -> None:
    headers = {"User-Agent": USER_AGENT}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    browser = Browser(chooser_live)
    await browser.http.close()
    browser.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers=headers)
    try:
        page = await browser.sign_in()
        offered = set(form(page, "/sso/roles")["radios"])
        granted = await _sts_grants(chooser_live, headers)
        assert offered == granted == _role_arns(expected)

        # A role that only the source address allows is not just offered: it mints.
        where = "from-proxy-client" if forwarded else "from-loopback"
        response = await browser.post(
            "/sso/roles", {"csrf": csrf(page, "/sso/roles"), "role": _role_arns({where}).pop()}
        )
        assert response.status == 200 and str(response.url).endswith("/sso/credentials")
        assert re.search(r"AWS_SECRET_ACCESS_KEY=[A-Za-z0-9/+=]{40}", await response.text())
    finally:
        await browser.close()
