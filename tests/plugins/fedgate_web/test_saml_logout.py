"""SAML single logout at /sso/saml/NAME/slo (HTTP-Redirect binding), fedgate the service provider.

A live gateway trusts a live :class:`SAMLTestIdP` whose metadata lists a SingleLogoutService.
Chromium signs in and out (SP-initiated: fedgate's signed LogoutRequest, the IdP's signed
LogoutResponse); scripted browsers try IdP-initiated logout and the attacks: unsigned, tampered,
SHA-1, replayed and unsolicited messages, each refused with no state change.
"""

from __future__ import annotations

import base64
import datetime
import html
import os
import re
import zlib
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree
from playwright.async_api import async_playwright
from saml2 import md
from yarl import URL

from gateway.testing.saml import SAML_NS, SAML_STATUS_SUCCESS, SAMLP_NS, SAMLTestIdP
from tests.plugins.fedgate_web import test_saml_login as login
from tests.plugins.fedgate_web.conftest import CHROMIUM_ARGS, csrf
from tests.plugins.fedgate_web.test_saml_login import (
    CHROMIUM,
    RSA_SHA256,
    SamlLive,
    SPKey,
    Start,
    begin,
    client,
    post_acs,
    request_xml,
)

# The SAML sign-in fixtures: a live IdP, the SP's key, and fedgate started against them.
idp, sp_key, start = login.idp, login.sp_key, login.start
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"


def slo_url(live: SamlLive) -> str:
    return f"{live.url}/sso/saml/corp/slo"


def decode(query: dict[str, list[str]], parameter: str) -> etree._Element:
    return etree.fromstring(zlib.decompress(base64.b64decode(query[parameter][0]), wbits=-15))


def verify_sp_signature(location: str, sp_key: SPKey) -> None:
    """The redirect's signature verifies with the SP certificate over the octets as sent."""
    signed, _, _ = urlsplit(location).query.rpartition("&Signature=")
    query = parse_qs(urlsplit(location).query)
    assert query["SigAlg"] == [RSA_SHA256]
    key = x509.load_pem_x509_certificate(sp_key.cert_pem.encode()).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(base64.b64decode(query["Signature"][0]), signed.encode(), padding.PKCS1v15(), hashes.SHA256())


async def signed_in(
    http: aiohttp.ClientSession, live: SamlLive, name_id: str = "alice@example.com"
) -> tuple[str, str]:
    """Sign in (scripted, SP-initiated); return the roles page and the SessionIndex issued."""
    _, query = await begin(http, live)
    request_id = request_xml(query).get("ID", "")
    saml_response = live.response(in_response_to=request_id, name_id=name_id)
    xml = etree.fromstring(base64.b64decode(saml_response))
    statement = xml.find(f".//{{{SAML_NS}}}AuthnStatement")
    assert statement is not None and statement.get("SessionIndex")
    status, page, url = await post_acs(http, live, saml_response, query["RelayState"][0])
    assert status == 200 and url.endswith("/sso/roles"), page[:500]
    return page, str(statement.get("SessionIndex"))


async def is_signed_in(http: aiohttp.ClientSession, live: SamlLive) -> bool:
    async with http.get(f"{live.url}/sso/roles", allow_redirects=False) as response:
        if response.status == 200:
            return True
        assert response.status == 303 and "/sso/saml/corp/login" in response.headers["Location"]
        return False


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    """GET without following redirects: status, Location, body."""
    async with http.get(URL(url, encoded=True), allow_redirects=False) as response:
        return response.status, response.headers.get("Location", ""), await response.text()


async def sign_out(http: aiohttp.ClientSession, live: SamlLive, roles_page: str) -> str:
    """Post the sign-out form; return where fedgate sends the browser next.

    Leaving for the IdP is a page that moves on by itself (a cross-origin redirect would break the
    pages' form-action policy); staying is a 303 to the signed-out page.
    """
    data = {"csrf": csrf(roles_page, "/sso/logout")}
    async with http.post(f"{live.url}/sso/logout", data=data, allow_redirects=False) as response:
        body = await response.text()
        if response.status == 303:
            return response.headers["Location"]
        assert response.status == 200, body
        refresh = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', body)
        assert refresh is not None, body
        return html.unescape(refresh.group(1))


async def test_sp_metadata_lists_single_logout(start: Start) -> None:
    live = await start()
    async with client() as http, http.get(f"{live.url}/sso/saml/corp/metadata") as response:
        descriptor = md.entity_descriptor_from_string(await response.text())
    (service,) = descriptor.spsso_descriptor[0].single_logout_service
    assert service.location == slo_url(live) and service.binding.endswith("bindings:HTTP-Redirect")


async def test_chromium_sign_in_and_single_logout(start: Start, idp: SAMLTestIdP, sp_key: SPKey) -> None:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once, before the browser starts
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)", pytrace=False)
    live = await start()
    idp.sp_certificate = sp_key.cert_pem.encode()  # the IdP refuses unsigned or forged requests
    idp.sp_slo_urls[live.entity_id] = slo_url(live)
    seen, seen_logouts = len(idp.authn_requests), len(idp.logout_requests)
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await chromium.new_page()
            await page.goto(live.url + "/sso/")
            await page.get_by_role("link", name="Sign in with Corp SAML").click()
            await page.get_by_label("Username").fill("alice")
            await page.get_by_role("button", name="Sign in").click()
            await page.get_by_role("button", name="Continue").click()
            await page.wait_for_url("**/sso/roles")
            await page.get_by_label("developer").check()
            await page.get_by_role("button", name="Get credentials").click()
            await page.wait_for_url("**/sso/credentials")

            await page.get_by_role("button", name="Sign out").click()
            # fedgate -> the IdP's SLO endpoint (signed LogoutRequest) -> fedgate's SLO endpoint.
            await page.wait_for_url("**/sso/signed-out")
            assert await page.get_by_role("heading", name="Signed out").is_visible()
            assert "fedgate-session" not in {c["name"] for c in await page.context.cookies()}

            await page.goto(live.url + "/sso/credentials")  # signed out: back to the IdP's form
            await page.wait_for_url(f"{idp.sso_url}?**")
            assert await page.get_by_label("Username").is_visible()
        finally:
            await chromium.close()
            idp.sp_certificate = None
    sign_on = idp.authn_requests[seen]
    (logout, *_) = idp.logout_requests[seen_logouts:]
    assert logout["signed"] and logout["issuer"] == live.entity_id
    assert logout["destination"] == idp.slo_url
    assert logout["name_id"] == "alice@example.com"
    assert logout["name_id_format"] == "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    assert logout["session_index"] and logout["session_index"] == sign_on["session_index"]


async def test_logout_request_is_signed_and_names_the_session(start: Start, sp_key: SPKey) -> None:
    live = await start()
    async with client() as http:
        page, session_index = await signed_in(http, live)
        location = await sign_out(http, live, page)
        assert location.startswith(f"{live.idp.slo_url}?SAMLRequest=")
        verify_sp_signature(location, sp_key)
        request = decode(parse_qs(urlsplit(location).query), "SAMLRequest")
        assert request.tag == f"{{{SAMLP_NS}}}LogoutRequest"
        assert request.get("Destination") == live.idp.slo_url
        assert request.findtext(f"{{{SAML_NS}}}Issuer") == live.entity_id
        name_id = request.find(f"{{{SAML_NS}}}NameID")
        assert name_id is not None and name_id.text == "alice@example.com"
        assert request.findtext(f"{{{SAMLP_NS}}}SessionIndex") == session_index
        assert not await is_signed_in(http, live)  # ended here before going to the IdP


async def _started_logout(http: aiohttp.ClientSession, live: SamlLive) -> tuple[str, str]:
    """Sign in and out; return the LogoutRequest ID and RelayState fedgate sent to the IdP."""
    page, _ = await signed_in(http, live)
    query = parse_qs(urlsplit(await sign_out(http, live, page)).query)
    return str(decode(query, "SAMLRequest").get("ID")), query["RelayState"][0]


async def test_logout_response_checks(start: Start) -> None:
    live = await start()
    idp = live.idp
    async with client() as http:
        request_id, relay = await _started_logout(http, live)

        def answer(**kw: object) -> str:
            args: dict[str, object] = {"in_response_to": request_id, "relay_state": relay, **kw}
            return idp.logout_response_url(slo_url(live), **args)  # type: ignore[arg-type]

        good = answer()
        refused = {
            "not signed": answer(sign=False),
            "does not verify": good.replace("RelayState=", "RelayState=x", 1),
            "SHA-1": answer(sign_alg=RSA_SHA1),
            "no sign-out started here": answer(in_response_to="_" + "0" * 40),
            "RelayState": answer(relay_state="x" + relay[1:]),
        }
        for why, url in refused.items():
            status, _, body = await get(http, url)
            assert status == 403 and "single-logout message was refused" in body and why in body, why
        # Nothing was spent by the refusals: the genuine answer still completes the sign-out.
        status, location, _ = await get(http, good)
        assert status == 303 and location == "/sso/signed-out"
        status, _, body = await get(http, good)  # replayed: the request is spent
        assert status == 403 and "no sign-out started here" in body


async def test_logout_response_failure_status_is_an_error_page(start: Start) -> None:
    live = await start()
    async with client() as http:
        request_id, relay = await _started_logout(http, live)
        url = live.idp.logout_response_url(
            slo_url(live),
            in_response_to=request_id,
            relay_state=relay,
            status="urn:oasis:names:tc:SAML:2.0:status:Responder",
        )
        status, _, body = await get(http, url)
    assert status == 502 and "did not confirm" in body


async def test_unsigned_logout_response_accepted_when_allowed(start: Start) -> None:
    live = await start(allow_unsigned_logout_responses=True)
    async with client() as http:
        request_id, relay = await _started_logout(http, live)
        url = live.idp.logout_response_url(
            slo_url(live), in_response_to=request_id, relay_state=relay, sign=False
        )
        status, location, _ = await get(http, url)
    assert status == 303 and location == "/sso/signed-out"


async def test_idp_initiated_logout_ends_the_subjects_sessions(start: Start, sp_key: SPKey) -> None:
    live = await start()
    idp = live.idp
    async with client() as alice, client() as alice_too, client() as bob, client() as front:
        _, index = await signed_in(alice, live)
        await signed_in(alice_too, live)  # another sign-in of alice, another SessionIndex
        await signed_in(bob, live, name_id="bob@example.com")
        url, request_id = idp.logout_request_url(
            slo_url(live), name_id="alice@example.com", session_index=index, relay_state="rs-1"
        )
        status, location, _ = await get(front, url)  # the IdP's front channel: any browser
        assert status == 303 and location.startswith(f"{idp.slo_url}?SAMLResponse=")
        verify_sp_signature(location, sp_key)
        query = parse_qs(urlsplit(location).query)
        assert query["RelayState"] == ["rs-1"]
        answer = decode(query, "SAMLResponse")
        assert answer.tag == f"{{{SAMLP_NS}}}LogoutResponse"
        assert answer.get("InResponseTo") == request_id and answer.get("Destination") == idp.slo_url
        assert answer.findtext(f"{{{SAML_NS}}}Issuer") == live.entity_id
        code = answer.find(f"{{{SAMLP_NS}}}Status/{{{SAMLP_NS}}}StatusCode")
        assert code is not None and code.get("Value") == SAML_STATUS_SUCCESS

        assert not await is_signed_in(alice, live)
        assert await is_signed_in(alice_too, live) and await is_signed_in(bob, live)

        status, _, body = await get(front, url)  # replayed
        assert status == 403 and "already used" in body

        # Without a SessionIndex: every session of the subject at this IdP.
        url, _ = idp.logout_request_url(slo_url(live), name_id="alice@example.com")
        status, _, _ = await get(front, url)
        assert status == 303
        assert not await is_signed_in(alice_too, live) and await is_signed_in(bob, live)


async def test_forged_idp_initiated_requests_change_nothing(start: Start) -> None:
    live = await start()
    idp = live.idp
    async with client() as alice, client() as front:
        _, index = await signed_in(alice, live)

        def request(**kw: object) -> str:
            args: dict[str, object] = {"name_id": "alice@example.com", "session_index": index, **kw}
            return idp.logout_request_url(slo_url(live), **args)[0]  # type: ignore[arg-type]

        good = request(relay_state="rs")
        refused = {
            "not signed": request(sign=False),
            "does not verify": good.replace("RelayState=rs", "RelayState=rt", 1),
            "SHA-1": request(sign_alg=RSA_SHA1),
            "another endpoint": idp.logout_request_url(
                f"{live.url}/sso/saml/other/slo", name_id="alice@example.com"
            )[0].replace("/sso/saml/other/slo", "/sso/saml/corp/slo", 1),
            "repeated": good + "&SAMLRequest=x",
            "too long ago": request(
                issue_instant=datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
            ),
        }
        for why, url in refused.items():
            status, _, body = await get(front, url)
            assert status == 403 and "refused" in body and why in body, (why, body[-600:])
            assert await is_signed_in(alice, live), why
        status, _, body = await get(front, f"{slo_url(live)}?RelayState=x")
        assert status == 403 and await is_signed_in(alice, live)


async def test_single_logout_off(start: Start) -> None:
    live = await start(single_logout=False)
    async with client() as http:
        page, _ = await signed_in(http, live)
        assert await sign_out(http, live, page) == "/sso/signed-out"
        status, _, _ = await get(http, f"{slo_url(live)}?SAMLRequest=x")
        assert status == 404
        async with http.get(f"{live.url}/sso/saml/corp/metadata") as response:
            assert "SingleLogoutService" not in await response.text()
