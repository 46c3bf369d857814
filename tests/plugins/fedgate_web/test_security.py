"""Attacks on the sign-in pages: forged and replayed forms, replayed and unbound sign-in responses,
open redirects, tampered cookies, and codes or grants used twice."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp

from tests.plugins.fedgate_web.conftest import ROLE, Browser, Live, csrf, form, forms


async def test_post_without_or_with_forged_csrf_token_is_refused(live: Live, browser: Browser) -> None:
    page = await browser.sign_in()
    token = csrf(page, "/sso/roles")
    for bad in ("", "x", token.split(".")[0] + ".forged", "nonce." + token.split(".")[1]):
        response = await browser.post("/sso/roles", {"csrf": bad, "role": ROLE})
        assert response.status == 403, bad
        assert "expired or was already submitted" in await response.text()
    # The genuine token still works: refused attempts did not consume it.
    response = await browser.post("/sso/roles", {"csrf": token, "role": ROLE})
    assert str(response.url).endswith("/sso/credentials")


async def test_replayed_post_is_refused(live: Live, browser: Browser) -> None:
    page = await browser.sign_in()
    data = {"csrf": csrf(page, "/sso/roles"), "role": ROLE}
    first = await browser.post("/sso/roles", data)
    assert first.status == 200 and str(first.url).endswith("/sso/credentials")
    replay = await browser.post("/sso/roles", data)
    assert replay.status == 403


async def test_token_of_another_session_is_refused(live: Live, browser: Browser) -> None:
    page = await browser.sign_in()
    mallory = Browser(live)
    try:
        await mallory.sign_in("mallory")
        response = await mallory.post("/sso/roles", {"csrf": csrf(page, "/sso/roles"), "role": ROLE})
        assert response.status == 403
    finally:
        await mallory.close()


async def test_cross_site_post_is_refused(live: Live, browser: Browser) -> None:
    page = await browser.sign_in()
    token = csrf(page, "/sso/roles")
    evil = await browser.post(
        "/sso/roles", {"csrf": token, "role": ROLE}, headers={"Origin": "https://evil.test"}
    )
    assert evil.status == 403 and "another site" in await evil.text()
    fetch = await browser.post(
        "/sso/roles", {"csrf": token, "role": ROLE}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert fetch.status == 403


async def test_post_without_session_is_refused(live: Live) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{live.url}/sso/logout", data={"csrf": "a.b"}) as response,
    ):
        assert response.status == 403
        assert "session has ended" in await response.text()


async def test_role_not_allowed_is_refused(live: Live, browser: Browser) -> None:
    page = await browser.sign_in()
    admin = ROLE.replace("developer", "admin")
    response = await browser.post("/sso/roles", {"csrf": csrf(page, "/sso/roles"), "role": admin})
    assert response.status == 403 and "Not authorized" in await response.text()


async def test_sign_in_response_is_bound_to_the_browser_and_used_once(live: Live) -> None:
    victim, attacker = Browser(live), Browser(live)
    try:
        # The attacker signs in at the IdP but stops at the redirect back to fedgate...
        status, page, url = await attacker.get("/sso/login/corp")
        fields = {**forms(page)[0]["fields"], "username": "mallory"}
        response = await attacker.http.post(url, data=fields, allow_redirects=False)
        callback = response.headers["Location"]
        # ...and makes the victim's browser complete it (login CSRF): refused, no session.
        status, page, _ = await victim.get(callback)
        assert status == 403 and "not started in this browser" in page
        # The attacker's own browser can complete it, once.
        status, page, _ = await attacker.get(callback)
        assert status == 200 and "Choose a role" in page
        async with attacker.http.get(callback, allow_redirects=False) as replay:
            assert replay.status == 403
    finally:
        await victim.close()
        await attacker.close()


async def test_next_cannot_redirect_elsewhere(live: Live, browser: Browser) -> None:
    await browser.sign_in()
    for target in ("https://evil.test/", "//evil.test/sso/", "/sso//evil.test", "/elsewhere", "/sso/\\evil"):
        async with browser.http.get(
            f"{live.url}/sso/?{urlencode({'next': target})}", allow_redirects=False
        ) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/sso/roles", target


async def test_tampered_cookie_is_not_a_session(live: Live, browser: Browser) -> None:
    await browser.sign_in()
    cookie = next(c for c in browser.http.cookie_jar if c.key == "fedgate-session")
    session_id, _, mac = cookie.value.rpartition(".")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(
            f"{live.url}/sso/roles",
            headers={"Cookie": f"fedgate-session={cookie.value}"},
            allow_redirects=False,
        ) as genuine:
            assert genuine.status == 200
        for value in (f"{session_id}.{mac[::-1]}", f"{secrets.token_urlsafe(32)}.{mac}", session_id):
            async with http.get(
                f"{live.url}/sso/roles", headers={"Cookie": f"fedgate-session={value}"}, allow_redirects=False
            ) as response:
                assert response.status == 303 and "/sso/login/corp" in response.headers["Location"]


async def test_pages_are_not_cached_and_framing_is_refused(live: Live, browser: Browser) -> None:
    page = await browser.sign_in()
    async with browser.http.get(f"{live.url}/sso/roles") as response:
        assert response.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script" not in page
    set_cookie = [
        h
        for h in (await browser.post("/sso/roles", {"csrf": csrf(page, "/sso/roles"), "role": ROLE}))
        .history[0]
        .headers.getall("Set-Cookie", [])
    ]
    assert set_cookie == []  # the session cookie is not re-issued by a form post


async def test_cli_code_needs_the_pkce_verifier_and_is_used_once(live: Live, browser: Browser) -> None:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = "http://127.0.0.1:9/callback"
    query = {
        "redirect_uri": redirect,
        "state": "state-12345",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page = await browser.sign_in(start=f"/sso/cli/authorize?{urlencode(query)}")
    chooser = form(page, "/sso/roles")
    response = await browser.http.post(
        f"{live.url}/sso/roles",
        data={"csrf": chooser["fields"]["csrf"], "request": chooser["fields"]["request"], "role": ROLE},
        allow_redirects=False,
    )
    location = urlsplit(response.headers["Location"])
    assert location.netloc == "127.0.0.1:9"
    reply = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert reply["state"] == "state-12345"
    token = {"grant_type": "authorization_code", "code": reply["code"], "redirect_uri": redirect}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{live.url}/sso/cli/token", data={**token, "code_verifier": "wrong"}) as wrong:
            assert wrong.status == 400 and (await wrong.json())["error"] == "invalid_grant"
        # The failed attempt consumed the code: the right verifier is too late.
        async with http.post(f"{live.url}/sso/cli/token", data={**token, "code_verifier": verifier}) as late:
            assert late.status == 400


async def test_cli_redirect_must_be_loopback(live: Live, browser: Browser) -> None:
    await browser.sign_in()
    query = {
        "redirect_uri": "https://evil.test/callback",
        "state": "state-12345",
        "code_challenge": "a" * 43,
        "code_challenge_method": "S256",
    }
    status, page, _ = await browser.get(f"/sso/cli/authorize?{urlencode(query)}")
    assert status == 400 and "loopback" in page


async def test_unknown_refresh_and_device_codes_are_refused(live: Live) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{live.url}/sso/cli/token", data={"grant_type": "refresh_token", "refresh_token": "guess"}
        ) as response:
            assert response.status == 400 and (await response.json())["error"] == "invalid_grant"
        grant = "urn:ietf:params:oauth:grant-type:device_code"
        async with http.post(
            f"{live.url}/sso/cli/token", data={"grant_type": grant, "device_code": "x"}
        ) as r:
            assert (await r.json())["error"] == "expired_token"
        async with http.post(f"{live.url}/sso/device/authorize") as r:
            device = await r.json()
        async with http.post(
            f"{live.url}/sso/cli/token", data={"grant_type": grant, "device_code": device["device_code"]}
        ) as r:
            assert (await r.json())["error"] == "authorization_pending"
        async with http.post(
            f"{live.url}/sso/cli/token", data={"grant_type": grant, "device_code": device["device_code"]}
        ) as r:
            assert (await r.json())["error"] == "slow_down"
