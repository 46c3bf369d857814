"""fedgate as the SAML service provider of one IdP: the SP capability of :class:`SAMLProvider`.

Implements :class:`gateway.capabilities.SAMLServiceProvider`: SP metadata, AuthnRequests (signed,
HTTP-Redirect), the response at the ACS (verified by the provider with this SP's entity id as the
only audience and its ACS as the only recipient), and single logout: signed LogoutRequests out,
and LogoutRequests and LogoutResponses in, each verified (signature over the octets received,
issuer, destination, freshness) before the caller acts on it. The sign-in pages
(``fedgate_web``) keep the web flow: transactions, cookies and sessions.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Final, Protocol, final

from fedgate_saml.assertion import VerifiedAssertion
from fedgate_saml.config import SAMLProviderSettings
from fedgate_saml.constants import STATUS_SUCCESS
from fedgate_saml.messages import (
    SPKeys,
    authn_request,
    logout_request,
    logout_response,
    new_request_id,
    redirect_query,
    sp_metadata,
)
from fedgate_saml.metadata import IdPMetadata
from fedgate_saml.redirect import CLOCK_SKEW, MAX_AGE, parse_redirect, read_logout, refuse
from gateway.errors import ServiceError
from gateway.plugin import Identity, SAMLLogoutMessage, SAMLSignIn, SAMLSubject

__all__ = ["IdP", "ServiceProvider"]

#: Room for the other form fields around a SAMLResponse posted to the ACS.
_FORM_OVERHEAD: Final = 4096


class IdP(Protocol):
    """What the SP needs of the provider that trusts the IdP (:class:`~fedgate_saml.SAMLProvider`)."""

    @property
    def settings(self) -> SAMLProviderSettings:
        """The provider's settings."""
        ...

    async def metadata(self) -> IdPMetadata:
        """The IdP's metadata in force."""
        ...

    async def authenticate_for_sp(
        self,
        token: str,
        *,
        audience: str,
        recipient: str,
        answers: Callable[[str | None], Awaitable[None]],
    ) -> tuple[Identity, VerifiedAssertion]:
        """Verify a response posted to the ACS."""
        ...


def _url(endpoint: str, query: str) -> str:
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


@final
class ServiceProvider:
    """One sign-in option's SP, built by :meth:`SAMLProvider.service_provider`."""

    def __init__(
        self,
        provider: IdP,
        *,
        entity_id: str,
        acs_url: str,
        slo_url: str | None,
        keys: SPKeys,
        sign_authn_requests: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._provider = provider
        self._entity_id = entity_id
        self.acs_url = acs_url
        self.slo_url = slo_url
        self._keys = keys
        self._sign_authn_requests = sign_authn_requests
        self._clock = clock

    @property
    def entity_id(self) -> str:
        """The SP's entity id."""
        return self._entity_id

    @property
    def max_response_chars(self) -> int:
        """The largest ACS form body worth reading: the provider's assertion limit and the form."""
        return self._provider.settings.max_assertion_chars + _FORM_OVERHEAD

    def metadata(self) -> bytes:
        """The SP metadata: ACS, single logout when enabled, NameID formats, signing certificate."""
        return sp_metadata(
            entity_id=self._entity_id,
            acs_url=self.acs_url,
            keys=self._keys,
            authn_requests_signed=self._sign_authn_requests,
            want_assertions_signed=self._provider.settings.require_signed_assertion,
            slo_url=self.slo_url,
        )

    async def login_url(self, *, request_id: str, relay_state: str) -> str | None:
        """The IdP's sign-on URL carrying a new AuthnRequest, or ``None`` if it has no redirect one."""
        metadata = await self._provider.metadata()
        if metadata.sso_redirect is None:
            return None
        xml = authn_request(
            request_id=request_id,
            now=self._clock(),
            destination=metadata.sso_redirect,
            acs_url=self.acs_url,
            sp_entity_id=self._entity_id,
        )
        keys = self._keys if self._sign_authn_requests else None
        return _url(metadata.sso_redirect, redirect_query(xml, relay_state, keys))

    async def accept(self, response: str, *, answers: Callable[[str | None], Awaitable[None]]) -> SAMLSignIn:
        """Verify a response posted to the ACS (see :meth:`SAMLProvider.authenticate_for_sp`)."""
        identity, verified = await self._provider.authenticate_for_sp(
            response, audience=self._entity_id, recipient=self.acs_url, answers=answers
        )
        subject = SAMLSubject(
            name_id=verified.name_id,
            name_id_format=verified.name_id_format or "",
            name_qualifier=verified.name_qualifier or "",
            session_index=verified.session_index or "",
        )
        return SAMLSignIn(identity, subject)

    async def logout_url(self, subject: SAMLSubject, *, request_id: str, relay_state: str) -> str | None:
        """The IdP's single-logout URL carrying a signed LogoutRequest for ``subject``, or ``None``."""
        if self.slo_url is None:
            return None
        try:
            metadata = await self._provider.metadata()
        except ServiceError:
            return None  # the session has ended at fedgate; the IdP's is left to expire
        if metadata.slo_redirect is None:
            return None
        xml = logout_request(
            request_id=request_id,
            now=self._clock(),
            destination=metadata.slo_redirect,
            sp_entity_id=self._entity_id,
            name_id=subject.name_id,
            name_id_format=subject.name_id_format,
            name_qualifier=subject.name_qualifier,
            session_index=subject.session_index,
        )
        return _url(metadata.slo_redirect, redirect_query(xml, relay_state, self._keys))

    async def read_logout(self, raw_query: str, *, allow_unsigned_responses: bool) -> SAMLLogoutMessage:
        """Verify a message received at the SLO endpoint; ``InvalidIdentityToken`` says why not.

        Signed by a metadata certificate (a LogoutResponse may be unsigned only when
        ``allow_unsigned_responses``), issued by the IdP, addressed to this SP's SLO endpoint when
        signed, issued within the last ten minutes, and (a LogoutRequest) not expired.
        """
        received = parse_redirect(raw_query)
        metadata = await self._provider.metadata()
        settings = self._provider.settings
        now = self._clock()
        unsigned_ok = received.parameter == "SAMLResponse" and allow_unsigned_responses
        if received.signature is not None or not unsigned_ok:
            received.verify(
                metadata.certs,
                allow_sha1=settings.allow_sha1,
                now=datetime.fromtimestamp(now, UTC),
                check_validity=settings.check_certificate_validity,
            )
        message = read_logout(received.inflate(), received.parameter)
        if not hmac.compare_digest(message.issuer.encode(), metadata.entity_id.encode()):
            raise refuse("it was not issued by this identity provider")
        # Bindings 3.4.5.2: a signed message must name where it was sent.
        required = received.signature is not None
        if (message.destination is None and required) or message.destination not in (None, self.slo_url):
            raise refuse("it is addressed to another endpoint")
        if message.issued > now + CLOCK_SKEW or message.issued < now - MAX_AGE:
            raise refuse("it was issued too long ago or in the future")
        if received.parameter == "SAMLResponse":
            return SAMLLogoutMessage(
                kind="response",
                id=message.id,
                relay_state=received.relay_state,
                issued=message.issued,
                skew=CLOCK_SKEW,
                in_response_to=message.in_response_to,
                success=message.status == STATUS_SUCCESS,
            )
        if message.not_on_or_after is not None and message.not_on_or_after <= now - CLOCK_SKEW:
            raise refuse("it has expired")
        return SAMLLogoutMessage(
            kind="request",
            id=message.id,
            relay_state=received.relay_state,
            issued=message.issued,
            skew=CLOCK_SKEW,
            name_id=message.name_id,
            session_indexes=message.session_indexes,
        )

    async def logout_response_url(self, *, in_response_to: str, relay_state: str) -> str | None:
        """The IdP's single-logout URL carrying a signed, successful LogoutResponse, or ``None``."""
        metadata = await self._provider.metadata()
        if metadata.slo_redirect is None:
            return None
        xml = logout_response(
            response_id=new_request_id(),
            now=self._clock(),
            destination=metadata.slo_redirect,
            issuer=self._entity_id,
            in_response_to=in_response_to,
            status=STATUS_SUCCESS,
        )
        query = redirect_query(xml, relay_state, self._keys, parameter="SAMLResponse")
        return _url(metadata.slo_redirect, query)
