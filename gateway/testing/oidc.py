"""Test helpers for fedgate and its plugin authors (no pytest needed to import this module).

:class:`OIDCTestIssuer` is a real OpenID Connect issuer served over HTTP on 127.0.0.1, with real
keys and real signatures, for tests and benchmarks of anything that consumes ID tokens::

    async with OIDCTestIssuer() as idp:
        provider_config = idp.provider_config()     # {"type": "oidc", "issuer": ..., "audiences": [...]}
        token = idp.mint(sub="repo:acme/app:ref:refs/heads/main")
        bad = idp.mint(alg="ES256", kid="rsa-1")     # a token no verifier should accept
        kid = idp.add_key("RSA")                     # rotate: publish a new key
        idp.fail_jwks = 503                          # make the JWKS endpoint fail
        assert idp.jwks_fetches == 1

It serves ``/.well-known/openid-configuration`` and ``/jwks`` (under ``path``, if given), starting
with an RSA 2048 key (kid ``rsa-1``) and an EC P-256 key (kid ``ec-1``). It is for tests only:
plain http (https with ``tls=``), keys in memory, no rate limits.

It is also a tiny authorization server for browser sign-in (authorization code flow, PKCE S256
required, nonce echoed into the ID token) once a client is registered::

    idp.register_client("fedgate-web", secret="s3cret", redirect_uris=["http://127.0.0.1:8080/sso/callback/corp"])
    idp.user_claims["alice"] = {"email": "alice@example.com", "groups": ["dev"]}

``/authorize`` shows a sign-in form (one username field, no password: anyone may be anyone);
``/token`` exchanges a code (once) for an ID token whose ``sub`` is that username and whose ``aud``
is the client id; ``/logout`` is the end-session endpoint (RP-initiated logout).
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import hmac
import html
import json
import secrets
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal, Self, TypeAlias, final
from urllib.parse import unquote_plus, urlencode, urlsplit

from aiohttp import web
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

__all__ = ["AUTO", "FailMode", "OIDCTestIssuer", "compact_jws"]


class _Auto(enum.Enum):
    AUTO = "auto"


#: ``mint(kid=AUTO)`` (the default) picks the issuer's first key that fits the algorithm.
AUTO: Final = _Auto.AUTO

#: How an endpoint misbehaves: an HTTP status, ``"garbage"`` (200 with a non-JSON body) or
#: ``"hang"`` (never answers until the issuer closes; pair it with a short ``http_timeout``).
FailMode = int | Literal["garbage", "hang"]

_KTY_FOR_ALG: Final[Mapping[str, tuple[str, str | None]]] = {
    **{f"{p}{n}": ("RSA", None) for p in ("RS", "PS") for n in (256, 384, 512)},
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", "Ed25519"),
}
_SigningKey: TypeAlias = RSAKey | ECKey | OKPKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_jws(header: Mapping[str, Any], payload: Mapping[str, Any] | bytes, signature: bytes = b"") -> str:
    """Assemble a compact JWS from parts, signed or not: for hand-crafting hostile tokens."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return f"{_b64(json.dumps(header).encode())}.{_b64(body)}.{_b64(signature)}"


@final
class OIDCTestIssuer:
    """A real OIDC issuer on 127.0.0.1 (random port), used as an async context manager.

    Attributes that tests may change at any time:
        fail_discovery, fail_jwks: a :data:`FailMode` to make that endpoint fail, or ``None``.
        discovery_overrides: members merged into the discovery document (``{"issuer": "..."}``).
        user_claims: extra ID-token claims per username signing in at ``/authorize``.
    Counters: ``discovery_fetches`` and ``jwks_fetches`` (requests served, failed ones included),
    ``sign_ins`` (codes issued), ``token_requests`` (served, failed ones included) and ``logouts``.
    """

    def __init__(
        self,
        *,
        path: str = "",
        audience: str = "fedgate-test",
        subject: str = "test-subject",
        keys: Mapping[str, _SigningKey] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """Configure the issuer; it serves once entered with ``async with``.

        ``keys`` (kid to joserfc private key) replaces the two generated keys, e.g. to reuse keys
        across many issuers (an RSA key takes a while to generate); all of them are published.
        ``tls`` (a server context, e.g. :meth:`gateway.testing.tls.TestCA.server_context`) serves
        https instead of http.
        """
        if path and (not path.startswith("/") or path.endswith("/")):
            raise ValueError("path must start with / and not end with /")
        self._path = path
        self.audience = audience
        self.subject = subject
        self.fail_discovery: FailMode | None = None
        self.fail_jwks: FailMode | None = None
        self.discovery_overrides: dict[str, Any] = {}
        self.discovery_fetches = 0
        self.jwks_fetches = 0
        self.user_claims: dict[str, dict[str, Any]] = {}
        self.sign_ins = 0
        self.token_requests = 0
        self.logouts = 0
        self._clients: dict[str, _Client] = {}
        self._codes: dict[str, _Grant] = {}
        self._keys: dict[str, _SigningKey] = {}
        self._published: set[str] = set()
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._issuer = ""
        self._tls = tls
        if keys is None:
            self.add_key("RSA", kid="rsa-1")
            self.add_key("EC", kid="ec-1")
        else:
            self._keys.update(keys)
            self._published.update(keys)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get(f"{self._path}/.well-known/openid-configuration", self._discovery)
        app.router.add_get(f"{self._path}/jwks", self._jwks)
        app.router.add_get(f"{self._path}/authorize", self._authorize_form)
        app.router.add_post(f"{self._path}/authorize", self._authorize)
        app.router.add_post(f"{self._path}/token", self._token)
        app.router.add_get(f"{self._path}/logout", self._logout)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self._tls)
        await site.start()
        self._runner = runner
        port = runner.addresses[0][1]
        scheme = "https" if self._tls is not None else "http"
        self._issuer = f"{scheme}://127.0.0.1:{port}{self._path}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def issuer(self) -> str:
        """The issuer URL (``http[s]://127.0.0.1:PORT[/path]``); set once the issuer is serving."""
        if not self._issuer:
            raise RuntimeError("OIDCTestIssuer is not serving; use it as `async with`")
        return self._issuer

    @property
    def jwks_uri(self) -> str:
        """Where the JWKS is served."""
        return f"{self.issuer}/jwks"

    def provider_config(self, **overrides: Any) -> dict[str, Any]:
        """A ``providers`` entry trusting this issuer, with ``overrides`` applied."""
        config: dict[str, Any] = {
            "type": "oidc",
            "issuer": self.issuer,
            "audiences": [self.audience],
            "algorithms": ["RS256", "ES256"],
        }
        config.update(overrides)
        return config

    def add_key(
        self, kty: Literal["RSA", "EC", "OKP"] = "RSA", *, kid: str | None = None, publish: bool = True
    ) -> str:
        """Create a signing key (RSA 2048, EC P-256 or Ed25519) and return its kid.

        With ``publish=False`` the key signs tokens but is absent from the JWKS until
        :meth:`publish` is called: how a rotation looks to a verifier.
        """
        kid = kid or f"{kty.lower()}-{len(self._keys) + 1}"
        key: _SigningKey
        if kty == "RSA":
            key = RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)
        elif kty == "EC":
            key = ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)
        else:
            key = OKPKey.generate_key("Ed25519", parameters={"kid": kid}, private=True)
        self._keys[kid] = key
        if publish:
            self._published.add(kid)
        return kid

    def publish(self, kid: str) -> None:
        """Put the key ``kid`` into the JWKS."""
        self._key(kid)
        self._published.add(kid)

    def unpublish(self, kid: str) -> None:
        """Take the key ``kid`` out of the JWKS (it can still sign)."""
        self._published.discard(kid)

    def jwks(self) -> dict[str, Any]:
        """The JWKS currently served (public keys only)."""
        return {"keys": [self._public_jwk(kid) for kid in self._keys if kid in self._published]}

    def public_pem(self, kid: str = "rsa-1") -> bytes:
        """The PEM-encoded public key ``kid`` (e.g. to forge an HMAC "signed" with it)."""
        return self._key(kid).as_pem(private=False)

    def private_key(self, kid: str) -> _SigningKey:
        """The joserfc private key ``kid``."""
        return self._key(kid)

    def default_claims(self, lifetime: float = 600) -> dict[str, Any]:
        """iss, aud, sub, iat, nbf and exp of a token valid now for ``lifetime`` seconds."""
        now = int(time.time())
        return {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": self.subject,
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime),
        }

    def mint(
        self,
        claims: Mapping[str, Any] | None = None,
        *,
        alg: str = "RS256",
        kid: str | _Auto | None = AUTO,
        headers: Mapping[str, Any] | None = None,
        signing_key: _SigningKey | None = None,
        **overrides: Any,
    ) -> str:
        """A signed compact JWS.

        Claims are :meth:`default_claims` updated with ``claims`` then ``overrides``; a value of
        ``None`` removes that claim. The header is ``alg``, ``typ: JWT`` and ``kid`` (``AUTO``: the
        first key fitting ``alg``; ``None``: no kid) updated with ``headers`` (``None`` removes).
        The token is signed with the key ``kid`` or ``signing_key`` (e.g. a key of an attacker);
        ``alg="none"`` (any case) yields an empty signature. Nothing is validated: hostile tokens
        are the point.
        """
        payload = self.default_claims()
        payload.update(claims or {})
        payload.update(overrides)
        payload = {k: v for k, v in payload.items() if v is not None}
        if kid is AUTO:
            kid = self._kid_for(alg) if alg in _KTY_FOR_ALG else None
        header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
        if kid is not None:
            header["kid"] = kid
        header.update(headers or {})
        header = {k: v for k, v in header.items() if v is not None}
        unsigned = compact_jws(header, payload)[:-1]  # drops the trailing "." of the empty signature
        if alg.lower() == "none":
            return unsigned + "."
        key = (
            signing_key
            if signing_key is not None
            else self._key(kid if isinstance(kid, str) else self._kid_for(alg))
        )
        model = JWSRegistry.algorithms["Ed25519" if alg == "EdDSA" else alg]
        return f"{unsigned}.{_b64(model.sign(unsigned.encode('ascii'), key))}"

    def _kid_for(self, alg: str) -> str:
        kty, crv = _KTY_FOR_ALG[alg]
        for kid, key in self._keys.items():
            if key.key_type == kty and (crv is None or getattr(key, "curve_name", None) == crv):
                return kid
        raise ValueError(f"the issuer has no key for {alg}; add one with add_key()")

    def _key(self, kid: str) -> _SigningKey:
        try:
            return self._keys[kid]
        except KeyError:
            raise ValueError(f"the issuer has no key {kid!r}") from None

    def _public_jwk(self, kid: str) -> dict[str, Any]:
        key = self._keys[kid]
        jwk = dict(key.as_dict(private=False))
        jwk["kid"] = kid
        jwk["use"] = "sig"
        return jwk

    async def _misbehave(self, mode: FailMode) -> web.Response:
        if mode == "garbage":
            return web.Response(body=b"<html>not json</html>", content_type="text/html")
        if mode == "hang":
            await self._closing.wait()
            return web.Response(status=503)
        return web.Response(status=int(mode), text="failing on purpose")

    async def _discovery(self, request: web.Request) -> web.StreamResponse:
        self.discovery_fetches += 1
        if self.fail_discovery is not None:
            return await self._misbehave(self.fail_discovery)
        document: dict[str, Any] = {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code", "id_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }
        document.update(self.discovery_overrides)
        return web.json_response(document)

    async def _jwks(self, request: web.Request) -> web.StreamResponse:
        self.jwks_fetches += 1
        if self.fail_jwks is not None:
            return await self._misbehave(self.fail_jwks)
        return web.json_response(self.jwks())

    # --- authorization server (browser sign-in) -------------------------------------------------

    def register_client(
        self, client_id: str, *, secret: str | None = None, redirect_uris: list[str] | tuple[str, ...] = ()
    ) -> None:
        """Accept ``client_id`` at ``/authorize`` and ``/token``.

        ``secret`` (``None``: a public client) must then authenticate it at ``/token``, by HTTP Basic
        or form fields. ``redirect_uris`` are compared exactly, and also allowed as
        ``post_logout_redirect_uri`` at ``/logout``.
        """
        self._clients[client_id] = _Client(secret, tuple(redirect_uris))

    def _authorization_error(self, message: str) -> web.Response:
        return web.Response(status=400, text=f"authorization request refused: {message}")

    def _check_authorization(self, params: Mapping[str, str]) -> tuple[_Client, str] | str:
        client = self._clients.get(params.get("client_id", ""))
        if client is None:
            return "unknown client_id"
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            return "redirect_uri is not registered"
        if params.get("response_type") != "code":
            return "response_type must be code"
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return "PKCE with S256 is required"
        if "openid" not in params.get("scope", "").split():
            return "scope must include openid"
        return client, redirect_uri

    async def _authorize_form(self, request: web.Request) -> web.StreamResponse:
        checked = self._check_authorization(request.query)
        if isinstance(checked, str):
            return self._authorization_error(checked)
        keep = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge",
                "code_challenge_method")  # fmt: skip
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(request.query[name])}">'
            for name in keep
            if name in request.query
        )
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test IdP sign-in</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>'
            '<main><h1>Test IdP</h1><form method="post">'
            f'{hidden}<label for="username">Username</label> '
            '<input id="username" name="username" autocomplete="username" required> '
            '<button type="submit">Sign in</button></form></main></body></html>'
        )
        return web.Response(text=page, content_type="text/html")

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        checked = self._check_authorization(params)
        if isinstance(checked, str):
            return self._authorization_error(checked)
        username = params.get("username", "").strip()
        if not username:
            return self._authorization_error("username is required")
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Grant(
            client_id=params["client_id"],
            redirect_uri=checked[1],
            challenge=params["code_challenge"],
            nonce=params.get("nonce"),
            subject=username,
        )
        self.sign_ins += 1
        reply = {"code": code}
        if "state" in params:
            reply["state"] = params["state"]
        raise web.HTTPFound(f"{checked[1]}?{urlencode(reply)}")

    async def _token(self, request: web.Request) -> web.StreamResponse:
        self.token_requests += 1
        form = await request.post()
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        client_id, secret = params.get("client_id"), params.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            client_id, secret = unquote_plus(user), unquote_plus(password)
        client = self._clients.get(client_id or "")
        if client is None or (
            client.secret is not None and not hmac.compare_digest(client.secret, secret or "")
        ):
            return web.json_response({"error": "invalid_client"}, status=401)
        if params.get("grant_type") != "authorization_code":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        grant = self._codes.pop(params.get("code", ""), None)  # one use only, even when it fails below
        if grant is None or grant.client_id != client_id or grant.redirect_uri != params.get("redirect_uri"):
            return web.json_response({"error": "invalid_grant"}, status=400)
        verifier = params.get("code_verifier", "")
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        if not hmac.compare_digest(challenge, grant.challenge):
            return web.json_response(
                {"error": "invalid_grant", "error_description": "PKCE failed"}, status=400
            )
        claims: dict[str, Any] = {"sub": grant.subject, "aud": client_id, "auth_time": int(time.time())}
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        claims.update(self.user_claims.get(grant.subject, {}))
        return web.json_response(
            {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": 600,
                "id_token": self.mint(claims),
            },
            headers={"Cache-Control": "no-store"},
        )

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        self.logouts += 1
        target = request.query.get("post_logout_redirect_uri")
        allowed = {uri for client in self._clients.values() for uri in client.redirect_uris}
        if target is not None and target in allowed and urlsplit(target).scheme in ("http", "https"):
            raise web.HTTPFound(target)
        return web.Response(text="<!doctype html><title>Signed out</title><p>Signed out of the test IdP.</p>",
                            content_type="text/html")  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Client:
    secret: str | None
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    subject: str
