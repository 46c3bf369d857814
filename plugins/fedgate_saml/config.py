"""Settings of one SAML identity provider (``type: saml`` in ``providers``)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway.plugin import CAFile, ConfigPath, ProviderSettings, check_https_url

__all__ = ["DEFAULT_AUDIENCES", "DEFAULT_MFA_CLASSES", "DEFAULT_RECIPIENTS", "SAMLProviderSettings"]

#: AWS accepts both of its SP entity ids in AudienceRestriction.
DEFAULT_AUDIENCES: tuple[str, ...] = ("https://signin.aws.amazon.com/saml", "urn:amazon:webservices")
#: AWS's sign-in endpoint, the usual Recipient/Destination of responses meant for AWS.
DEFAULT_RECIPIENTS: tuple[str, ...] = ("https://signin.aws.amazon.com/saml",)
#: AuthnContextClassRef values that mean a second factor was used, as common IdPs send them.
DEFAULT_MFA_CLASSES: tuple[str, ...] = (
    "http://schemas.microsoft.com/claims/multipleauthn",  # Entra ID / AD FS
    "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI",
    "https://refeds.org/profile/mfa",
    "http://id.incommon.org/assurance/mfa",
)
_NAME_RE = re.compile(r"^[\w.-]{1,128}\Z", re.ASCII)


class SAMLProviderSettings(ProviderSettings):
    """A SAML 2.0 identity provider whose responses AssumeRoleWithSAML accepts."""

    type: Literal["saml"] = Field(description="Always saml for this provider kind.")
    name: str = Field(
        description="Provider name (1-128 letters, digits and _.-): the NAME of "
        "arn:aws:iam::ACCOUNT:saml-provider/NAME.",
    )
    metadata_file: ConfigPath | None = Field(
        default=None, description="Path of the IdP's SAML metadata document (give this or metadata_url)."
    )
    metadata_url: str | None = Field(
        default=None,
        description="URL of the IdP's SAML metadata (https; plain http only to a loopback host).",
    )
    metadata_document: str | None = Field(
        default=None,
        repr=False,
        description="The IdP's SAML metadata document itself (XML text), instead of metadata_file or "
        "metadata_url: how a provider created through the IAM API (CreateSAMLProvider) is given.",
    )
    entity_id: str | None = Field(
        default=None,
        description="entityID of the IdP to trust when the metadata describes several entities; "
        "default: the only IdP in it.",
    )
    metadata_refresh_seconds: float = Field(
        default=3600,
        ge=1,
        le=7 * 86400,
        description="How often the metadata is reloaded in the background (file or URL); the last good "
        "copy stays in use while a reload fails.",
    )
    metadata_signing_certificate: ConfigPath | None = Field(
        default=None,
        description="PEM certificate that must have signed the metadata document (recommended with "
        "metadata_url, e.g. for a federation's aggregate).",
    )
    http_timeout: float = Field(
        default=10, gt=0, le=120, description="Timeout in seconds of a metadata fetch."
    )
    ca_file: CAFile | None = Field(
        default=None,
        description="PEM file of the CA certificates that sign the metadata_url server's TLS "
        "certificate (an internal CA): metadata fetches trust only these, instead of the system "
        "store or SSL_CERT_FILE. Hostnames are still checked.",
    )
    audiences: list[str] = Field(
        default_factory=lambda: list(DEFAULT_AUDIENCES),
        min_length=1,
        description="SP entity ids accepted in the assertion's AudienceRestriction.",
    )
    recipients: list[str] = Field(
        default_factory=lambda: list(DEFAULT_RECIPIENTS),
        min_length=1,
        description="ACS URLs accepted as SubjectConfirmationData Recipient and Response Destination.",
    )
    allow_sha1: bool = Field(
        default=False,
        description="Accept RSA-SHA1 signatures and SHA-1 digests (only for IdPs that cannot do better).",
    )
    mfa_authn_context_classes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MFA_CLASSES),
        description="AuthnContextClassRef values meaning the user passed multi-factor authentication "
        "(sets aws:MultiFactorAuthPresent).",
    )
    max_assertion_chars: int = Field(
        default=100_000,
        ge=1024,
        le=10_000_000,
        description="Largest SAMLAssertion parameter accepted (base64 characters); "
        "larger ones are refused unread.",
    )
    require_signed_assertion: bool = Field(
        default=False,
        description="Require the Assertion itself to be signed "
        "(by default a signed Response suffices, as on AWS).",
    )
    allow_in_response_to: bool = Field(
        default=False,
        description="Accept responses carrying InResponseTo (SP-initiated logins through another SP). "
        "AssumeRoleWithSAML has no request to match, so the id is not checked; one-time use still applies. "
        "(Browser sign-in at /sso/saml/ always matches it against its own AuthnRequest.)",
    )
    max_assertion_age_seconds: float = Field(
        default=300,
        gt=0,
        le=3600,
        description="Refuse an assertion issued (IssueInstant) longer ago than this, even before its "
        "NotOnOrAfter (ExpiredTokenException); AWS allows five minutes. The clock-skew leeway "
        "(clock_skew_seconds) is added.",
    )
    check_certificate_validity: bool = Field(
        default=True,
        description="Refuse signatures made with a metadata certificate that is expired or not yet valid.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("must be 1-128 characters of letters, digits and _.-")
        return v

    @field_validator("metadata_url")
    @classmethod
    def _metadata_url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        check_https_url(v)
        return v

    @field_validator("audiences", "recipients")
    @classmethod
    def _uris(cls, v: list[str]) -> list[str]:
        if any(not item or len(item) > 1024 for item in v):
            raise ValueError("each entry must be 1-1024 characters")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> SAMLProviderSettings:
        sources = (self.metadata_file, self.metadata_url, self.metadata_document)
        if sum(source is not None for source in sources) != 1:
            raise ValueError("give exactly one of metadata_file, metadata_url or metadata_document")
        if self.ca_file is not None and self.metadata_url is None:
            raise ValueError("ca_file applies to metadata_url only; remove it or fetch the metadata by URL")
        return self
