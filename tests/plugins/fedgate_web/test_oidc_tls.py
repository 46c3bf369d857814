"""Browser sign-in with an OIDC issuer behind a private CA: the provider's ``ca_file`` serves the
discovery and token requests of the code flow too, not only the JWKS."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.app import create_app
from gateway.net import ca_bundle_context
from gateway.testing import OIDCTestIssuer
from gateway.testing.tls import TestCA
from tests.plugins.fedgate_web.conftest import CLIENT_ID, CLIENT_SECRET, Browser, Live, host, web_config


async def test_code_flow_with_an_internal_ca(tmp_path: Path) -> None:
    """IAM API Reference, CreateOpenIDConnectProvider: AWS verifies the IdP's TLS certificate with
    its "library of trusted root certificate authorities (CAs)", and "If your OIDC IdP relies on a
    certificate that is not signed by one of these trusted CAs, only then we secure communication
    using the thumbprints set in the IdP's configuration." fedgate's ``ca_file`` plays that part
    for every request fedgate makes to the issuer: discovery, JWKS and the token endpoint.
    """
    with TestCA() as ca:
        async with OIDCTestIssuer(audience=CLIENT_ID, tls=ca.server_context()) as issuer:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            issuer.register_client(
                CLIENT_ID, secret=CLIENT_SECRET, redirect_uris=[f"{url}/sso/callback/corp"]
            )
            config = web_config(
                issuer, url, tmp_path / "audit.jsonl", provider={"ca_file": str(ca.cert_file)}
            )
            app = create_app(config, host=host())
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            browser = Browser(Live(url, app, issuer, tmp_path / "audit.jsonl"))
            await browser.http.close()  # the browser, too, must trust the issuer's CA
            browser.http = aiohttp.ClientSession(
                cookie_jar=aiohttp.CookieJar(unsafe=True),
                connector=aiohttp.TCPConnector(ssl=ca_bundle_context(ca.cert_file)),
            )
            try:
                page = await browser.sign_in("alice")
                assert "developer" in page and "reader" in page, page[:1000]
                assert (
                    issuer.discovery_fetches >= 1 and issuer.token_requests == 1 and issuer.jwks_fetches == 1
                )
            finally:
                await browser.close()
                await runner.cleanup()
