"""Settings of one OIDC identity provider (``type: oidc`` in ``providers``)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator

from gateway.plugin import CAFile, ProviderSettings, check_https_url, is_loopback_host

__all__ = ["ASYMMETRIC_ALGORITHMS", "OIDCProviderSettings", "is_loopback_http", "provider_id"]

#: The only JWS algorithms a provider may allow: all asymmetric. ``none`` and the HMAC family are
#: never accepted, since an HMAC "verified" with a public key is the classic algorithm-confusion forgery.
ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


def is_loopback_http(url: str) -> bool:
    """Whether ``url`` is plain http to a loopback host (allowed for development only)."""
    parts = urlsplit(url)
    return parts.scheme == "http" and is_loopback_host(parts.hostname or "")


def _check_url(url: str) -> str:
    check_https_url(url)
    return url


def provider_id(issuer: str) -> str:
    """``HOST/PATH`` of ``issuer``: the issuer without scheme and trailing slash."""
    return issuer.split("://", 1)[1].rstrip("/")


class OIDCProviderSettings(ProviderSettings):
    """An OpenID Connect issuer whose ID tokens AssumeRoleWithWebIdentity accepts."""

    type: Literal["oidc"] = Field(description="Always oidc for this provider kind.")
    issuer: str = Field(
        description="Issuer URL, compared exactly with the iss claim (https; http only to a loopback host).",
    )
    audiences: list[str] = Field(
        min_length=1,
        description="Accepted client ids: the token's aud (or azp) must be one of them.",
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256"],
        min_length=1,
        description="Allowed JWS algorithms (asymmetric only: RS*, PS*, ES*, EdDSA).",
    )
    jwks_url: str | None = Field(
        default=None,
        description="JWKS URL; default: the jwks_uri of ISSUER/.well-known/openid-configuration.",
    )
    jwks_cache_seconds: float = Field(
        default=3600, gt=0, le=86400, description="How long fetched keys (and discovery) are trusted."
    )
    jwks_refetch_min_interval: float = Field(
        default=60,
        ge=0,
        le=3600,
        description="Minimum seconds between key refetches triggered by a token with an unknown kid.",
    )
    http_timeout: float = Field(
        default=5, gt=0, le=60, description="Timeout in seconds of each discovery or JWKS request."
    )
    ca_file: CAFile | None = Field(
        default=None,
        description="PEM file of the CA certificates that sign the issuer's TLS certificate (an "
        "internal CA): discovery, JWKS and browser sign-in requests to it trust only these, instead "
        "of the system store or SSL_CERT_FILE. Hostnames are still checked.",
    )
    max_token_bytes: int = Field(
        default=16384,
        ge=256,
        le=1048576,
        description="Largest token accepted; larger ones are refused unread.",
    )
    share_jwks: bool = Field(
        default=False,
        description="Also cache the JWKS in the shared store so replicas fetch it once "
        "(anyone able to write the store could then plant keys).",
    )
    public_network_only: bool = Field(
        default=False,
        description="Fetch discovery and keys from public addresses only (never loopback, private, "
        "link-local or metadata addresses), checked on the addresses the host resolves to. Always on "
        "for providers created through the IAM API, whose URL an IAM user chooses.",
    )
    require_claims: list[str] = Field(
        default_factory=list,
        description="Extra claims every token must carry (besides iss, aud, exp and sub); "
        "a token without one is refused with IDPRejectedClaim.",
    )

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, v: str) -> str:
        _check_url(v)
        if urlsplit(v).query:
            raise ValueError("must not contain a query")
        return v

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return None
        _check_url(v)
        issuer = info.data.get("issuer")
        # A plain-http key URL is only tolerable for a development issuer that is itself local.
        if urlsplit(v).scheme == "http" and isinstance(issuer, str) and not is_loopback_http(issuer):
            raise ValueError("must use https when the issuer does")
        return v

    @field_validator("audiences")
    @classmethod
    def _audiences(cls, v: list[str]) -> list[str]:
        for aud in v:
            if not aud or len(aud) > 1024:
                raise ValueError("each audience must be 1-1024 characters")
        return v

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, v: list[str]) -> list[str]:
        for alg in v:
            if alg not in ASYMMETRIC_ALGORITHMS:
                allowed = ", ".join(sorted(ASYMMETRIC_ALGORITHMS))
                raise ValueError(f"algorithm {alg!r} is not allowed; use asymmetric ones only: {allowed}")
        return v

    @field_validator("require_claims")
    @classmethod
    def _require_claims(cls, v: list[str]) -> list[str]:
        if any(not name for name in v):
            raise ValueError("claim names must not be empty")
        return v
