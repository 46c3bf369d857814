"""The development issuer's key handling and token minting (no HTTP here)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any, final
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.plugin import ConfigPath, is_loopback_host

__all__ = ["DevIssuer", "DevIssuerSettings"]


class DevIssuerSettings(BaseModel):
    """Settings of the ``dev_issuer`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(description="Issuer URL: http(s) on a loopback host with a non-root path.")
    key_file: ConfigPath = Field(
        default=Path(".fedgate/dev-issuer-key.pem"),
        validate_default=True,
        description="PEM file of the ES256 signing key (relative to the configuration file); created with "
        "mode 0600 when missing.",
    )
    audience: str = Field(default="demo", min_length=1, description="Default aud of minted tokens.")
    token_lifetime: int = Field(default=3600, ge=60, le=86400, description="Default token lifetime (s).")

    @field_validator("issuer")
    @classmethod
    def _loopback(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        if not is_loopback_host(parts.hostname):
            raise ValueError("the development issuer may only be served on a loopback address")
        if parts.path.rstrip("/") in ("",) or parts.query or parts.fragment:
            raise ValueError("needs a path (e.g. /dev-issuer) and no query or fragment")
        return v.rstrip("/")

    @property
    def path(self) -> str:
        """The URL path the issuer is served under."""
        return urlsplit(self.issuer).path.rstrip("/")


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
