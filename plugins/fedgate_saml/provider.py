"""The SAML identity provider: a base64 SAML response in, a verified :class:`Identity` out."""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import final

from fedgate_saml.assertion import VerifiedAssertion, check_response
from fedgate_saml.attributes import aws_claims, condition_keys, name_qualifier, subject_type
from fedgate_saml.config import SAMLProviderSettings
from fedgate_saml.messages import SPKeys
from fedgate_saml.metadata import IdPMetadata, MetadataSource
from fedgate_saml.service_provider import ServiceProvider
from gateway.errors import InvalidIdentityToken
from gateway.plugin import IamProviderView, Identity, ProviderContext, ProviderKind, saml_provider_arn

__all__ = [
    "MAX_LEEWAY",
    "SAMLProvider",
    "decode_assertion",
]

#: Upper bound on the clock-skew leeway, whatever the host asks for.
MAX_LEEWAY = 300.0


def decode_assertion(token: str, max_chars: int) -> bytes:
    """The XML of a base64 ``SAMLAssertion``, size-checked before decoding."""
    if len(token) > max_chars:
        raise InvalidIdentityToken(f"SAML assertion is larger than {max_chars} characters")
    compact = "".join(token.split())  # IdPs often wrap base64 at 64 or 76 columns
    if not compact or not compact.isascii():
        raise InvalidIdentityToken("SAML assertion is not base64")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidIdentityToken("SAML assertion is not base64") from None


@final
class SAMLProvider:
    """Verifies SAML responses of one IdP (implements ``IdentityProvider`` and the
    ``SAMLServiceProviderCapable`` capability, through which fedgate is the IdP's SP).

    Signature checking runs in process (signxml) on the event loop: about a millisecond, cheaper
    than a hop to a thread. ``clock`` (wall time) and ``monotonic`` (metadata age) are injectable
    so tests can move time without waiting.
    """

    def __init__(
        self,
        settings: SAMLProviderSettings,
        context: ProviderContext,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._context = context
        self._clock = clock
        self._leeway = min(max(context.leeway, 0.0), MAX_LEEWAY)
        self._arn = saml_provider_arn(context.account_id, settings.name)
        report = context.report_refresh
        self._metadata = MetadataSource(
            settings, monotonic=monotonic, report=lambda ok: report(settings.name, "metadata", ok)
        )
        self._audiences = frozenset(settings.audiences)
        self._recipients = frozenset(settings.recipients)
        self._mfa = frozenset(settings.mfa_authn_context_classes)
        self._qualifiers: dict[str, str] = {}

    @property
    def arn(self) -> str:
        """``arn:aws:iam::ACCOUNT:saml-provider/NAME``."""
        return self._arn

    @property
    def kind(self) -> ProviderKind:
        """Always ``"saml"``."""
        return "saml"

    @property
    def issuer(self) -> str:
        """The IdP's entityID from its metadata (empty until the metadata was loaded once)."""
        current = self._metadata.cached
        return current.entity_id if current is not None else ""

    @property
    def name(self) -> str:
        """The provider's name (last part of its ARN)."""
        return self._settings.name

    @property
    def settings(self) -> SAMLProviderSettings:
        """The validated settings this provider was built from."""
        return self._settings

    def iam_view(self) -> IamProviderView:
        """The metadata document in force, as the IAM API shows it (the
        :class:`~gateway.plugin.IamListed` capability)."""
        return IamProviderView(metadata_document=self._metadata.document.decode("utf-8", "replace"))

    @property
    def metadata_loads(self) -> int:
        """How many times the metadata was (re)loaded successfully."""
        return self._metadata.loads

    async def start(self) -> None:
        """Load the metadata and start refreshing it in the background."""
        await self._metadata.start()

    async def close(self) -> None:
        """Stop the refresh task and close the HTTP session."""
        await self._metadata.close()

    async def reload_metadata(self) -> None:
        """Reload the metadata now (an operator's "rotate now"); raises ``IDPCommunicationError``."""
        await self._metadata.reload()

    async def probe(self) -> None:
        """Load the metadata now (the :class:`~gateway.plugin.Probeable` capability)."""
        await self._metadata.current()

    async def metadata(self) -> IdPMetadata:
        """The IdP's metadata in force (loaded now if needed); raises ``IDPCommunicationError``."""
        return await self._metadata.current()

    async def authenticate(self, token: str) -> Identity:
        """Verify a base64 SAML response and return the identity it proves.

        Raises ``InvalidIdentityToken``, ``ExpiredToken``, ``IDPRejectedClaim`` or
        ``IDPCommunicationError`` (metadata unavailable), ``ServiceUnavailable`` (the store). The
        assertion's ID is spent in the shared store (through the replay guard, so a store reset does
        not make it new again) only after every check passed, so a rejected response cannot burn a
        valid one.
        """
        identity, _ = await self._authenticate(
            token,
            audiences=self._audiences,
            recipients=self._recipients,
            allow_in_response_to=self._settings.allow_in_response_to,
            answers=None,
        )
        return identity

    async def authenticate_for_sp(
        self,
        token: str,
        *,
        audience: str,
        recipient: str,
        answers: Callable[[str | None], Awaitable[None]],
    ) -> tuple[Identity, VerifiedAssertion]:
        """Verify a response posted to fedgate's own ACS (browser sign-in, fedgate the SP).

        Every check of :meth:`authenticate` applies, but with fedgate's SP entity id as the only
        ``audience`` and its ACS URL as the only ``recipient``; ``InResponseTo`` is allowed and
        handed (``None`` when unsolicited) to ``answers``, awaited after the signature and protocol
        checks and before the assertion is spent: it raises to refuse the response. Returns the
        identity and the verified assertion (for ``NameID`` and ``SessionIndex``).
        """
        return await self._authenticate(
            token,
            audiences=frozenset({audience}),
            recipients=frozenset({recipient}),
            allow_in_response_to=True,
            answers=answers,
        )

    def service_provider(
        self,
        *,
        entity_id: str,
        acs_url: str,
        slo_url: str | None,
        signing_key_pem: str,
        signing_certificate_pem: str,
        sign_authn_requests: bool = True,
    ) -> ServiceProvider:
        """fedgate as the SP of this IdP (the :class:`~gateway.capabilities.SAMLServiceProviderCapable`
        capability); ``ValueError`` (naming no secret) for an unusable key or certificate."""
        return ServiceProvider(
            self,
            entity_id=entity_id,
            acs_url=acs_url,
            slo_url=slo_url,
            keys=SPKeys.from_pem(signing_key_pem, signing_certificate_pem),
            sign_authn_requests=sign_authn_requests,
            clock=self._clock,
        )

    async def _authenticate(
        self,
        token: str,
        *,
        audiences: frozenset[str],
        recipients: frozenset[str],
        allow_in_response_to: bool,
        answers: Callable[[str | None], Awaitable[None]] | None,
    ) -> tuple[Identity, VerifiedAssertion]:
        settings = self._settings
        document = decode_assertion(token, settings.max_assertion_chars)
        metadata = await self._metadata.current()
        now = self._clock()
        verified = check_response(
            document,
            entity_id=metadata.entity_id,
            certs=metadata.certs,
            audiences=audiences,
            recipients=recipients,
            allow_sha1=settings.allow_sha1,
            require_signed_assertion=settings.require_signed_assertion,
            allow_in_response_to=allow_in_response_to,
            check_validity=settings.check_certificate_validity,
            now=now,
            leeway=self._leeway,
            max_age=settings.max_assertion_age_seconds,
        )
        claims = aws_claims(verified.attributes)
        qualifier = self._qualifier(metadata.entity_id)
        if answers is not None:
            await answers(verified.in_response_to)
        # Keyed by IdP and assertion ID, not by provider: two providers trusting one IdP share the spend.
        key_id = hashlib.sha256(f"{metadata.entity_id}\n{verified.assertion_id}".encode()).hexdigest()
        ttl = max(verified.expires_at + self._leeway - now, 1.0)
        # The IdP's IssueInstant is the issue time; its clock may run up to the leeway ahead of ours.
        if not await self._context.replay.spend(
            f"replay:saml:{key_id}", ttl, verified.issued_at, skew=self._leeway
        ):
            raise InvalidIdentityToken(
                "SAML assertion was already used, or was issued before fedgate's replay cache was "
                "last reset (each assertion is accepted once)"
            )
        identity = Identity(
            provider_arn=self._arn,
            provider_id=settings.name,
            kind="saml",
            subject=verified.name_id,
            # AWS reports the SubjectConfirmationData Recipient as the Audience (and as saml:aud),
            # not the AudienceRestriction value that was matched.
            audience=verified.recipient,
            issuer=metadata.entity_id,
            claims={
                name: values[0] if len(values) == 1 else list(values)
                for name, values in verified.attributes.items()
            },
            condition_keys=condition_keys(
                verified,
                account_id=self._context.account_id,
                provider_name=settings.name,
                qualifier=qualifier,
            ),
            session_tags=claims.session_tags,
            transitive_tag_keys=claims.transitive_tag_keys,
            expires_at=verified.expires_at,
            issued_at=verified.issued_at,
            roles=claims.roles,
            session_name=claims.session_name,
            max_session_duration=claims.max_session_duration,
            session_not_on_or_after=verified.session_not_on_or_after,
            source_identity=claims.source_identity,
            mfa_authenticated=any(c in self._mfa for c in verified.authn_context_classes),
            subject_type=subject_type(verified.name_id_format),
            name_qualifier=qualifier,
        )
        return identity, verified

    def _qualifier(self, entity_id: str) -> str:
        cached = self._qualifiers.get(entity_id)
        if cached is None:
            cached = name_qualifier(entity_id, self._context.account_id, self._settings.name)
            self._qualifiers = {entity_id: cached}
        return cached
