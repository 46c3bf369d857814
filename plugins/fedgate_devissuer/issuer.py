"""The development issuer's key handling and token minting (no HTTP here)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any, final

from joserfc import jwt
from joserfc.jwk import ECKey

from fedgate_devissuer.config import DevIssuerSettings

__all__ = ["DevIssuer", "DevIssuerSettings"]


@final
class DevIssuer:
    """Loads (or creates) the signing key and mints tokens."""

    def __init__(self, settings: DevIssuerSettings) -> None:
        self.settings = settings
        self._key: ECKey | None = None

    @property
    def key(self) -> ECKey:
        """The signing key, created on first use."""
        if self._key is None:
            self._key = _load_or_create(self.settings.key_file)
        return self._key

    @property
    def kid(self) -> str:
        """The key id: the key's RFC 7638 thumbprint."""
        return str(self.key.thumbprint())

    def jwks(self) -> dict[str, Any]:
        """The public key set."""
        public = dict(self.key.as_dict(private=False))
        public.update({"kid": self.kid, "use": "sig", "alg": "ES256"})
        return {"keys": [public]}

    def discovery(self) -> dict[str, Any]:
        """The OpenID Provider configuration document."""
        issuer = self.settings.issuer
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/jwks.json",
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
            "scopes_supported": ["openid", "profile"],
            "response_types_supported": ["code", "id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "nbf", "nonce", "preferred_username"],
        }

    def mint(
        self,
        subject: str,
        *,
        audience: str | None = None,
        lifetime: int | None = None,
        extra: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> str:
        """A signed ES256 token for ``subject``."""
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": subject,
            "aud": audience or self.settings.audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + (lifetime or self.settings.token_lifetime),
            "jti": str(uuid.uuid4()),
        }
        claims.update(extra or {})
        return str(jwt.encode({"alg": "ES256", "kid": self.kid, "typ": "JWT"}, claims, self.key))


def _load_or_create(path: Path) -> ECKey:
    try:
        return ECKey.import_key(path.read_bytes())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ECKey.generate_key("P-256")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return ECKey.import_key(path.read_bytes())
    with os.fdopen(fd, "wb") as out:
        out.write(key.as_pem(private=True))
    return key
