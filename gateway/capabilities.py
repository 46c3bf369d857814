"""Capabilities an identity provider may offer beyond :class:`~gateway.identity.IdentityProvider`.

In the manner of Dex's connector interfaces, each optional ability is a runtime-checkable protocol
of its own, and a feature that needs one tests a provider for it (``isinstance(p, Capability)``)
rather than for its class or its kind. A third-party provider gains a feature by implementing the
protocol, with no fedgate plugin to import.

:class:`Probeable`: the provider can fetch what it needs from its issuer on demand, so
``fedgate check-config --online`` can tell whether the issuer is reachable.

:class:`IamListed`: the provider can describe itself as the IAM API shows a provider
(:class:`IamProviderView`), so a provider the configuration file declares is listed and read by
ListOpenIDConnectProviders, GetSAMLProvider and the rest beside the ones created through the API.

:class:`SAMLServiceProviderCapable`: fedgate can be the SAML service provider of the provider's IdP
(browser sign-in and single logout). The provider builds and reads every SAML message of the SP
side (AuthnRequests, SP metadata, the response at the ACS, logout requests and responses), so the
sign-in pages keep only the web flow: transactions, cookies, sessions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from gateway.identity import Identity

__all__ = [
    "IamListed",
    "IamProviderView",
    "Probeable",
    "SAMLLogoutMessage",
    "SAMLServiceProvider",
    "SAMLServiceProviderCapable",
    "SAMLSignIn",
    "SAMLSubject",
]


@dataclass(frozen=True, slots=True)
class SAMLSubject:
    """The principal of a SAML sign-in as the IdP named it: what a LogoutRequest must repeat."""

    name_id: str
    name_id_format: str = ""
    name_qualifier: str = ""
    session_index: str = ""


@dataclass(frozen=True, slots=True)
class SAMLSignIn:
    """A verified response at the ACS: the identity, and the subject to log out later."""

    identity: Identity
    subject: SAMLSubject


@dataclass(frozen=True, slots=True)
class SAMLLogoutMessage:
    """A verified LogoutRequest (``kind`` ``request``) or LogoutResponse received at the SLO endpoint.

    Verified means: signed by the IdP (unless an unsigned response was allowed), issued by it,
    addressed to this SP's SLO endpoint and fresh. Whether it answers a sign-out this SP started,
    or ends sessions this SP has, is for the caller to decide.
    """

    kind: Literal["request", "response"]
    id: str
    relay_state: str
    issued: float
    """Its ``IssueInstant``, epoch seconds (what a replay guard needs)."""
    skew: float
    """How far the IdP's clock was allowed to run ahead of ours when its freshness was checked."""
    in_response_to: str | None = None
    success: bool = False
    """Whether a LogoutResponse reports success."""
    name_id: str | None = None
    session_indexes: tuple[str, ...] = ()


class SAMLServiceProvider(Protocol):
    """fedgate as the service provider of one IdP, for one sign-in option.

    Methods raise :class:`~gateway.errors.IDPCommunicationError` when the IdP's metadata is
    unavailable and :class:`~gateway.errors.InvalidIdentityToken` (with a message safe to show)
    when a message is refused.
    """

    @property
    def entity_id(self) -> str:
        """The SP's entity id (its audience in responses)."""
        ...

    @property
    def max_response_chars(self) -> int:
        """The largest ``SAMLResponse`` the ACS should read."""
        ...

    def metadata(self) -> bytes:
        """The SP metadata document to register at the IdP (public)."""
        ...

    async def login_url(self, *, request_id: str, relay_state: str) -> str | None:
        """The IdP URL carrying a new AuthnRequest ``request_id`` (signed if configured), or
        ``None`` when the IdP has no HTTP-Redirect sign-on endpoint."""
        ...

    async def accept(self, response: str, *, answers: Callable[[str | None], Awaitable[None]]) -> SAMLSignIn:
        """Verify a response POSTed to the ACS, for this SP as audience and its ACS as recipient.

        ``answers`` is awaited with the response's ``InResponseTo`` (``None`` when unsolicited)
        after every check of the message and before its assertion is spent: it raises to refuse.
        """
        ...

    async def logout_url(self, subject: SAMLSubject, *, request_id: str, relay_state: str) -> str | None:
        """The IdP URL carrying a signed LogoutRequest for ``subject``, or ``None`` when the IdP
        has no HTTP-Redirect single logout or its metadata is unavailable."""
        ...

    async def read_logout(self, raw_query: str, *, allow_unsigned_responses: bool) -> SAMLLogoutMessage:
        """Verify a message received at the SLO endpoint (the query string exactly as received)."""
        ...

    async def logout_response_url(self, *, in_response_to: str, relay_state: str) -> str | None:
        """The IdP URL carrying a signed, successful LogoutResponse, or ``None`` if it has no SLO."""
        ...


@dataclass(frozen=True, slots=True)
class IamProviderView:
    """A provider as the IAM API shows it: an OIDC provider's ``url`` (``HOST/PATH``, the end of
    its ARN) and ``client_ids``; a SAML provider's ``metadata_document`` in force (empty until it
    was first loaded)."""

    url: str = ""
    client_ids: tuple[str, ...] = ()
    metadata_document: str = ""


@runtime_checkable
class IamListed(Protocol):
    """A provider the IAM API lists and reads (it stays read-only there: ``UnmodifiableEntity``)."""

    def iam_view(self) -> IamProviderView:
        """What GetOpenIDConnectProvider or GetSAMLProvider answers for it; cheap, no I/O."""
        ...


@runtime_checkable
class Probeable(Protocol):
    """A provider that can reach its issuer on demand (after ``start()``)."""

    async def probe(self) -> None:
        """Fetch what verification needs now (discovery and keys, metadata); raise
        :class:`~gateway.errors.IDPCommunicationError` naming what could not be fetched."""
        ...


@runtime_checkable
class SAMLServiceProviderCapable(Protocol):
    """A provider whose IdP fedgate can be the SAML service provider of."""

    @property
    def name(self) -> str:
        """The provider's name (what ``web_login.saml[].provider`` names)."""
        ...

    def service_provider(
        self,
        *,
        entity_id: str,
        acs_url: str,
        slo_url: str | None,
        signing_key_pem: str,
        signing_certificate_pem: str,
        sign_authn_requests: bool = True,
    ) -> SAMLServiceProvider:
        """fedgate as SP of this provider's IdP; ``ValueError`` (naming no secret) for unusable keys.

        ``slo_url`` is the SP's single-logout endpoint, or ``None`` for no single logout.
        """
        ...
