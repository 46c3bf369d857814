"""SAML browser sign-in, fedgate the service provider: metadata, signed AuthnRequests, the ACS.

A live gateway trusts a live :class:`SAMLTestIdP` (pysaml2's IdP code, served over HTTP with a
single sign-on form). Chromium drives the whole SP-initiated journey; scripted browsers (aiohttp
with a cookie jar) try the attacks: unknown, spent and foreign requests, replayed posts,
IdP-initiated responses, a wrong RelayState or audience.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import socket
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from playwright.async_api import async_playwright
from saml2 import md

from gateway.app import create_app
from gateway.config import parse_config
from gateway.testing.saml import SAMLP_NS, SAMLTestIdP
from gateway.web.server import GatewayRunner
from tests.conftest import running_memory_store
from tests.plugins.fedgate_web.conftest import ACCOUNT, CHROMIUM_ARGS, COOKIE_SECRET, SECRET_RE, forms, host

CHROMIUM = "/usr/bin/chromium"
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"
DEVELOPER = f"arn:aws:iam::{ACCOUNT}:role/developer"
READER = f"arn:aws:iam::{ACCOUNT}:role/reader"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/admin"
GRANTED = [
    (DEVELOPER, PROVIDER_ARN),
    (READER, PROVIDER_ARN),
    (f"arn:aws:iam::{ACCOUNT}:role/gone", PROVIDER_ARN),
]
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


@dataclass(frozen=True)
class SPKey:
    key_pem: str
    cert_pem: str


@pytest.fixture(scope="module")
def sp_key() -> SPKey:
    """The SP's signing key and self-signed certificate (RSA 2048)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedgate test SP")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SPKey(key_pem.decode(), cert.public_bytes(serialization.Encoding.PEM).decode())


@pytest.fixture(scope="module")
def idp() -> Iterator[SAMLTestIdP]:
    with SAMLTestIdP() as test_idp:
        test_idp.user_roles["alice"] = list(GRANTED)
        yield test_idp


@dataclass
class SamlLive:
    url: str
    idp: SAMLTestIdP
    audit_path: Path

    @property
    def acs(self) -> str:
        return f"{self.url}/sso/saml/corp/acs"

    @property
    def entity_id(self) -> str:
        return f"{self.url}/sso/saml/corp/metadata"

    def response(self, *, in_response_to: str | None, **kw: Any) -> str:
        """A signed response for alice to fedgate's ACS, base64."""
        args: dict[str, Any] = {"roles": GRANTED, "sp_entity_id": self.entity_id, "destination": self.acs}
        return SAMLTestIdP.b64(self.idp.response(in_response_to=in_response_to, **{**args, **kw}))


Start = Callable[..., Awaitable[SamlLive]]


@pytest.fixture
async def start(idp: SAMLTestIdP, sp_key: SPKey, tmp_path: Path) -> AsyncIterator[Start]:
    """Start fedgate with SAML sign-in trusting ``idp`` (served); keywords go to ``web_login.saml[0]``."""
    runners: list[web.AppRunner] = []
    idp.sp_certificate = None
    async with idp.serve():

        async def run(**saml: Any) -> SamlLive:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            audit_path = tmp_path / f"audit-{len(runners)}.jsonl"

            def trust(**condition: Any) -> dict[str, Any]:
                statement: dict[str, Any] = {
                    "Effect": "Allow",
                    "Principal": {"Federated": PROVIDER_ARN},
                    "Action": "sts:AssumeRoleWithSAML",
                }
                if condition:
                    statement["Condition"] = condition
                return {"Version": "2012-10-17", "Statement": [statement]}

            raw = {
                "account_id": ACCOUNT,
                "audit": {"sink": "file", "path": str(audit_path)},
                "providers": [idp.provider_config("corp")],
                "roles": [
                    {
                        "name": "developer",
                        "trust_policy": trust(StringEquals={"SAML:aud": f"{url}/sso/saml/corp/acs"}),
                    },
                    {"name": "reader", "trust_policy": trust()},
                    {"name": "admin", "trust_policy": trust()},  # not granted by the IdP
                ],
                "web_login": {
                    "public_url": url,
                    "cookie_secret": {"value": COOKIE_SECRET},
                    "credential_duration": 900,
                    "saml": [
                        {
                            "name": "corp",
                            "label": "Sign in with Corp SAML",
                            "provider": "corp",
                            "signing_key": {"value": sp_key.key_pem},
                            "signing_certificate": {"value": sp_key.cert_pem},
                            **saml,
                        }
                    ],
                },
            }
            plugins = host()
            config = parse_config(
                raw, provider_types=plugins.provider_types(), sections=plugins.config_sections()
            )
            # A store that has been running for a while: the IdP's responses are minted just now.
            runner = GatewayRunner(create_app(config, host=plugins, store=running_memory_store()))
            await runner.setup()
            await web.SockSite(runner, sock).start()
            runners.append(runner)
            return SamlLive(url, idp, audit_path)

        try:
            yield run
        finally:
            for runner in runners:
                await runner.cleanup()


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def begin(http: aiohttp.ClientSession, live: SamlLive) -> tuple[str, dict[str, list[str]]]:
    """Start a sign-in; return the IdP URL fedgate redirects to and its query."""
    async with http.get(f"{live.url}/sso/saml/corp/login", allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        location = response.headers["Location"]
    return location, parse_qs(urlsplit(location).query)


def request_xml(query: dict[str, list[str]]) -> etree._Element:
    inflated = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), wbits=-15)
    return etree.fromstring(inflated)


async def post_acs(
    http: aiohttp.ClientSession, live: SamlLive, saml_response: str, relay_state: str = ""
) -> tuple[int, str, str]:
    data = {"SAMLResponse": saml_response, **({"RelayState": relay_state} if relay_state else {})}
    async with http.post(live.acs, data=data) as response:
        return response.status, await response.text(), str(response.url)


async def test_sp_metadata_parses_with_pysaml2(start: Start, sp_key: SPKey) -> None:
    live = await start()
    async with client() as http, http.get(f"{live.url}/sso/saml/corp/metadata") as response:
        assert response.status == 200
        assert response.content_type == "application/samlmetadata+xml"
        document = await response.text()
    descriptor = md.entity_descriptor_from_string(document)
    assert descriptor.entity_id == live.entity_id
    sp = descriptor.spsso_descriptor[0]
    assert sp.authn_requests_signed == "true"
    (acs,) = sp.assertion_consumer_service
    assert acs.location == live.acs and acs.binding.endswith("bindings:HTTP-POST")
    assert "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" in {f.text for f in sp.name_id_format}
    cert_b64 = sp.key_descriptor[0].key_info.x509_data[0].x509_certificate.text
    published = x509.load_der_x509_certificate(base64.b64decode(cert_b64))
    assert published == x509.load_pem_x509_certificate(sp_key.cert_pem.encode())
    assert "PRIVATE" not in document


async def test_authn_request_is_signed_with_the_metadata_certificate(start: Start, idp: SAMLTestIdP) -> None:
    live = await start()
    async with client() as http:
        async with http.get(f"{live.url}/sso/saml/corp/metadata") as response:
            descriptor = md.entity_descriptor_from_string(await response.text())
        cert_b64 = (
            descriptor.spsso_descriptor[0].key_descriptor[0].key_info.x509_data[0].x509_certificate.text
        )
        key = x509.load_der_x509_certificate(base64.b64decode(cert_b64)).public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        location, query = await begin(http, live)
    assert location.startswith(f"{idp.sso_url}?")
    assert query["SigAlg"] == [RSA_SHA256]
    # The signature covers the octets as sent: SAMLRequest=...&RelayState=...&SigAlg=...
    raw = urlsplit(location).query
    signed, _, signature = raw.rpartition("&Signature=")
    assert (
        signed.startswith("SAMLRequest=")
        and "&RelayState=" in signed
        and signed.endswith("&SigAlg=" + "http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256")
    )
    key.verify(base64.b64decode(query["Signature"][0]), signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    assert signature
    request = request_xml(query)
    assert request.tag == f"{{{SAMLP_NS}}}AuthnRequest"
    assert request.get("Destination") == idp.sso_url
    assert request.get("AssertionConsumerServiceURL") == live.acs
    # An NCName carrying its issue time (hex milliseconds) and 160 random bits.
    assert re.fullmatch(r"_[0-9a-f]{11}-[0-9a-f]{40}", request.get("ID", ""))
    issuer = request.find("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer")
    assert issuer is not None and issuer.text == live.entity_id
    # A tampered query does not verify.
    assert not idp.verify_redirect_signature(
        signed.replace("RelayState=", "RelayState=x"), RSA_SHA256, query["Signature"][0]
    )


async def test_unsigned_authn_requests_when_configured(start: Start) -> None:
    live = await start(sign_authn_requests=False)
    async with client() as http:
        _, query = await begin(http, live)
    assert "Signature" not in query and "SigAlg" not in query
    assert request_xml(query).get("AssertionConsumerServiceURL") == live.acs


async def test_chromium_sp_initiated_sign_in_to_credentials_and_out(
    start: Start, idp: SAMLTestIdP, sp_key: SPKey
) -> None:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once, before the browser starts
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)", pytrace=False)
    live = await start()
    idp.sp_certificate = sp_key.cert_pem.encode()  # the IdP refuses unsigned or forged requests
    seen = len(idp.authn_requests)
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await chromium.new_page()
            await page.goto(live.url + "/sso/")
            await page.get_by_role("link", name="Sign in with Corp SAML").click()
            await page.get_by_label("Username").fill("alice")
            await page.get_by_role("button", name="Sign in").click()
            await page.get_by_role("button", name="Continue").click()  # the IdP's POST to the ACS

            await page.wait_for_url("**/sso/roles")
            assert await page.get_by_role("heading", name="Choose a role").is_visible()
            group = page.get_by_role("group", name=f"Account {ACCOUNT}")
            assert (
                await group.get_by_role("radio").count() == 2
            )  # granted and configured: not admin, not gone
            await page.get_by_label("developer").check()
            await page.get_by_role("button", name="Get credentials").click()
            await page.wait_for_url("**/sso/credentials")
            assert await page.get_by_role("heading", name="Credentials for developer").is_visible()
            exports = await page.locator("#exports").inner_text()
            assert SECRET_RE.search(exports) and "AWS_SESSION_TOKEN=" in exports

            await page.get_by_role("button", name="Sign out").click()
            await page.wait_for_url("**/sso/signed-out")
            assert await page.get_by_role("heading", name="Signed out").is_visible()
            assert "fedgate-session" not in {c["name"] for c in await page.context.cookies()}
        finally:
            await chromium.close()
            idp.sp_certificate = None
    (request,) = idp.authn_requests[seen:]
    assert request["signed"] and request["acs"] == live.acs
    events = [json.loads(line) for line in live.audit_path.read_text().splitlines()]
    minted = [e for e in events if e.get("eventName") == "AssumeRoleWithSAML"]
    assert minted and all("errorCode" not in e for e in minted), minted


async def _sign_in_scripted(http: aiohttp.ClientSession, live: SamlLive) -> tuple[str, str, str]:
    """SP-initiated sign-in without a browser: returns (request ID, RelayState, SAMLResponse)."""
    _, query = await begin(http, live)
    request_id = request_xml(query).get("ID", "")
    return request_id, query["RelayState"][0], live.response(in_response_to=request_id)


async def test_sp_initiated_response_signs_in_once(start: Start) -> None:
    live = await start()
    async with client() as http:
        _, relay, saml_response = await _sign_in_scripted(http, live)
        status, page, url = await post_acs(http, live, saml_response, relay)
        assert status == 200 and url.endswith("/sso/roles"), page[:500]
        assert len(next(f for f in forms(page) if f["action"] == "/sso/roles")["radios"]) == 2
        # The same POST again: the request is spent (and so is the assertion).
        status, page, _ = await post_acs(http, live, saml_response, relay)
        assert status == 403 and "already used" in page


async def test_unknown_in_response_to_is_refused(start: Start) -> None:
    live = await start(allow_idp_initiated=True)
    async with client() as http:
        await begin(http, live)  # a real request exists, but the response names another
        status, page, _ = await post_acs(http, live, live.response(in_response_to="_" + "0" * 40))
    assert status == 403 and "not started here" in page


async def test_second_response_to_a_spent_request_is_refused(start: Start) -> None:
    live = await start()
    async with client() as http:
        request_id, relay, first = await _sign_in_scripted(http, live)
        status, _, url = await post_acs(http, live, first, relay)
        assert status == 200 and url.endswith("/sso/roles")
        again = live.response(in_response_to=request_id)  # a fresh assertion for the same request
        status, page, _ = await post_acs(http, live, again, relay)
    assert status == 403 and "already used" in page


async def test_response_to_another_browsers_request_is_refused(start: Start) -> None:
    live = await start()
    async with client() as mallory, client() as victim:
        # Mallory starts a sign-in and gets the IdP's answer, then makes the victim's browser post it.
        _, relay, saml_response = await _sign_in_scripted(mallory, live)
        status, page, url = await post_acs(victim, live, saml_response, relay)
        assert status == 403 and "not started in this browser" in page
        assert "/sso/saml/corp/done" in url
        assert not any(c.key == "fedgate-session" for c in victim.cookie_jar)
        async with victim.get(f"{live.url}/sso/credentials", allow_redirects=False) as response:
            # Not signed in: sent to sign in, not shown credentials.
            assert response.status == 303 and "/sso/saml/corp/login" in response.headers["Location"]


async def test_wrong_relay_state_is_refused(start: Start) -> None:
    live = await start()
    async with client() as http:
        _, relay, saml_response = await _sign_in_scripted(http, live)
        status, page, _ = await post_acs(http, live, saml_response, "x" + relay[1:])
    assert status == 403 and "RelayState" in page


async def test_idp_initiated_accepted_when_allowed(start: Start) -> None:
    live = await start(allow_idp_initiated=True)
    async with client() as http:
        status, page, url = await post_acs(http, live, live.response(in_response_to=None), "anything")
        assert status == 200 and url.endswith("/sso/roles"), page[:500]
        assert "developer" in page and "admin" not in page


async def test_idp_initiated_refused_by_default(start: Start) -> None:
    live = await start()
    async with client() as http:
        status, page, _ = await post_acs(http, live, live.response(in_response_to=None))
    assert status == 403 and "started at the identity provider is not allowed" in page


async def test_response_for_another_sp_is_refused(start: Start) -> None:
    live = await start(allow_idp_initiated=True)
    async with client() as http:
        aws = SAMLTestIdP.b64(live.idp.response(roles=GRANTED))  # audience and recipient are AWS's
        status, page, _ = await post_acs(http, live, aws)
    assert status == 403 and "refused" in page


async def test_replayed_idp_initiated_post_is_refused(start: Start) -> None:
    live = await start(allow_idp_initiated=True)
    saml_response = live.response(in_response_to=None)
    async with client() as first, client() as second:
        status, _, _ = await post_acs(first, live, saml_response)
        assert status == 200
        status, page, _ = await post_acs(second, live, saml_response)
    assert status == 403 and "already used" in page


async def test_the_chooser_says_why_each_role_is_not_offered(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """Each role left out is logged with the reason; a sign-in offered none is audited as refused."""
    live = await start()
    async with client() as http:
        _, query = await begin(http, live)
        request_id = request_xml(query).get("ID", "")
        with caplog.at_level("INFO", logger="fedgate_web.runtime"):
            status, page, _ = await post_acs(
                http, live, live.response(in_response_to=request_id), query["RelayState"][0]
            )
        assert status == 200
        why = {r.role: r.why for r in caplog.records if r.getMessage() == "role not offered"}  # type: ignore[attr-defined]
        assert set(why) == {ADMIN}  # developer and reader are offered
        assert "did not grant it" in why[ADMIN]

        # An IdP that grants only a role the gateway does not have: nothing to offer, and why.
        _, query = await begin(http, live)
        request_id = request_xml(query).get("ID", "")
        nothing = live.response(
            in_response_to=request_id, roles=[(f"arn:aws:iam::{ACCOUNT}:role/gone", PROVIDER_ARN)]
        )
        status, page, _ = await post_acs(http, live, nothing, query["RelayState"][0])
        assert status == 200 and "No roles available" in page
    events = [json.loads(line) for line in live.audit_path.read_text().splitlines()]
    (refused,) = [e for e in events if e.get("errorCode") == "AccessDenied"]
    assert refused["eventName"] == "AssumeRoleWithSAML" and refused["userIdentity"]["type"] == "SAMLUser"
    assert refused["errorMessage"].startswith("No role can be offered.")
    assert f"{DEVELOPER}: the identity provider did not grant it" in refused["errorMessage"]
