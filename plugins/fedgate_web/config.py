"""Settings of browser and CLI sign-in (the ``web_login`` section)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.plugin import SecretRef, check_https_url

__all__ = ["OIDCLoginSettings", "SAMLLoginSettings", "WebLoginSettings"]

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}\Z")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_name(v: str) -> str:
    if not _NAME_RE.match(v):
        raise ValueError("must be 1-32 characters of lower-case letters, digits and -")
    return v


class OIDCLoginSettings(_Model):
    """Browser sign-in through an OpenID Connect provider (authorization code, PKCE and nonce)."""

    name: str = Field(description="Short name, used in URLs (/sso/login/NAME) and on the sign-in page.")
    label: str = Field(default="", max_length=100, description="Button text; default: 'Sign in with NAME'.")
    issuer: str = Field(description="Issuer URL; must equal the issuer of a configured oidc provider.")
    client_id: str = Field(min_length=1, max_length=1024, description="Client id registered at the IdP.")
    client_secret: SecretRef | None = Field(
        default=None, description="Client secret (client_secret_basic); omit for a public client."
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile", "email"],
        description="Scopes requested (openid required).",
    )
    session_name_claims: list[str] = Field(
        default_factory=lambda: ["preferred_username", "email", "sub"],
        description="Claims tried in order for the role session name (the first valid one wins).",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v)

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, v: list[str]) -> list[str]:
        if "openid" not in v:
            raise ValueError("must include openid")
        if any(not s or " " in s for s in v):
            raise ValueError("scopes must be non-empty words")
        return v


class SAMLLoginSettings(_Model):
    """Browser sign-in through a SAML 2.0 IdP (fedgate is the service provider).

    The SP's URLs: metadata ``/sso/saml/NAME/metadata``, ACS (HTTP-POST) ``/sso/saml/NAME/acs``,
    sign-in ``/sso/saml/NAME/login``, single logout (HTTP-Redirect) ``/sso/saml/NAME/slo``.
    """

    name: str = Field(description="Short name, used in URLs (/sso/saml/NAME/...) and on the sign-in page.")
    label: str = Field(default="", max_length=100, description="Button text; default: 'Sign in with NAME'.")
    provider: str = Field(description="Name of the configured saml provider whose IdP signs users in.")
    entity_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="fedgate's SP entity id (the Audience the IdP must name); "
        "default: {public_url}/sso/saml/NAME/metadata.",
    )
    signing_key: SecretRef = Field(
        description="PEM private key (RSA >= 2048 bits, unencrypted) that signs AuthnRequests."
    )
    signing_certificate: SecretRef = Field(
        description="PEM certificate of signing_key, published in the SP metadata."
    )
    sign_authn_requests: bool = Field(
        default=True, description="Sign AuthnRequests (HTTP-Redirect binding, RSA-SHA256)."
    )
    allow_idp_initiated: bool = Field(
        default=False,
        description="Accept unsolicited responses (IdP-initiated sign-in) at the ACS. Off by default: "
        "an unsolicited response cannot be bound to the browser that posts it (login CSRF).",
    )
    single_logout: bool = Field(
        default=True,
        description="SAML single logout when the IdP's metadata lists an HTTP-Redirect SingleLogoutService: "
        "sign-out continues at the IdP with a signed LogoutRequest, and signed LogoutRequests from the IdP "
        "end the subject's fedgate sessions.",
    )
    allow_unsigned_logout_responses: bool = Field(
        default=False,
        description="Accept unsigned LogoutResponses at /sso/saml/NAME/slo (only for IdPs that cannot sign "
        "them; LogoutRequests must always be signed).",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v)


class WebLoginSettings(_Model):
    """Browser sign-in, the role chooser and credentials pages, and ``fedgate login``."""

    public_url: str = Field(
        description="Origin users reach fedgate at (https; http only on loopback), e.g. https://sso.example.com."
    )
    cookie_secret: SecretRef = Field(description="At least 32 characters; signs cookies and CSRF tokens.")
    session_lifetime: int = Field(
        default=28800, ge=300, le=604800, description="Seconds a sign-in lasts (CLI refreshes end with it)."
    )
    credential_duration: int = Field(
        default=3600, ge=900, le=43200, description="Seconds credentials are valid (capped by the role)."
    )
    secure_cookie: bool | None = Field(
        default=None, description="Mark cookies Secure; default: true unless public_url is loopback http."
    )
    device_code_lifetime: int = Field(
        default=600, ge=60, le=1800, description="Seconds a device-flow code waits for approval."
    )
    oidc: list[OIDCLoginSettings] = Field(default_factory=list, description="OIDC sign-in options.")
    saml: list[SAMLLoginSettings] = Field(default_factory=list, description="SAML sign-in options.")

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str) -> str:
        parts = check_https_url(v)
        if parts.path not in ("", "/") or parts.query:
            raise ValueError("must be an origin only (no path, query, fragment or credentials)")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _names(self) -> WebLoginSettings:
        names = [o.name for o in self.oidc] + [s.name for s in self.saml]
        if len(set(names)) != len(names):
            raise ValueError("oidc and saml sign-in names must be unique")
        if not names:
            raise ValueError("configure at least one oidc or saml sign-in")
        return self

    @property
    def cookies_secure(self) -> bool:
        """Whether cookies carry ``Secure``: on unless explicitly off, or served on loopback http."""
        if self.secure_cookie is not None:
            return self.secure_cookie
        return urlsplit(self.public_url).scheme == "https"
