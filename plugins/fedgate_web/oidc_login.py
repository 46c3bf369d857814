"""The relying-party side of OIDC browser sign-in: authorization code with PKCE (S256) and nonce.

Requests are built with authlib's framework-free OAuth 2 helpers and sent with aiohttp. The ID
token the token endpoint returns is verified by the configured ``oidc`` identity provider (the
same code that verifies AssumeRoleWithWebIdentity tokens); this module adds what only the code
flow has: the one-time ``state`` (stamped with its issue time and spent through the replay guard),
the ``nonce`` bound into the token and the PKCE verifier.
"""

from __future__ import annotations

import base64
import hmac
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, final
from urllib.parse import quote_plus, urlencode

import aiohttp
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from fedgate_web.config import OIDCLoginSettings
from fedgate_web.errors import LoginError
from fedgate_web.once import digest, issued_at, spend, stamped
from gateway.errors import ServiceError
from gateway.plugin import Identity, IdentityProvider, ReplayGuard, Store, bounded_loads

__all__ = ["OIDCLogin", "PendingLogin"]

#: How long a sign-in may take at the IdP.
TRANSACTION_SECONDS = 600
_MAX_RESPONSE = 64 * 1024
_DISCOVERY_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """Where to send the browser, and the state value its login cookie must carry back."""

    url: str
    state: str


@final
class OIDCLogin:
    """One OIDC sign-in option (``web_login.oidc[i]``)."""

    def __init__(
        self,
        settings: OIDCLoginSettings,
        provider: IdentityProvider,
        *,
        redirect_uri: str,
        store: Store,
        replay: ReplayGuard,
        http: aiohttp.ClientSession,
        tls: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.redirect_uri = redirect_uri
        self._store = store
        self._replay = replay
        self._http = http
        self._tls: ssl.SSLContext | bool = tls if tls is not None else True  # the provider's ca_file
        self._clock = clock
        self._monotonic = monotonic
        self._discovery: tuple[float, dict[str, Any]] | None = None

    @property
    def name(self) -> str:
        """The option's name (in URLs)."""
        return self.settings.name

    async def endpoints(self) -> dict[str, Any]:
        """The issuer's discovery document (cached for an hour)."""
        if self._discovery is not None and self._monotonic() - self._discovery[0] < _DISCOVERY_SECONDS:
            return self._discovery[1]
        url = f"{self.settings.issuer.rstrip('/')}/.well-known/openid-configuration"
        document = await self._get_json(url)
        if document.get("issuer") != self.settings.issuer or not isinstance(
            document.get("authorization_endpoint"), str
        ):
            raise LoginError("The identity provider's discovery document is not usable.", status=502)
        self._discovery = (self._monotonic(), document)
        return document

    async def begin(self, next_path: str) -> PendingLogin:
        """Start a sign-in: remember state, nonce and PKCE verifier (once), return the IdP URL."""
        document = await self.endpoints()
        state = stamped(self._clock(), generate_token(43))
        nonce, verifier = generate_token(43), generate_token(64)
        record = {"nonce": nonce, "verifier": verifier, "next": next_path}
        await self._store.set(
            f"web:oidc:{digest(state)}", json.dumps(record).encode(), ttl=TRANSACTION_SECONDS
        )
        url = prepare_grant_uri(
            document["authorization_endpoint"],
            self.settings.client_id,
            "code",
            redirect_uri=self.redirect_uri,
            scope=" ".join(self.settings.scopes),
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        return PendingLogin(url=url, state=state)

    async def finish(self, state: str, code: str) -> tuple[Identity, str]:
        """Complete a sign-in: consume ``state`` (once), redeem ``code``, verify the ID token.

        Returns the identity and the path to continue to. Raises :class:`LoginError`.
        """
        if not state or len(state) > 200 or not code or len(code) > 2048:
            raise LoginError("The sign-in response is incomplete.")
        key = f"web:oidc:{digest(state)}"
        if issued_at(state) is None:  # not a state fedgate makes
            raise LoginError("This sign-in has expired or was not started here. Please sign in again.")
        if not await spend(self._replay, "web:oidc-used:", state, TRANSACTION_SECONDS):
            raise LoginError("This sign-in response was already used. Please sign in again.")
        raw = await self._store.get(key)
        await self._store.delete(key)
        if raw is None:
            raise LoginError("This sign-in has expired or was not started here. Please sign in again.")
        record = json.loads(raw)
        id_token = await self._redeem(code, record["verifier"])
        try:
            identity = await self.provider.authenticate(id_token)
        except ServiceError as exc:
            raise LoginError(f"The identity provider's ID token was refused: {exc.message}") from None
        nonce = identity.claims.get("nonce")
        if not isinstance(nonce, str) or not hmac.compare_digest(nonce, record["nonce"]):
            raise LoginError("The ID token does not answer this sign-in (nonce mismatch).")
        aud = identity.claims.get("aud")
        if self.settings.client_id not in (aud if isinstance(aud, list) else [aud]):
            raise LoginError("The ID token was issued to another client.")
        return identity, str(record["next"])

    async def _redeem(self, code: str, verifier: str) -> str:
        document = await self.endpoints()
        token_url = document.get("token_endpoint")
        if not isinstance(token_url, str):
            raise LoginError("The identity provider has no token endpoint.", status=502)
        body = prepare_token_request(
            "authorization_code", code=code, redirect_uri=self.redirect_uri, code_verifier=verifier
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        if self.settings.client_secret is not None:
            # client_secret_basic: both parts form-encoded first (RFC 6749 section 2.3.1).
            secret = self.settings.client_secret.resolve().get_secret_value()
            pair = f"{quote_plus(self.settings.client_id)}:{quote_plus(secret)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        else:
            body += "&" + urlencode({"client_id": self.settings.client_id})
        try:
            async with self._http.post(token_url, data=body, headers=headers, ssl=self._tls) as response:
                payload = await _read_json(response)
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            raise LoginError("The identity provider's token endpoint did not answer.", status=502) from None
        if status != 200 or not isinstance(payload.get("id_token"), str):
            # The error code is the IdP's (invalid_grant ...), never a secret.
            error = str(payload.get("error", f"HTTP {status}"))[:100]
            raise LoginError(f"The identity provider refused the code ({error}).", status=502)
        return str(payload["id_token"])

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._http.get(url, headers={"Accept": "application/json"}, ssl=self._tls) as response:
                if response.status != 200:
                    raise LoginError("The identity provider's discovery document is unavailable.", status=502)
                return await _read_json(response)
        except (aiohttp.ClientError, TimeoutError):
            raise LoginError("The identity provider did not answer.", status=502) from None


async def _read_json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    raw = await response.content.read(_MAX_RESPONSE + 1)
    if len(raw) > _MAX_RESPONSE:
        raise LoginError("The identity provider's answer is too large.", status=502)
    try:
        data = bounded_loads(raw)
    except ValueError:
        raise LoginError("The identity provider's answer is not JSON.", status=502) from None
    if not isinstance(data, dict):
        raise LoginError("The identity provider's answer is not a JSON object.", status=502)
    return data
