"""The per-application state of web sign-in, and what every page handler shares.

:class:`WebLogin` is built by a cleanup context after the core services exist. It owns the session
store, the sign-in options, the role catalog, cookie handling and the one way credentials are
minted for a signed-in user (:meth:`WebLogin.mint`, audited like an STS call).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, final
from urllib.parse import quote, urlsplit

from aiohttp import web

from fedgate_web.config import WebLoginSettings
from fedgate_web.errors import LoginError
from fedgate_web.oidc_login import OIDCLogin, PendingLogin
from fedgate_web.roles import RoleChoice, decide_choices, session_name_for
from fedgate_web.sessions import Signer, WebSession, WebSessions
from gateway.audit import Auditor
from gateway.audit.events import assumed_role_elements
from gateway.errors import AccessDenied, ServiceError
from gateway.iam.catalog import Catalog
from gateway.plugin import GatewayConfig, ReplayGuard, Store
from gateway.sts.service import AssumedRole, StsService
from gateway.web.request import call_record, transport

__all__ = [
    "WEB",
    "Minted",
    "SamlLogin",
    "WebLogin",
    "safe_next",
]

log = logging.getLogger(__name__)

WEB: web.AppKey[WebLogin] = web.AppKey("fedgate_web")

_NEXT_PATH_RE = re.compile(r"^/sso/[A-Za-z0-9/_\-.~]*\Z")
_NEXT_QUERY_RE = re.compile(r"^[\x21-\x7e]*\Z")
_MAX_NEXT = 2048


def safe_next(value: str | None, default: str = "/sso/roles") -> str:
    """``value`` if it is a local path under ``/sso/``, else ``default``: no open redirect."""
    if not value or len(value) > _MAX_NEXT:
        return default
    path, _, query = value.partition("?")
    # The path decides where the browser goes: only /sso/ pages, no "//" (scheme-relative URL)
    # and no backslash; the query is printable ASCII and cannot change the target.
    if not _NEXT_PATH_RE.match(path) or "//" in path or not _NEXT_QUERY_RE.match(query):
        return default
    return value


class SamlLogin(Protocol):
    """What the pages need from a SAML sign-in option (the SP side, :mod:`fedgate_web.saml_sp`)."""

    @property
    def name(self) -> str:
        """The option's name (in URLs)."""
        ...

    @property
    def label(self) -> str:
        """The sign-in button's text."""
        ...

    async def begin(self, next_path: str) -> PendingLogin:
        """The URL that sends the browser to the IdP with a signed AuthnRequest, and the request
        ID the login cookie binds to this browser."""
        ...

    async def logout_url(self, session: WebSession) -> str | None:
        """A single-logout URL at the IdP for ``session``, or ``None`` if it has none."""
        ...


@dataclass(frozen=True, slots=True)
class Minted:
    """Credentials issued to a signed-in session, and the session that records them."""

    session: WebSession
    assumed: AssumedRole


@final
class WebLogin:
    """Everything the ``/sso/`` handlers share."""

    def __init__(
        self,
        settings: WebLoginSettings,
        config: GatewayConfig,
        *,
        store: Store,
        replay: ReplayGuard,
        sessions: WebSessions,
        signer: Signer,
        sts: StsService,
        catalog: Catalog,
        auditor: Auditor,
        oidc: Mapping[str, OIDCLogin],
        saml: Mapping[str, SamlLogin],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.config = config
        self.store = store
        self.replay = replay
        self.sessions = sessions
        self.signer = signer
        self.sts = sts
        self.auditor = auditor
        self.oidc = dict(oidc)
        self.saml = dict(saml)
        self.catalog = catalog
        self.clock = clock
        secure = settings.cookies_secure
        # __Host- cookies are bound to this exact origin: no Domain, Path=/, Secure.
        self.session_cookie = "__Host-fedgate-session" if secure else "fedgate-session"
        self.login_cookie = "__Host-fedgate-login" if secure else "fedgate-login"
        self.origin = settings.public_url
        self.secure_transport = urlsplit(settings.public_url).scheme == "https"

    # --- cookies ------------------------------------------------------------------------------

    def _cookie(self, response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            secure=self.settings.cookies_secure,
            samesite="Lax",  # Strict would drop the cookie on the redirect back from the IdP
        )

    def set_session_cookie(self, response: web.StreamResponse, session: WebSession) -> None:
        """Attach the signed session cookie; it lives as long as the sign-in."""
        max_age = max(int(session.expires - self.clock()), 1)
        self._cookie(response, self.session_cookie, self.sessions.cookie_value(session), max_age)

    def set_login_cookie(self, response: web.StreamResponse, state: str) -> None:
        """Bind a sign-in in progress to this browser (no login CSRF): the state, signed."""
        self._cookie(response, self.login_cookie, self.signer.sign("login", state), 600)

    def login_state(self, request: web.Request) -> str | None:
        """The state value this browser's login cookie carries, if its signature is right."""
        return self.signer.unsign("login", request.cookies.get(self.login_cookie), max_len=400)

    def clear_cookies(self, response: web.StreamResponse, *, login_only: bool = False) -> None:
        """Expire the login cookie (and the session cookie unless ``login_only``)."""
        names = [self.login_cookie] if login_only else [self.login_cookie, self.session_cookie]
        for name in names:
            response.del_cookie(
                name, path="/", secure=self.settings.cookies_secure, httponly=True, samesite="Lax"
            )

    async def current(self, request: web.Request) -> WebSession | None:
        """The signed-in session of ``request``, or ``None``."""
        return await self.sessions.from_cookie(request.cookies.get(self.session_cookie))

    # --- sign-in options ------------------------------------------------------------------------

    def options(self, next_path: str) -> list[tuple[str, str]]:
        """(button label, URL) for every sign-in option."""
        suffix = f"?next={quote(next_path, safe='')}" if next_path != "/sso/roles" else ""
        found = [
            (o.settings.label or f"Sign in with {o.name}", f"/sso/login/{o.name}{suffix}")
            for o in self.oidc.values()
        ]
        found += [
            (s.label or f"Sign in with {s.name}", f"/sso/saml/{s.name}/login{suffix}")
            for s in self.saml.values()
        ]
        return found

    def login_redirect(self, next_path: str) -> web.HTTPException:
        """Where to send a browser that must sign in first (straight to the IdP if only one)."""
        options = self.options(next_path)
        if len(options) == 1:
            return web.HTTPSeeOther(options[0][1])
        return web.HTTPSeeOther(f"/sso/?next={quote(next_path, safe='')}")

    def session_name(self, session: WebSession) -> str:
        """The role session name for ``session``'s identity."""
        claims: tuple[str, ...] = ("preferred_username", "email", "sub")
        option = self.oidc.get(session.login)
        if option is not None:
            claims = tuple(option.settings.session_name_claims)
        return session_name_for(session.identity, claims)

    def choices(self, session: WebSession, request: web.Request) -> list[RoleChoice]:
        """The roles ``session`` may choose in ``request``: those minting would grant it.

        Why each other role is not offered goes to the log (one line per role); when none is
        offered, the sign-in is audited as a refused federation call whose message says why.
        """
        identity = session.identity
        offered, refused = decide_choices(
            self.catalog.snapshot,
            identity,
            session_name=self.session_name(session),
            transport=transport(request, now=self.sts.now(), secure=self.secure_transport),
        )
        for role_arn, why in refused:
            log.info(
                "role not offered",
                extra={
                    "role": role_arn,
                    "provider": identity.provider_arn,
                    "subject": identity.subject,
                    "why": why,
                },
            )
        if not offered:
            record = call_record(request, now=self.sts.now(), secure=self.secure_transport)
            record.identity = identity
            record.sign_in_via = "web"
            reasons = "; ".join(f"{arn}: {why}" for arn, why in refused) or "no role is configured"
            event = "AssumeRoleWithSAML" if identity.kind == "saml" else "AssumeRoleWithWebIdentity"
            self.auditor.emit(event, record, AccessDenied(f"No role can be offered. {reasons}"[:1024]))
        return offered

    def who(self, session: WebSession) -> str:
        """A human name for the signed-in identity."""
        for claim in ("email", "preferred_username", "name"):
            value = session.identity.claims.get(claim)
            if isinstance(value, str) and value:
                return value
        return session.identity.subject

    # --- minting --------------------------------------------------------------------------------

    async def mint(self, session: WebSession, role_arn: str, request: web.Request, *, via: str) -> Minted:
        """Issue credentials for ``role_arn`` to ``session`` (``via``: web, cli or device).

        STS decides with the one trust decision, as for the federation APIs (and as the chooser
        did); the duration is capped by the role's maximum. The call is audited either way.
        """
        identity = session.identity
        record = call_record(request, now=self.sts.now(), secure=self.secure_transport)
        record.identity = identity
        record.sign_in_via = via
        event = "AssumeRoleWithSAML" if identity.kind == "saml" else "AssumeRoleWithWebIdentity"
        try:
            assumed = self.sts.assume_for_login(
                identity, role_arn, self.session_name(session), self.settings.credential_duration, record
            )
        except ServiceError as exc:
            self.auditor.emit(event, record, exc)
            raise
        record.response_elements = assumed_role_elements(assumed)
        self.auditor.emit(event, record, None)
        if via == "web":
            creds = assumed.credentials
            session = await self.sessions.update(
                session, role_arn=role_arn, credentials=(creds.access_key_id, creds.session_token)
            )
        return Minted(session, assumed)

    def require(self, condition: bool, message: str, status: int = 403) -> None:
        """Raise :class:`LoginError` unless ``condition``."""
        if not condition:
            raise LoginError(message, status=status)

    def json_error(self, error: str, description: str, status: int = 400) -> web.Response:
        """An OAuth-style JSON error (the CLI endpoints)."""
        body: dict[str, Any] = {"error": error, "error_description": description}
        return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})
