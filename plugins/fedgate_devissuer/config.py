"""The ``dev_issuer`` section's settings (pure configuration: no key handling, no JOSE library)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.plugin import ConfigPath, is_loopback_host

__all__ = ["DevIssuerSettings"]


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
