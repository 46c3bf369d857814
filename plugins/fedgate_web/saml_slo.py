"""SAML single logout for browser sign-in (HTTP-Redirect binding): the web flow around the messages.

SP-initiated: sign-out ends the fedgate session, stores a fresh LogoutRequest ID (with a random
RelayState) once for ten minutes and sends the browser to the IdP's ``SingleLogoutService`` with
the request, signed. The IdP's LogoutResponse comes back to ``/sso/saml/NAME/slo``.

IdP-initiated: a signed LogoutRequest arrives at ``/sso/saml/NAME/slo``; every fedgate session of
that subject at this IdP (and SessionIndex, when given) ends, found through an index kept at
sign-in, and the browser goes back to the IdP with a signed LogoutResponse.

The messages are built and verified by the provider's SP capability
(:class:`gateway.capabilities.SAMLServiceProvider`: signature over the exact octets received,
issuer, destination, freshness); this module keeps the state: which sign-out was started here, the
RelayState, one use of each message, and the subject index. Nothing is spent or ended before the
message was verified, so a refused message changes nothing.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Final, final

from fedgate_web.errors import LoginError
from fedgate_web.once import digest, spend, stamped
from fedgate_web.sessions import WebSession
from gateway.errors import IDPCommunicationError, InvalidIdentityToken
from gateway.plugin import ReplayGuard, SAMLLogoutMessage, SAMLServiceProvider, SAMLSubject, Store

__all__ = ["SingleLogout", "new_id", "stamped_id"]

#: How long the IdP may take to answer a LogoutRequest; also the replay window of its requests.
TRANSACTION_SECONDS: Final = 600
_MAX_ID: Final = 256


def new_id() -> str:
    """A fresh SAML message ID: 160 random bits, starting with ``_`` (IDs are xs:ID, NCNames)."""
    return "_" + secrets.token_hex(20)


def stamped_id(now: float) -> str:
    """A fresh ID like :func:`new_id` that also carries its issue time: ``_`` and a
    :func:`~fedgate_web.once.stamped` value, for IDs spent once (requests, hand-off handles)."""
    return "_" + stamped(now, secrets.token_hex(20))


def _refuse(message: str) -> LoginError:
    return LoginError(f"The single-logout message was refused: {message}.", status=403)


@final
class SingleLogout:
    """Single logout of one SAML sign-in option (see the module docstring)."""

    def __init__(
        self,
        *,
        option: str,
        sp: SAMLServiceProvider,
        store: Store,
        replay: ReplayGuard,
        allow_unsigned_responses: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.option = option
        self._sp = sp
        self._store = store
        self._replay = replay
        self._allow_unsigned_responses = allow_unsigned_responses
        self._clock = clock

    def _index_key(self, name_id: str, session_index: str) -> str:
        return "web:saml-subject:" + digest("\x00".join((self.option, name_id, session_index)))

    async def remember(self, session: WebSession) -> None:
        """Index ``session`` by its NameID, and by NameID and SessionIndex, for IdP-initiated logout."""
        name_id = session.saml.get("name_id")
        if not name_id:
            return
        keys = [self._index_key(name_id, "*")]
        if session.saml.get("session_index"):
            keys.append(self._index_key(name_id, "=" + session.saml["session_index"]))
        # An atomic set add: two sign-ins of the same subject at once must both be indexed, or
        # an IdP-initiated logout would miss one of them.
        ttl = max(session.expires - self._clock(), 1.0)
        for key in keys:
            await self._store.add_member(key, session.ref, ttl)

    async def request_url(self, session: WebSession) -> str | None:
        """The IdP URL carrying a signed LogoutRequest for ``session``, or ``None`` when the IdP has
        no HTTP-Redirect single logout, its metadata is unavailable or the session has no NameID."""
        name_id = session.saml.get("name_id")
        if not name_id:
            return None
        subject = SAMLSubject(
            name_id=name_id,
            name_id_format=session.saml.get("name_id_format", ""),
            name_qualifier=session.saml.get("name_qualifier", ""),
            session_index=session.saml.get("session_index", ""),
        )
        request_id, relay_state = stamped_id(self._clock()), new_id()[1:33]
        url = await self._sp.logout_url(subject, request_id=request_id, relay_state=relay_state)
        if url is None:
            return None
        record = {"option": self.option, "relay": relay_state}
        await self._store.set(
            f"web:saml-slo:{digest(request_id)}", json.dumps(record).encode(), ttl=TRANSACTION_SECONDS
        )
        return url

    async def receive(self, raw_query: str, end_session: Callable[[str], Awaitable[None]]) -> str | None:
        """Handle a message received at the SLO endpoint; raise :class:`LoginError` to refuse it.

        A LogoutResponse answering our request with Success returns ``None`` (show the signed-out
        page). A LogoutRequest ends the subject's sessions through ``end_session(ref)`` and returns
        the IdP URL carrying the signed LogoutResponse (``None`` if the IdP has no SLO endpoint).
        """
        try:
            message = await self._sp.read_logout(
                raw_query, allow_unsigned_responses=self._allow_unsigned_responses
            )
        except IDPCommunicationError as exc:
            raise LoginError(exc.message, status=502) from None
        except InvalidIdentityToken as exc:
            raise LoginError(exc.message, status=403) from None
        if message.kind == "response":
            await self._answered(message)
            return None
        return await self._logout_subject(message, end_session)

    async def _answered(self, message: SAMLLogoutMessage) -> None:
        request_id = message.in_response_to or ""
        if not request_id or len(request_id) > _MAX_ID:
            raise _refuse("it answers no request")
        key = f"web:saml-slo:{digest(request_id)}"
        raw = await self._store.get(key)
        record = json.loads(raw) if raw else None
        if record is None or record["option"] != self.option:
            raise _refuse("it answers no sign-out started here")
        if not hmac.compare_digest(message.relay_state.encode(), str(record["relay"]).encode()):
            raise _refuse("it does not carry this sign-out's RelayState")
        if not await spend(
            self._replay, "web:saml-slo-used:", request_id.removeprefix("_"), TRANSACTION_SECONDS
        ):
            raise _refuse("it was already used")
        await self._store.delete(key)
        if not message.success:
            raise LoginError(
                "You are signed out of fedgate, but the identity provider did not confirm signing you "
                "out there. Close the browser to end that sign-in.",
                status=502,
            )

    async def _logout_subject(
        self, message: SAMLLogoutMessage, end_session: Callable[[str], Awaitable[None]]
    ) -> str | None:
        # The IdP's IssueInstant, which the SP checked to be at most message.skew ahead of ours.
        seen = f"web:saml-slo-seen:{digest(message.id)}"
        if not await self._replay.spend(seen, TRANSACTION_SECONDS, message.issued, skew=message.skew):
            raise _refuse("it was already used (or issued before fedgate's replay cache was last reset)")
        assert message.name_id is not None
        index_keys = [self._index_key(message.name_id, "=" + s) for s in message.session_indexes] or [
            self._index_key(message.name_id, "*")
        ]
        for key in index_keys:
            for ref in await self._store.members(key):
                await end_session(ref)
            await self._store.delete(key)
        try:
            return await self._sp.logout_response_url(
                in_response_to=message.id, relay_state=message.relay_state
            )
        except IDPCommunicationError as exc:
            raise LoginError(exc.message, status=502) from None
