"""Identity assertions for ``auth: identity`` upstreams: short-lived ES256 JWTs and their JWKS.

The upstream verifies the token with the keys fedgate publishes at ``/.well-known/jwks.json``
(matched by ``kid``), checks ``aud`` is its own upstream name and ``exp`` has not passed, and
reads the principal from ``sub`` (the assumed-role session ARN) and the other claims.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, final

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from gateway.errors import ConfigError
from gateway.iam.caller import Caller

__all__ = ["IdentitySigner"]


@final
class IdentitySigner:
    """Signs identity tokens with one EC P-256 key."""

    def __init__(self, key: ECKey, *, issuer: str, ttl: int) -> None:
        self._key = key
        self.kid = key.thumbprint()
        self._issuer = issuer
        self._ttl = ttl

    @classmethod
    def from_pem(cls, pem: str, *, issuer: str, ttl: int) -> IdentitySigner:
        """A signer from a PEM private key; :class:`ConfigError` if it is not an EC P-256 key."""
        try:
            key = ECKey.import_key(pem)
        except (JoseError, ValueError, TypeError):
            raise ConfigError("proxy.identity_signing_key: not a PEM EC private key") from None
        if key.curve_name != "P-256" or not key.is_private:
            raise ConfigError("proxy.identity_signing_key: must be an EC P-256 private key")
        return cls(key, issuer=issuer, ttl=ttl)

    @classmethod
    def generate(cls, *, issuer: str, ttl: int) -> IdentitySigner:
        """A signer with a random key (tokens verifiable only while this process runs)."""
        return cls(ECKey.generate_key("P-256", private=True), issuer=issuer, ttl=ttl)

    def private_pem(self) -> str:
        """The key as PKCS#8 PEM, to hand to worker processes."""
        return self._key.as_pem(private=True).decode("ascii")

    def verify(self, token: str, *, now: float) -> Mapping[str, Any] | None:
        """The claims of ``token`` if this signer made it (ES256, this key, this issuer) and ``now``
        is within its lifetime; ``None`` otherwise. What an upstream served in the gateway's own
        process checks (the demo upstream); others use the JWKS."""
        try:
            decoded = jwt.decode(token, self._key, algorithms=["ES256"])
        except (JoseError, ValueError, TypeError):
            return None
        claims = decoded.claims
        issued, expires = claims.get("nbf"), claims.get("exp")
        if claims.get("iss") != self._issuer or not isinstance(issued, int) or not isinstance(expires, int):
            return None
        return claims if issued - 5 <= now < expires else None

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document."""
        public = self._key.as_dict(private=False)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "ES256"}]}

    def token(self, caller: Caller, *, audience: str, now: float, action: str, resource: str) -> str:
        """A token naming the caller behind a request (a role session, an IAM user, a federated
        user), for the upstream ``audience``: ``role_arn`` and ``session_name`` for a role session,
        ``user_name`` for a user (with its key or its own session), ``federated_by`` (the IAM user's
        ARN) for a federated user."""
        issued = int(now)
        payload: dict[str, Any] = {
            "iss": self._issuer,
            "aud": audience,
            "sub": caller.arn,
            "iat": issued,
            "nbf": issued,
            "exp": issued + self._ttl,
            "jti": secrets.token_urlsafe(12),
            "account": caller.account_id,
            "userid": caller.user_id,
            "action": action,
            "resource": resource,
        }
        claims = caller.role_session
        if claims is None:
            if caller.user_name is not None:
                payload["user_name"] = caller.user_name
            elif caller.session is not None:  # a federated user: the user that asked for it
                payload["federated_by"] = caller.session.user_arn
            return jwt.encode({"alg": "ES256", "kid": self.kid, "typ": "JWT"}, payload, self._key)
        payload["role_arn"] = claims.role_arn
        payload["session_name"] = claims.session_name
        if claims.source_identity:
            payload["source_identity"] = claims.source_identity
        tags: Mapping[str, str] = claims.tags
        if tags:
            payload["tags"] = dict(tags)
        return jwt.encode({"alg": "ES256", "kid": self.kid, "typ": "JWT"}, payload, self._key)
