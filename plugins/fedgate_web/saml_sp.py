"""The SAML service-provider side of browser sign-in: SP metadata, AuthnRequests, the ACS.

SP-initiated: ``/sso/saml/NAME/login`` stores a fresh AuthnRequest ID (with a random RelayState
and where to go next) for ten minutes, binds it to the browser with the signed login cookie, and
redirects to the IdP (HTTP-Redirect binding, signed). The IdP's page POSTs the response to
``/sso/saml/NAME/acs``.

That POST is cross-site by nature, and ``SameSite=Lax`` cookies are not sent with it, so the ACS
needs no cookie: the response's signed ``InResponseTo`` names the stored request server-side,
which is spent once (with its RelayState compared), and the verified sign-in is parked under a
one-time handle. The ACS then redirects to ``/sso/saml/NAME/done``, a same-site top-level GET
that does carry the login cookie: only there, when the cookie names the very request the
response answers, is the session created. A response answering another browser's request (login
CSRF), an unknown or spent request, or a replayed POST is refused. An unsolicited response
(IdP-initiated, no ``InResponseTo``) cannot be bound to a browser; it is accepted only where
``allow_idp_initiated`` says so.

Single logout (``/sso/saml/NAME/slo``) lives in :mod:`fedgate_web.saml_slo`.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, final

from aiohttp import web
from yarl import URL

from fedgate_web.config import SAMLLoginSettings, WebLoginSettings
from fedgate_web.errors import LoginError
from fedgate_web.oidc_login import PendingLogin
from fedgate_web.once import digest, issued_at, spend
from fedgate_web.render import page
from fedgate_web.runtime import WEB, SamlLogin, safe_next
from fedgate_web.saml_slo import SingleLogout, new_id, stamped_id
from fedgate_web.sessions import WebSession, identity_from_json, identity_to_json
from gateway.errors import ConfigError, ServiceError
from gateway.plugin import (
    Identity,
    IdentityProvider,
    ReplayGuard,
    SAMLServiceProvider,
    SAMLServiceProviderCapable,
    Store,
)

__all__ = ["SAMLLogin", "add_saml_routes", "build_saml_logins"]

#: How long a sign-in may take at the IdP.
TRANSACTION_SECONDS: Final = 600
#: How long the verified sign-in waits for the browser's GET of the ``done`` page.
_HANDOFF_SECONDS: Final = 120
_MAX_RELAY_STATE: Final = 80  # bindings 3.4.3: at most 80 bytes
_MAX_HANDLE: Final = 100


@final
class SAMLLogin:
    """One SAML sign-in option (``web_login.saml[i]``): fedgate as the SP of one IdP.

    ``sp`` is the provider's SP capability, which builds and verifies every SAML message; this
    class keeps the transactions and the browser binding.
    """

    def __init__(
        self,
        settings: SAMLLoginSettings,
        sp: SAMLServiceProvider,
        *,
        store: Store,
        replay: ReplayGuard,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sp = sp
        self._store = store
        self._replay = replay
        self._clock = clock
        self.single_logout: SingleLogout | None = None
        """Single logout, when the option's ``single_logout`` is on."""
        if settings.single_logout:
            self.single_logout = SingleLogout(
                option=settings.name,
                sp=sp,
                store=store,
                replay=replay,
                allow_unsigned_responses=settings.allow_unsigned_logout_responses,
                clock=clock,
            )

    @property
    def name(self) -> str:
        """The option's name (in URLs)."""
        return self.settings.name

    @property
    def label(self) -> str:
        """The sign-in button's text."""
        return self.settings.label

    def metadata(self) -> bytes:
        """The SP metadata document to register at the IdP."""
        return self.sp.metadata()

    async def begin(self, next_path: str) -> PendingLogin:
        """Store a new AuthnRequest (once, ten minutes) and return the IdP URL carrying it.

        ``state`` of the result is the request ID: the login cookie binds it to this browser.
        """
        request_id, relay_state = stamped_id(self._clock()), new_id()[1:33]
        url = await self.sp.login_url(request_id=request_id, relay_state=relay_state)
        if url is None:
            raise LoginError("The identity provider has no HTTP-Redirect sign-on endpoint.", status=502)
        record = {"option": self.name, "relay": relay_state, "next": next_path}
        await self._store.set(
            f"web:saml:{digest(request_id)}", json.dumps(record).encode(), ttl=TRANSACTION_SECONDS
        )
        return PendingLogin(url=url, state=request_id)

    async def accept(self, saml_response: str, relay_state: str) -> str:
        """Verify a response POSTed to the ACS; return the one-time handle of the sign-in.

        Raises :class:`LoginError`. The browser binding is checked by :meth:`complete`.
        """
        if not saml_response:
            raise LoginError("The sign-in response is missing.")
        request: dict[str, Any] = {}

        async def answers(in_response_to: str | None) -> None:
            if in_response_to is None:
                if not self.settings.allow_idp_initiated:
                    raise LoginError(
                        "Sign-in started at the identity provider is not allowed here. "
                        "Please start at fedgate's sign-in page.",
                        status=403,
                    )
                return
            request.update(await self._spend_request(in_response_to, relay_state))

        try:
            signed_in = await self.sp.accept(saml_response, answers=answers)
        except ServiceError as exc:
            message = f"The identity provider's response was refused: {exc.message}"
            raise LoginError(message, status=403) from None
        handle = stamped_id(self._clock())[1:]
        subject = signed_in.subject
        record = {
            "option": self.name,
            "identity": identity_to_json(signed_in.identity),
            "request": request.get("id"),
            "next": request.get("next", "/sso/roles"),
            "saml": {
                "name_id": subject.name_id,
                "name_id_format": subject.name_id_format,
                "session_index": subject.session_index,
                "name_qualifier": subject.name_qualifier,
            },
        }
        await self._store.set(
            f"web:saml-done:{digest(handle)}", json.dumps(record).encode(), ttl=_HANDOFF_SECONDS
        )
        return handle

    async def _spend_request(self, request_id: str, relay_state: str) -> dict[str, str]:
        key = f"web:saml:{digest(request_id)}"
        if issued_at(request_id.removeprefix("_")) is None:  # not an ID fedgate makes
            raise LoginError(
                "This sign-in has expired or was not started here. Please sign in again.", status=403
            )
        if not await spend(self._replay, "web:saml-used:", request_id.removeprefix("_"), TRANSACTION_SECONDS):
            raise LoginError("This sign-in response was already used. Please sign in again.", status=403)
        raw = await self._store.get(key)
        await self._store.delete(key)
        if raw is None:
            raise LoginError(
                "This sign-in has expired or was not started here. Please sign in again.", status=403
            )
        record = json.loads(raw)
        if record["option"] != self.name:
            raise LoginError("This sign-in response belongs to another sign-in option.", status=403)
        if len(relay_state) > _MAX_RELAY_STATE or not hmac.compare_digest(
            relay_state.encode(), str(record["relay"]).encode()
        ):
            raise LoginError("The sign-in response does not carry this sign-in's RelayState.", status=403)
        return {"id": request_id, "next": str(record["next"])}

    async def complete(self, handle: str, bound: str | None) -> tuple[Identity, str, dict[str, str]]:
        """Take the sign-in ``handle`` names (once): identity, next path and SAML session data.

        ``bound`` is the request ID of this browser's login cookie; a response to an AuthnRequest
        is accepted only in the browser that sent that request.
        """
        if not handle or len(handle) > _MAX_HANDLE:
            raise LoginError("The sign-in response is incomplete.")
        key = f"web:saml-done:{digest(handle)}"
        if not await spend(self._replay, "web:saml-done-used:", handle, _HANDOFF_SECONDS):
            raise LoginError("This sign-in was already completed. Please sign in again.", status=403)
        raw = await self._store.get(key)
        await self._store.delete(key)
        if raw is None:
            raise LoginError("This sign-in has expired. Please sign in again.", status=403)
        record = json.loads(raw)
        if record["option"] != self.name:
            raise LoginError("This sign-in belongs to another sign-in option.", status=403)
        request_id = record["request"]
        if request_id is not None and (bound is None or not hmac.compare_digest(bound, request_id)):
            # The response answers a request another browser sent: login CSRF, or cookies blocked.
            raise LoginError(
                "This sign-in was not started in this browser. Please sign in again.", status=403
            )
        saml = {str(k): str(v) for k, v in record["saml"].items()}
        return identity_from_json(record["identity"]), safe_next(record["next"]), saml

    async def remember(self, session: WebSession) -> None:
        """Index a new session by subject and SessionIndex, for logout started at the IdP."""
        if self.single_logout is not None:
            await self.single_logout.remember(session)

    async def logout_url(self, session: WebSession) -> str | None:
        """The IdP's single-logout URL with a signed LogoutRequest for ``session`` (already ended
        here), or ``None`` when the IdP (or this option) has no single logout."""
        if self.single_logout is None:
            return None
        return await self.single_logout.request_url(session)


def _option(request: web.Request) -> SAMLLogin:
    option = request.app[WEB].saml.get(request.match_info["name"])
    if not isinstance(option, SAMLLogin):
        raise web.HTTPNotFound()
    return option


saml_routes = web.RouteTableDef()


@saml_routes.get("/sso/saml/{name}/metadata")
async def metadata(request: web.Request) -> web.StreamResponse:
    """The SP metadata (public: it holds the certificate, never the key)."""
    return web.Response(
        body=_option(request).metadata(),
        content_type="application/samlmetadata+xml",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@saml_routes.get("/sso/saml/{name}/login")
@page
async def login(request: web.Request) -> web.StreamResponse:
    """Start an SP-initiated sign-in: redirect to the IdP with a signed AuthnRequest."""
    web_login = request.app[WEB]
    pending = await _option(request).begin(safe_next(request.query.get("next")))
    # encoded=True: the signature covers these exact octets, which yarl would otherwise re-quote.
    response = web.HTTPFound(URL(pending.url, encoded=True))
    web_login.set_login_cookie(response, pending.state)
    raise response


@saml_routes.post("/sso/saml/{name}/acs")
@page
async def acs(request: web.Request) -> web.StreamResponse:
    """The assertion consumer service (HTTP-POST binding).

    No same-site CSRF check: the post comes from the IdP's page. The response's InResponseTo,
    RelayState and the ``done`` step's login cookie are the defence (see the module docstring).
    """
    option = _option(request)
    limit = option.sp.max_response_chars
    if request.content_length is None or request.content_length > limit:
        raise LoginError("The sign-in response is too large (or of unknown length).", status=413)
    form = await request.post()
    saml_response, relay_state = form.get("SAMLResponse"), form.get("RelayState", "")
    if not isinstance(saml_response, str) or not isinstance(relay_state, str):
        raise LoginError("The sign-in response is malformed.")
    handle = await option.accept(saml_response, relay_state)
    raise web.HTTPSeeOther(f"/sso/saml/{option.name}/done?h={handle}")


@saml_routes.get("/sso/saml/{name}/done")
@page
async def done(request: web.Request) -> web.StreamResponse:
    """Finish a sign-in in the browser that started it: create the session, set its cookie."""
    web_login = request.app[WEB]
    option = _option(request)
    bound = web_login.login_state(request)
    identity, next_path, saml = await option.complete(request.query.get("h", ""), bound)
    session = await web_login.sessions.create(identity, option.name, saml=saml)
    await option.remember(session)
    response = web.HTTPSeeOther(next_path)
    web_login.clear_cookies(response, login_only=True)
    web_login.set_session_cookie(response, session)
    raise response


@saml_routes.get("/sso/saml/{name}/slo")
@page
async def slo(request: web.Request) -> web.StreamResponse:
    """The single logout service (HTTP-Redirect): the IdP's LogoutResponse or LogoutRequest.

    A top-level GET from the IdP's page: the signed message is the authority, not the cookie.
    """
    web_login = request.app[WEB]
    option = _option(request)
    if option.single_logout is None:
        raise web.HTTPNotFound()
    target = await option.single_logout.receive(
        request.rel_url.raw_query_string, web_login.sessions.delete_ref
    )
    # encoded=True: the signature covers these exact octets, which yarl would otherwise re-quote.
    response = web.HTTPSeeOther(URL(target, encoded=True) if target else "/sso/signed-out")
    web_login.clear_cookies(response)
    raise response


def add_saml_routes(app: web.Application, settings: WebLoginSettings) -> None:
    """Add the SAML SP routes when SAML sign-in is configured."""
    if settings.saml:
        app.add_routes(saml_routes)


def build_saml_logins(
    settings: WebLoginSettings,
    providers: Sequence[IdentityProvider],
    store: Store,
    replay: ReplayGuard,
    clock: Callable[[], float] = time.time,
) -> dict[str, SamlLogin]:
    """The SAML sign-in options; :class:`ConfigError` for a missing provider or an unusable key.

    The provider an option names must offer the SAML service-provider capability, whichever plugin
    implements it.
    """
    found: dict[str, SamlLogin] = {}
    for option in settings.saml:
        where = f"web_login.saml {option.name}"
        provider = next(
            (p for p in providers if isinstance(p, SAMLServiceProviderCapable) and p.name == option.provider),
            None,
        )
        if provider is None:
            raise ConfigError(f"{where}: no saml provider is named {option.provider}")
        base = f"{settings.public_url}/sso/saml/{option.name}"
        try:
            sp = provider.service_provider(
                entity_id=option.entity_id or f"{base}/metadata",
                acs_url=f"{base}/acs",
                slo_url=f"{base}/slo" if option.single_logout else None,
                signing_key_pem=option.signing_key.resolve().get_secret_value(),
                signing_certificate_pem=option.signing_certificate.resolve().get_secret_value(),
                sign_authn_requests=option.sign_authn_requests,
            )
        except ValueError as exc:
            raise ConfigError(f"{where}: signing_key/signing_certificate: {exc}") from None
        found[option.name] = SAMLLogin(option, sp, store=store, replay=replay, clock=clock)
    return found
