"""A live fedgate with browser sign-in, a live OIDC issuer it trusts, and a scripted browser.

The gateway's socket is bound before its configuration is written, so ``web_login.public_url``
(and the redirect URI registered at the issuer) name its real port.
"""

from __future__ import annotations

import html
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

import fedgate_web
from gateway.app import create_app
from gateway.config import GatewayConfig, parse_config
from gateway.plugin_host import PluginHost
from gateway.testing import OIDCTestIssuer
from gateway.web.server import GatewayRunner

ACCOUNT = "123456789012"
CLIENT_ID = "fedgate-web"
CLIENT_SECRET = "client-secret-for-tests"
COOKIE_SECRET = "0123456789abcdef0123456789abcdef-cookie"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def host() -> PluginHost:
    """The plugin host, with fedgate_web loaded from its entry point."""
    plugins = PluginHost()
    assert plugins.manager.is_registered(fedgate_web), "fedgate_web must come from its entry point"
    return plugins


def web_config(
    issuer: OIDCTestIssuer, url: str, audit_path: Path, provider: dict[str, Any] | None = None, **web: Any
) -> GatewayConfig:
    """Roles: alice may be developer or reader; only the subject ``root`` may be admin.

    ``provider`` overrides settings of the oidc provider; ``web`` those of ``web_login``."""
    key = issuer.issuer.split("://", 1)[1]
    arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{key}"

    def trust(**condition: Any) -> dict[str, Any]:
        statement: dict[str, Any] = {
            "Effect": "Allow",
            "Principal": {"Federated": arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
        }
        if condition:
            statement["Condition"] = condition
        return {"Version": "2012-10-17", "Statement": [statement]}

    raw: dict[str, Any] = {
        "account_id": ACCOUNT,
        "audit": {"sink": "file", "path": str(audit_path)},
        "providers": [issuer.provider_config(audiences=[CLIENT_ID], **(provider or {}))],
        "roles": [
            {
                "name": "developer",
                "description": "Build and deploy",
                "trust_policy": trust(StringEquals={f"{key}:aud": CLIENT_ID}),
            },
            {"name": "reader", "trust_policy": trust(StringLike={f"{key}:sub": "*"})},
            {"name": "admin", "trust_policy": trust(StringEquals={f"{key}:sub": "root"})},
        ],
        "web_login": {
            "public_url": url,
            "cookie_secret": {"value": COOKIE_SECRET},
            "credential_duration": 900,
            "oidc": [
                {
                    "name": "corp",
                    "label": "Sign in with Corp",
                    "issuer": issuer.issuer,
                    "client_id": CLIENT_ID,
                    "client_secret": {"value": CLIENT_SECRET},
                }
            ],
            **web,
        },
    }
    plugins = host()
    return parse_config(raw, provider_types=plugins.provider_types(), sections=plugins.config_sections())


@dataclass
class Live:
    """A running gateway and the issuer it trusts."""

    url: str
    app: web.Application
    issuer: OIDCTestIssuer
    audit_path: Path


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    """fedgate with web sign-in on a real port, trusting a real issuer, on the test's loop."""
    async with OIDCTestIssuer(audience=CLIENT_ID) as issuer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        issuer.register_client(
            CLIENT_ID,
            secret=CLIENT_SECRET,
            redirect_uris=[f"{url}/sso/callback/corp", f"{url}/sso/signed-out"],
        )
        issuer.user_claims["alice"] = {"email": "alice@example.com", "preferred_username": "alice"}
        audit_path = tmp_path / "audit.jsonl"
        config = web_config(issuer, url, audit_path)
        app = create_app(config, host=host())
        runner = GatewayRunner(app)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        try:
            yield Live(url, app, issuer, audit_path)
        finally:
            await runner.cleanup()


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}, "radios": []})
        elif tag == "input" and self.forms:
            if a.get("type") == "radio":
                self.forms[-1]["radios"].append(a.get("value", ""))
            elif "name" in a:
                self.forms[-1]["fields"][a["name"]] = a.get("value", "")


def forms(page: str) -> list[dict[str, Any]]:
    """The forms of ``page``: action, named field values, radio values."""
    parser = _Forms()
    parser.feed(page)
    return parser.forms


def form(page: str, action: str) -> dict[str, Any]:
    """The form of ``page`` posting to ``action``."""
    for found in forms(page):
        if found["action"] == action:
            return found
    raise AssertionError(f"no form posting to {action} in the page:\n{page[:2000]}")


class Browser:
    """A scripted browser over real HTTP (aiohttp with a cookie jar): fast, and not Chromium."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.http.close()

    async def get(self, path: str) -> tuple[int, str, str]:
        url = path if path.startswith("http") else self.live.url + path
        async with self.http.get(url) as response:
            return response.status, await response.text(), str(response.url)

    async def post(self, path: str, data: dict[str, str], **kw: Any) -> aiohttp.ClientResponse:
        url = path if path.startswith("http") else self.live.url + path
        response = await self.http.post(url, data=data, **kw)
        body = await response.text()
        # Follow a page that moves on by itself (<meta http-equiv="refresh">), as a browser does.
        refresh = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', body)
        if refresh is not None:
            response = await self.http.get(URL(html.unescape(refresh.group(1)), encoded=True))
            await response.read()
        return response

    async def sign_in(self, username: str = "alice", start: str = "/sso/roles") -> str:
        """Sign in at the issuer's form; return the page fedgate lands on."""
        status, page, url = await self.get(start)
        assert status == 200 and "Test IdP" in page, page[:500]
        idp_form = forms(page)[0]
        fields = {**idp_form["fields"], "username": username}
        response = await self.post(url, fields)
        assert response.status == 200, await response.text()
        return await response.text()


@pytest.fixture
async def browser(live: Live) -> AsyncIterator[Browser]:
    """A scripted browser for ``live``."""
    b = Browser(live)
    try:
        yield b
    finally:
        await b.close()


def csrf(page: str, action: str) -> str:
    """The CSRF token of the form posting to ``action``."""
    return str(form(page, action)["fields"]["csrf"])


ROLE = f"arn:aws:iam::{ACCOUNT}:role/developer"
READER = f"arn:aws:iam::{ACCOUNT}:role/reader"
SECRET_RE = re.compile(r"AWS_SECRET_ACCESS_KEY=([A-Za-z0-9/+=]{40})")
