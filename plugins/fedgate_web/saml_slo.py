"""SAML single logout for browser sign-in (HTTP-Redirect binding), fedgate the service provider.

SP-initiated: sign-out ends the fedgate session, stores a fresh LogoutRequest ID (with a random
RelayState) once for ten minutes and sends the browser to the IdP's ``SingleLogoutService`` with
the request, signed. The IdP's LogoutResponse comes back to ``/sso/saml/NAME/slo``.

IdP-initiated: a signed LogoutRequest arrives at ``/sso/saml/NAME/slo``; every fedgate session of
that subject at this IdP (and SessionIndex, when given) ends, found through an index kept at
sign-in, and the browser goes back to the IdP with a signed LogoutResponse.

Inbound messages are distrusted until proven: the query is size-limited and split by hand (a
repeated parameter is refused, so the signed octets and the values read are the same), the
signature is checked over the exact octets received with the IdP's metadata certificates only,
then the DEFLATE stream is inflated with a cap and parsed by the SAML plugin's hardened parser.
Nothing is spent or ended before all of that passed, so a refused message changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, final
from urllib.parse import unquote_plus

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from fedgate_saml import SAMLProvider
from fedgate_saml.xmlsig import TrustedCert, parse_xml
from fedgate_web.errors import LoginError
from fedgate_web.once import digest, spend
from fedgate_web.saml_xml import (
    SAML,
    SAMLP,
    STATUS_SUCCESS,
    SPKeys,
    logout_request,
    logout_response,
    new_request_id,
    redirect_query,
    stamped_id,
)
from fedgate_web.sessions import WebSession
from gateway.errors import ServiceError
from gateway.store.base import Store
from gateway.store.replay import ReplayGuard

__all__ = ["LogoutMessage", "RedirectMessage", "SingleLogout", "parse_redirect", "read_logout"]

#: How long the IdP may take to answer a LogoutRequest; also the replay window of its requests.
TRANSACTION_SECONDS: Final = 600
_MAX_QUERY: Final = 16_384
_MAX_XML: Final = 65_536
_MAX_ID: Final = 256
_MAX_RELAY_STATE: Final = 80
_CLOCK_SKEW: Final = 180
_PARAMETERS: Final = frozenset({"SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature"})
_ALGORITHMS: Final[dict[str, tuple[str, type[hashes.HashAlgorithm]]]] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": ("rsa", hashes.SHA256),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": ("rsa", hashes.SHA384),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": ("rsa", hashes.SHA512),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": ("ec", hashes.SHA256),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": ("ec", hashes.SHA384),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": ("ec", hashes.SHA512),
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": ("rsa", hashes.SHA1),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1": ("ec", hashes.SHA1),
}


def _refuse(message: str) -> LoginError:
    return LoginError(f"The single-logout message was refused: {message}.", status=403)


@dataclass(frozen=True, slots=True)
class RedirectMessage:
    """A SAML message received with the HTTP-Redirect binding, not yet verified."""

    parameter: str
    """``SAMLRequest`` or ``SAMLResponse``."""
    encoded: str
    relay_state: str
    sig_alg: str | None
    signature: bytes | None
    signed_octets: bytes
    """``SAMLRequest=...&RelayState=...&SigAlg=...`` exactly as received: what the signature covers."""

    def verify(
        self, certs: Sequence[TrustedCert], *, allow_sha1: bool, now: datetime, check_validity: bool
    ) -> None:
        """Check the signature with one of ``certs`` (the IdP's metadata); raise :class:`LoginError`."""
        if self.signature is None or self.sig_alg is None:
            raise _refuse("it is not signed")
        algorithm = _ALGORITHMS.get(self.sig_alg)
        if algorithm is None:
            raise _refuse("its signature algorithm is not allowed")
        kind, digest_type = algorithm
        if digest_type is hashes.SHA1 and not allow_sha1:
            raise _refuse("it is signed with SHA-1, which this provider does not allow")
        for trusted in certs:
            if check_validity and not trusted.valid_at(now):
                continue
            if _verifies(trusted, kind, digest_type(), self.signature, self.signed_octets):
                return
        raise _refuse("its signature does not verify with the identity provider's certificates")

    def inflate(self) -> etree._Element:
        """The message's XML, inflated with a size cap and parsed without DTDs or entities."""
        try:
            deflated = base64.b64decode(self.encoded, validate=True)
            inflater = zlib.decompressobj(wbits=-15)
            xml = inflater.decompress(deflated, _MAX_XML)
        except (binascii.Error, zlib.error, ValueError):
            raise _refuse("it is not DEFLATE-encoded XML") from None
        if inflater.unconsumed_tail or not inflater.eof:
            raise _refuse("it is too large or truncated")
        try:
            return parse_xml(xml)
        except ServiceError as exc:
            raise _refuse(exc.message.removeprefix("SAML response ")) from None


def _verifies(
    trusted: TrustedCert, kind: str, digest_type: hashes.HashAlgorithm, signature: bytes, data: bytes
) -> bool:
    key = trusted.cert.public_key()
    try:
        if kind == "rsa" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), digest_type)
            return True
        if kind == "ec" and isinstance(key, ec.EllipticCurvePublicKey):
            # XML DSig carries ECDSA signatures as r || s, each the curve's size.
            size = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                return False
            r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest_type))
            return True
    except InvalidSignature:
        return False
    return False


def parse_redirect(raw_query: str) -> RedirectMessage:
    """Split an HTTP-Redirect query (as received, still URL-encoded); raise :class:`LoginError`."""
    if len(raw_query) > _MAX_QUERY:
        raise _refuse("it is too large")
    raw: dict[str, str] = {}
    for part in raw_query.split("&") if raw_query else []:
        name, _, value = part.partition("=")
        if name in _PARAMETERS:
            if name in raw:  # the signature would cover one value and the reader see another
                raise _refuse(f"{name} is repeated")
            raw[name] = value
    if ("SAMLRequest" in raw) == ("SAMLResponse" in raw):
        raise _refuse("it carries neither or both of SAMLRequest and SAMLResponse")
    parameter = "SAMLRequest" if "SAMLRequest" in raw else "SAMLResponse"
    signed = "&".join(f"{n}={raw[n]}" for n in (parameter, "RelayState", "SigAlg") if n in raw)
    signature: bytes | None = None
    if "Signature" in raw:
        try:
            signature = base64.b64decode(unquote_plus(raw["Signature"]), validate=True)
        except (binascii.Error, ValueError):
            raise _refuse("its signature is not base64") from None
    relay_state = unquote_plus(raw.get("RelayState", ""))
    if len(relay_state) > _MAX_RELAY_STATE:
        raise _refuse("its RelayState is too long")
    return RedirectMessage(
        parameter=parameter,
        encoded=unquote_plus(raw[parameter]),
        relay_state=relay_state,
        sig_alg=unquote_plus(raw["SigAlg"]) if "SigAlg" in raw else None,
        signature=signature,
        signed_octets=signed.encode("utf-8"),
    )


@dataclass(frozen=True, slots=True)
class LogoutMessage:
    """What fedgate reads from a LogoutRequest or LogoutResponse."""

    id: str
    issuer: str
    destination: str | None
    issued: float
    in_response_to: str | None = None
    status: str | None = None
    name_id: str | None = None
    session_indexes: tuple[str, ...] = ()
    not_on_or_after: float | None = None


def _instant(value: str | None, what: str) -> float:
    try:
        parsed = datetime.fromisoformat(value or "")
    except ValueError:
        raise _refuse(f"its {what} is not a time") from None
    if parsed.tzinfo is None:
        raise _refuse(f"its {what} has no time zone")
    return parsed.timestamp()


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def read_logout(root: etree._Element, parameter: str) -> LogoutMessage:
    """Read a ``LogoutRequest`` (``parameter`` ``SAMLRequest``) or ``LogoutResponse``."""
    expected = "LogoutRequest" if parameter == "SAMLRequest" else "LogoutResponse"
    if root.tag != f"{{{SAMLP}}}{expected}" or root.get("Version") != "2.0":
        raise _refuse(f"it is not a SAML 2.0 {expected}")
    message_id = root.get("ID", "")
    issuers = root.findall(f"{{{SAML}}}Issuer")
    if not message_id or len(message_id) > _MAX_ID or len(issuers) != 1:
        raise _refuse("it lacks an ID or a single Issuer")
    common = {
        "id": message_id,
        "issuer": _text(issuers[0]),
        "destination": root.get("Destination"),
        "issued": _instant(root.get("IssueInstant"), "IssueInstant"),
    }
    if expected == "LogoutResponse":
        codes = root.findall(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusCode")
        if len(codes) != 1:
            raise _refuse("it has no single status")
        return LogoutMessage(
            **common,  # type: ignore[arg-type]
            in_response_to=root.get("InResponseTo"),
            status=codes[0].get("Value", ""),
        )
    names = root.findall(f"{{{SAML}}}NameID")
    if len(names) != 1 or not _text(names[0]):
        raise _refuse("it names no single subject (an encrypted NameID is not supported)")
    after = root.get("NotOnOrAfter")
    return LogoutMessage(
        **common,  # type: ignore[arg-type]
        name_id=_text(names[0]),
        session_indexes=tuple(_text(s) for s in root.findall(f"{{{SAMLP}}}SessionIndex") if _text(s)),
        not_on_or_after=_instant(after, "NotOnOrAfter") if after is not None else None,
    )


@final
class SingleLogout:
    """Single logout of one SAML sign-in option (see the module docstring)."""

    def __init__(
        self,
        *,
        option: str,
        provider: SAMLProvider,
        entity_id: str,
        slo_url: str,
        keys: SPKeys,
        store: Store,
        replay: ReplayGuard,
        allow_unsigned_responses: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.option = option
        self.provider = provider
        self.entity_id = entity_id
        self.slo_url = slo_url
        self._keys = keys
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
        try:
            metadata = await self.provider.metadata()
        except ServiceError:
            return None  # the session has ended here; the IdP's is left to expire
        if metadata.slo_redirect is None:
            return None
        request_id, relay_state = stamped_id(self._clock()), new_request_id()[1:33]
        record = {"option": self.option, "relay": relay_state}
        await self._store.set(
            f"web:saml-slo:{digest(request_id)}", json.dumps(record).encode(), ttl=TRANSACTION_SECONDS
        )
        xml = logout_request(
            request_id=request_id,
            now=self._clock(),
            destination=metadata.slo_redirect,
            sp_entity_id=self.entity_id,
            name_id=name_id,
            name_id_format=session.saml.get("name_id_format", ""),
            name_qualifier=session.saml.get("name_qualifier", ""),
            session_index=session.saml.get("session_index", ""),
        )
        query = redirect_query(xml, relay_state, self._keys)
        return f"{metadata.slo_redirect}{'&' if '?' in metadata.slo_redirect else '?'}{query}"

    async def receive(self, raw_query: str, end_session: Callable[[str], Awaitable[None]]) -> str | None:
        """Handle a message received at the SLO endpoint; raise :class:`LoginError` to refuse it.

        A LogoutResponse answering our request with Success returns ``None`` (show the signed-out
        page). A LogoutRequest ends the subject's sessions through ``end_session(ref)`` and returns
        the IdP URL carrying the signed LogoutResponse (``None`` if the IdP has no SLO endpoint).
        """
        received = parse_redirect(raw_query)
        try:
            metadata = await self.provider.metadata()
        except ServiceError as exc:
            raise LoginError(exc.message, status=502) from None
        settings = self.provider.settings
        now = self._clock()
        unsigned_ok = received.parameter == "SAMLResponse" and self._allow_unsigned_responses
        if received.signature is not None or not unsigned_ok:
            received.verify(
                metadata.certs,
                allow_sha1=settings.allow_sha1,
                now=datetime.fromtimestamp(now, UTC),
                check_validity=settings.check_certificate_validity,
            )
        message = read_logout(received.inflate(), received.parameter)
        if not hmac.compare_digest(message.issuer.encode(), metadata.entity_id.encode()):
            raise _refuse("it was not issued by this identity provider")
        # Bindings 3.4.5.2: a signed message must name where it was sent.
        required = received.signature is not None
        if (message.destination is None and required) or message.destination not in (None, self.slo_url):
            raise _refuse("it is addressed to another endpoint")
        if message.issued > now + _CLOCK_SKEW or message.issued < now - TRANSACTION_SECONDS:
            raise _refuse("it was issued too long ago or in the future")
        if received.parameter == "SAMLResponse":
            await self._answered(message, received.relay_state)
            return None
        return await self._logout_subject(message, received.relay_state, metadata.slo_redirect, end_session)

    async def _answered(self, message: LogoutMessage, relay_state: str) -> None:
        request_id = message.in_response_to or ""
        if not request_id or len(request_id) > _MAX_ID:
            raise _refuse("it answers no request")
        key = f"web:saml-slo:{digest(request_id)}"
        raw = await self._store.get(key)
        record = json.loads(raw) if raw else None
        if record is None or record["option"] != self.option:
            raise _refuse("it answers no sign-out started here")
        if not hmac.compare_digest(relay_state.encode(), str(record["relay"]).encode()):
            raise _refuse("it does not carry this sign-out's RelayState")
        if not await spend(
            self._replay, "web:saml-slo-used:", request_id.removeprefix("_"), TRANSACTION_SECONDS
        ):
            raise _refuse("it was already used")
        await self._store.delete(key)
        if message.status != STATUS_SUCCESS:
            raise LoginError(
                "You are signed out of fedgate, but the identity provider did not confirm signing you "
                "out there. Close the browser to end that sign-in.",
                status=502,
            )

    async def _logout_subject(
        self,
        message: LogoutMessage,
        relay_state: str,
        slo_redirect: str | None,
        end_session: Callable[[str], Awaitable[None]],
    ) -> str | None:
        now = self._clock()
        if message.not_on_or_after is not None and message.not_on_or_after <= now - _CLOCK_SKEW:
            raise _refuse("it has expired")
        # The IdP's IssueInstant, checked above to be at most _CLOCK_SKEW ahead of ours.
        seen = f"web:saml-slo-seen:{digest(message.id)}"
        if not await self._replay.spend(seen, TRANSACTION_SECONDS, message.issued, skew=_CLOCK_SKEW):
            raise _refuse("it was already used (or issued before fedgate's replay cache was last reset)")
        assert message.name_id is not None
        index_keys = [self._index_key(message.name_id, "=" + s) for s in message.session_indexes] or [
            self._index_key(message.name_id, "*")
        ]
        for key in index_keys:
            for ref in await self._store.members(key):
                await end_session(ref)
            await self._store.delete(key)
        if slo_redirect is None:
            return None
        xml = logout_response(
            response_id=new_request_id(),
            now=now,
            destination=slo_redirect,
            issuer=self.entity_id,
            in_response_to=message.id,
            status=STATUS_SUCCESS,
        )
        query = redirect_query(xml, relay_state, self._keys, parameter="SAMLResponse")
        return f"{slo_redirect}{'&' if '?' in slo_redirect else '?'}{query}"
