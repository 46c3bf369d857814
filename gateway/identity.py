"""What an identity provider proves about a caller, and the protocol providers implement.

Identity-provider plugins (OIDC, SAML, third-party) turn a token or assertion into an
:class:`Identity`. Everything after that point (trust policy, credentials, audit) works on the
``Identity`` alone and never sees the raw token again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

from gateway.store.base import Store
from gateway.store.replay import ReplayGuard

__all__ = ["OIDC", "SAML", "Identity", "IdentityProvider", "ProviderContext", "ProviderKind"]

#: What kind of provider vouches for an identity. Two kinds have meaning to the core:
#: :data:`OIDC` providers take ``AssumeRoleWithWebIdentity`` tokens (routed by issuer) and
#: :data:`SAML` providers ``AssumeRoleWithSAML`` responses (routed by ARN). Any other kind is a
#: plugin's own (an LDAP bind, a Kerberos ticket...): no STS federation API routes tokens to it, its
#: plugin drives the sign-in, and its identities assume roles as web identities
#: (``sts:AssumeRoleWithWebIdentity`` in trust policies). Optional abilities beyond
#: :class:`IdentityProvider` are capabilities (:mod:`gateway.capabilities`), tested for, not implied
#: by the kind.
ProviderKind = str
OIDC: Final = "oidc"
SAML: Final = "saml"


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified identity.

    Attributes:
        provider_arn: ARN of the provider that vouched for it, e.g.
            ``arn:aws:iam::123456789012:oidc-provider/issuer.example.com/path``.
        provider_id: ``HOST/PATH`` of an OIDC issuer (the prefix of its condition keys) or the SAML
            provider name.
        kind: the vouching provider's kind (:data:`ProviderKind`: ``"oidc"``, ``"saml"`` or a
            plugin's own).
        subject: the ``sub`` claim (OIDC) or NameID (SAML).
        audience: the audience the token was accepted for: ``aud`` or ``azp`` (OIDC), the
            ``Recipient`` of the ``SubjectConfirmationData`` (SAML, as AWS reports it).
        issuer: the issuer URL.
        claims: every verified claim; values are strings, numbers, booleans or lists of them.
        condition_keys: trust-policy condition keys this identity supplies (``HOST/PATH:sub`` ...),
            already lower-cased; values are strings or lists of strings.
        session_tags: tags asserted by the provider (``https://aws.amazon.com/tags``).
        transitive_tag_keys: tag keys marked transitive by the provider.
        expires_at: epoch seconds after which the provider's proof is no longer valid.
        issued_at: epoch seconds at which the provider issued the token, when known.
        roles: (role ARN, provider ARN) pairs the provider grants (SAML's Role attribute); empty
            when the provider does not restrict roles (OIDC).
        session_name: the session name the provider asserts (SAML ``RoleSessionName``).
        max_session_duration: the longest session the provider allows, in seconds (SAML
            ``SessionDuration``), or ``None``.
        session_not_on_or_after: epoch seconds the provider's session ends (SAML
            ``SessionNotOnOrAfter``), or ``None``.
        source_identity: the source identity the provider asserts, or ``None``.
        mfa_authenticated: whether the provider reports multi-factor authentication.
        subject_type: SAML ``SubjectType`` (``persistent``, ``transient`` or the NameID format).
        name_qualifier: AWS's NameQualifier for SAML subjects, or ``None``.
    """

    provider_arn: str
    provider_id: str
    kind: ProviderKind
    subject: str
    audience: str
    issuer: str
    claims: Mapping[str, Any] = field(default_factory=dict)
    condition_keys: Mapping[str, str | list[str]] = field(default_factory=dict)
    session_tags: Mapping[str, str] = field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()
    expires_at: float | None = None
    issued_at: float | None = None
    roles: tuple[tuple[str, str], ...] = ()
    session_name: str | None = None
    max_session_duration: int | None = None
    session_not_on_or_after: float | None = None
    source_identity: str | None = None
    mfa_authenticated: bool = False
    subject_type: str | None = None
    name_qualifier: str | None = None


@runtime_checkable
class IdentityProvider(Protocol):
    """An identity provider registered by a plugin.

    ``authenticate`` is asynchronous because it may need I/O (fetching a JWKS, checking a replay
    cache); it must raise a :class:`gateway.errors.ServiceError` (``InvalidIdentityToken``,
    ``ExpiredToken``, ``IDPCommunicationError`` ...) on any failure and never return a partially
    verified identity.
    """

    @property
    def arn(self) -> str:
        """The provider's ARN, as named in trust policies' ``Principal.Federated``."""
        ...

    @property
    def kind(self) -> ProviderKind:
        """``"oidc"``, ``"saml"`` (which federation API accepts its tokens) or the plugin's own kind."""
        ...

    @property
    def issuer(self) -> str:
        """The issuer its tokens name (OIDC ``iss``, SAML ``Issuer``); STS routes tokens by it."""
        ...

    async def authenticate(self, token: str) -> Identity:
        """Verify ``token`` and return the identity it proves."""
        ...

    async def start(self) -> None:
        """Acquire resources (HTTP sessions, background refresh). Called once at app start-up."""
        ...

    async def close(self) -> None:
        """Release resources. Called once at shutdown."""
        ...


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """What the host hands a plugin when it builds an identity provider.

    Attributes:
        account_id: the 12-digit account that owns the provider (it appears in the provider ARN).
        store: the shared store (document cache, rate limits).
        leeway: allowed clock skew in seconds for time-based claims.
        replay: the one-time-use guard over ``store`` (assertions, codes); the host shares one per
            store, and one is made for ``store`` when none is given.
        report_refresh: call ``report_refresh(provider_name, document, ok)`` after each attempt to
            load a provider's signing document (``document``: ``jwks``, ``metadata``); the host
            counts them in its metrics. Cheap and never raises; ignores everything by default.
    """

    account_id: str
    store: Store
    leeway: float = 60.0
    replay: ReplayGuard = None  # type: ignore[assignment]  # None only until __post_init__
    report_refresh: Callable[[str, str, bool], None] = field(default=lambda provider, document, ok: None)

    def __post_init__(self) -> None:
        if self.replay is None:
            object.__setattr__(self, "replay", ReplayGuard(self.store))
