"""The OIDC identity provider: a web-identity token in, a verified :class:`Identity` out."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import final

from fedgate_oidc.claims import condition_keys, flat_claims, session_tags
from fedgate_oidc.config import OIDCProviderSettings, provider_id
from fedgate_oidc.jwks import KeyFetcher
from fedgate_oidc.token import (
    KeyNotFound,
    SigningKey,
    UnverifiedToken,
    check_claims,
    decode_claims,
    parse_token,
    select_key,
    verify_signature,
)
from gateway.errors import InvalidIdentityToken
from gateway.plugin import IamProviderView, Identity, ProviderContext, ProviderKind, oidc_provider_arn

__all__ = ["MAX_LEEWAY", "OIDCProvider"]

#: Upper bound on the clock-skew leeway, whatever the host asks for.
MAX_LEEWAY = 300.0


@final
class OIDCProvider:
    """Verifies ID tokens of one OpenID Connect issuer (implements ``IdentityProvider``).

    ``clock`` (wall time, for token times) and ``monotonic`` (for cache ages) are injectable so
    tests can move time without waiting.
    """

    def __init__(
        self,
        settings: OIDCProviderSettings,
        context: ProviderContext,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._leeway = min(max(context.leeway, 0.0), MAX_LEEWAY)
        self._id = provider_id(settings.issuer)
        self._arn = oidc_provider_arn(context.account_id, self._id)
        report = context.report_refresh
        self._keys = KeyFetcher(
            settings,
            store=context.store,
            clock=clock,
            monotonic=monotonic,
            report=lambda ok: report(settings.issuer, "jwks", ok),
        )

    @property
    def arn(self) -> str:
        """``arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH``."""
        return self._arn

    @property
    def kind(self) -> ProviderKind:
        """Always ``"oidc"``."""
        return "oidc"

    @property
    def issuer(self) -> str:
        """The issuer URL tokens must name in ``iss``."""
        return self._settings.issuer

    @property
    def provider_id(self) -> str:
        """``HOST/PATH`` of the issuer: the prefix of this provider's condition keys."""
        return self._id

    @property
    def settings(self) -> OIDCProviderSettings:
        """The validated settings this provider was built from."""
        return self._settings

    def iam_view(self) -> IamProviderView:
        """Its URL and client ids (the audiences it accepts), as the IAM API shows them (the
        :class:`~gateway.plugin.IamListed` capability)."""
        return IamProviderView(url=self._id, client_ids=tuple(self._settings.audiences))

    @property
    def tls(self) -> ssl.SSLContext | None:
        """TLS context for requests to the issuer: ``ca_file`` only, or ``None`` (system trust)."""
        return self._keys.tls

    @property
    def jwks_fetches(self) -> int:
        """How many times the JWKS was fetched over the network."""
        return self._keys.fetches

    async def start(self) -> None:
        """Open the HTTP session used for discovery and JWKS (fetched lazily, on first use)."""
        await self._keys.start()

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._keys.close()

    async def probe(self) -> None:
        """Fetch discovery and the JWKS now (the :class:`~gateway.plugin.Probeable` capability)."""
        await self._keys.current()

    async def authenticate(self, token: str) -> Identity:
        """Verify ``token`` and return the identity it proves.

        Raises ``InvalidIdentityToken``, ``ExpiredToken`` or ``IDPCommunicationError``.
        """
        settings = self._settings
        parsed = parse_token(token, max_bytes=settings.max_token_bytes, algorithms=settings.algorithms)
        key = await self._key_for(parsed)
        verify_signature(parsed, key)
        claims = decode_claims(parsed)
        audience = check_claims(
            claims,
            issuer=settings.issuer,
            audiences=settings.audiences,
            now=self._clock(),
            leeway=self._leeway,
            required=settings.require_claims,
        )
        tags, transitive = session_tags(claims)
        iat = claims.get("iat")
        flat = flat_claims(claims)  # condition keys come from the flat claims alone: filtered once
        return Identity(
            provider_arn=self._arn,
            provider_id=self._id,
            kind="oidc",
            subject=claims["sub"],
            audience=audience,
            issuer=settings.issuer,
            claims=flat,
            condition_keys=condition_keys(flat, self._id, audience),
            session_tags=tags,
            transitive_tag_keys=transitive,
            expires_at=float(claims["exp"]),
            issued_at=float(iat) if isinstance(iat, int | float) else None,
        )

    async def _key_for(self, token: UnverifiedToken) -> SigningKey:
        keys = await self._keys.current()
        try:
            return select_key(token, keys)
        except KeyNotFound:
            pass
        # Keys may have rotated since they were cached: look once more, if not done very recently.
        newer = await self._keys.refetch(keys)
        if newer is not None:
            try:
                return select_key(token, newer)
            except KeyNotFound:
                pass
        raise InvalidIdentityToken("no key of the issuer matches the token's kid and alg")
