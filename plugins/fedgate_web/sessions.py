"""Browser sessions: opaque signed cookies pointing at records in the shared store, and CSRF tokens.

The cookie holds only a random session id and its HMAC; everything else (the verified identity,
the chosen role, the sealed session token of the last credentials) lives in the store under a hash
of the id, so a reader of the store cannot forge a cookie and a cookie reveals nothing. Form tokens
carry their issue time, are bound to the session by HMAC and usable once (through the replay guard,
so a store reset does not make a used one new), so a forged form and a replayed one are both
refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, final

from fedgate_web.once import digest, issued_at, stamped
from gateway.plugin import Identity, ReplayGuard, Store

__all__ = [
    "Signer",
    "WebSession",
    "WebSessions",
    "digest",
    "identity_from_json",
    "identity_to_json",
]

_MAX_COOKIE = 200
_MAX_TOKEN = 200


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@final
class Signer:
    """HMAC-SHA256 signatures with one key per purpose, all derived from the cookie secret."""

    def __init__(self, secret: str) -> None:
        self._root = hashlib.sha256(b"fedgate-web\x00" + secret.encode()).digest()

    def mac(self, purpose: str, value: str) -> str:
        """The MAC of ``value`` for ``purpose`` (purposes never share signatures)."""
        return _b64(hmac.new(self._root, f"{purpose}\x00{value}".encode(), hashlib.sha256).digest())

    def sign(self, purpose: str, value: str) -> str:
        """``value.MAC``; ``value`` must not contain a dot."""
        return f"{value}.{self.mac(purpose, value)}"

    def unsign(self, purpose: str, signed: str | None, max_len: int = _MAX_COOKIE) -> str | None:
        """The value of a ``value.MAC`` string whose MAC is right, else ``None``."""
        if not signed or len(signed) > max_len:
            return None
        value, dot, mac = signed.rpartition(".")
        if not dot or not value:
            return None
        return value if hmac.compare_digest(mac, self.mac(purpose, value)) else None


@dataclass(frozen=True, slots=True)
class WebSession:
    """One signed-in browser (or the CLI sign-in it approved).

    ``credentials`` is ``(access key id, sealed session token)`` of the last credentials issued:
    the secret key is inside the sealed token, so the store never holds it in the clear. ``ref`` (a
    hash of ``id``) is how grants in the store refer to the session; ``id`` is empty when the
    session was loaded by ``ref`` (CLI grants), so such a session cannot mint form tokens.
    """

    id: str
    ref: str
    identity: Identity
    login: str
    created: float
    expires: float
    role_arn: str | None = None
    credentials: tuple[str, str] | None = None
    saml: dict[str, str] = field(default_factory=dict)


def identity_to_json(identity: Identity) -> dict[str, Any]:
    """``identity`` as JSON-ready data (it holds verified claims, never the token itself)."""
    return asdict(identity)


def identity_from_json(data: dict[str, Any]) -> Identity:
    """The inverse of :func:`identity_to_json`."""
    data = dict(data)
    data["roles"] = tuple((str(r), str(p)) for r, p in data.get("roles", ()))
    data["transitive_tag_keys"] = tuple(data.get("transitive_tag_keys", ()))
    return Identity(**data)


@final
class WebSessions:
    """Creates, loads and ends sessions; issues and checks their form tokens."""

    def __init__(
        self,
        store: Store,
        signer: Signer,
        *,
        lifetime: int,
        clock: Callable[[], float],
        replay: ReplayGuard,
    ) -> None:
        self._store = store
        self._replay = replay
        self._signer = signer
        self._lifetime = lifetime
        self._clock = clock

    @staticmethod
    def _key(ref: str) -> str:
        return f"web:session:{ref}"

    async def create(
        self, identity: Identity, login: str, *, saml: dict[str, str] | None = None
    ) -> WebSession:
        """A new session with a fresh id (never one the browser brought: no fixation)."""
        now = self._clock()
        expires = now + self._lifetime
        if identity.session_not_on_or_after is not None:
            expires = min(expires, identity.session_not_on_or_after)
        session_id = secrets.token_urlsafe(32)
        session = WebSession(
            id=session_id,
            ref=digest(session_id),
            identity=identity,
            login=login,
            created=now,
            expires=expires,
            saml=dict(saml or {}),
        )
        await self.save(session)
        return session

    async def save(self, session: WebSession) -> None:
        """Write ``session``; it expires from the store when the sign-in does."""
        ttl = session.expires - self._clock()
        if ttl <= 0:
            await self._store.delete(self._key(session.ref))
            return
        record = {
            "identity": identity_to_json(session.identity),
            "login": session.login,
            "created": session.created,
            "expires": session.expires,
            "role_arn": session.role_arn,
            "credentials": list(session.credentials) if session.credentials else None,
            "saml": session.saml,
        }
        await self._store.set(self._key(session.ref), json.dumps(record).encode(), ttl=ttl)

    async def load(self, session_id: str) -> WebSession | None:
        """The live session ``session_id`` names, or ``None``."""
        found = await self.load_ref(digest(session_id))
        return replace(found, id=session_id) if found else None

    async def load_ref(self, ref: str) -> WebSession | None:
        """The live session whose ``ref`` is given (its ``id`` left empty), or ``None``."""
        raw = await self._store.get(self._key(ref))
        if raw is None:
            return None
        record = json.loads(raw)
        if record["expires"] <= self._clock():
            return None
        creds = record.get("credentials")
        return WebSession(
            id="",
            ref=ref,
            identity=identity_from_json(record["identity"]),
            login=record["login"],
            created=record["created"],
            expires=record["expires"],
            role_arn=record.get("role_arn"),
            credentials=(creds[0], creds[1]) if creds else None,
            saml=record.get("saml") or {},
        )

    async def update(self, session: WebSession, **changes: Any) -> WebSession:
        """Save ``session`` with ``changes`` applied and return it."""
        updated = replace(session, **changes)
        await self.save(updated)
        return updated

    async def delete(self, session: WebSession) -> None:
        """End the session (logout): its cookie and CLI refresh grants stop working."""
        await self.delete_ref(session.ref)

    async def delete_ref(self, ref: str) -> None:
        """End the session whose ``ref`` is given (single logout started by the IdP)."""
        await self._store.delete(self._key(ref))

    def cookie_value(self, session: WebSession) -> str:
        """The signed, opaque cookie value naming ``session``."""
        return self._signer.sign("session", session.id)

    async def from_cookie(self, value: str | None) -> WebSession | None:
        """The session a cookie names, if its signature is right and the session is live."""
        session_id = self._signer.unsign("session", value)
        return await self.load(session_id) if session_id else None

    def form_token(self, session: WebSession) -> str:
        """A CSRF token for one form: stamped with its issue time, bound to ``session``, usable once."""
        nonce = stamped(self._clock(), secrets.token_urlsafe(18))
        return f"{nonce}.{self._signer.mac('csrf', f'{session.id}|{nonce}')}"

    async def check_form_token(self, session: WebSession, token: str | None) -> bool:
        """Whether ``token`` was issued to ``session`` and is used for the first time."""
        if not token or len(token) > _MAX_TOKEN or not session.id:
            return False
        nonce, dot, mac = token.partition(".")
        if not dot or not hmac.compare_digest(mac, self._signer.mac("csrf", f"{session.id}|{nonce}")):
            return False
        issued = issued_at(nonce)  # authentic: the MAC covers it
        if issued is None:
            return False
        ttl = max(session.expires - self._clock(), 1.0)
        return await self._replay.spend(f"web:form:{digest(nonce)}", ttl, issued)
