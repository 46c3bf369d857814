"""fedgate's SAML 2.0 identity provider, for AssumeRoleWithSAML.

Registered through the ``fedgate`` entry-point group as ``saml``, exactly as a third-party plugin
would be. It accepts IdP-initiated SAML responses (the base64 ``SAMLAssertion`` parameter) from any
SAML 2.0 IdP (Entra ID, AD FS, Okta, Keycloak, Shibboleth, ...), with AWS's attributes.

Configuration (one entry of ``providers``)::

    providers:
      - type: saml
        name: corp                              # ARN: arn:aws:iam::ACCOUNT:saml-provider/corp
        metadata_file: /etc/fedgate/corp-idp.xml  # or metadata_url: https://idp.example.com/metadata
                                                # (or metadata_document: the XML itself)
        entity_id: null                         # which IdP, when the metadata holds several
        metadata_refresh_seconds: 3600          # background reload; the last good copy is kept
        metadata_signing_certificate: null      # PEM file; if set, the metadata must be signed with it
        http_timeout: 10                        # seconds per metadata fetch
        ca_file: null                           # PEM CA bundle trusted for metadata_url (else the system's)
        audiences: [https://signin.aws.amazon.com/saml, urn:amazon:webservices]
        recipients: [https://signin.aws.amazon.com/saml]   # accepted Recipient / Destination
        allow_sha1: false                       # RSA-SHA1 signatures and SHA-1 digests
        mfa_authn_context_classes: [...]        # AuthnContextClassRef values meaning MFA
        max_assertion_chars: 100000             # larger SAMLAssertion values are refused unread
        require_signed_assertion: false         # by default a signed Response suffices
        allow_in_response_to: false             # IdP-initiated only, unless set
        max_assertion_age_seconds: 300          # IssueInstant at most this old (plus the clock skew)
        check_certificate_validity: true        # refuse signatures by expired metadata certificates

A provider created through the IAM API (``CreateSAMLProvider``) is built from its name and metadata
document (``fedgate_api_provider_settings``) with these defaults, and used by AssumeRoleWithSAML
whose ``PrincipalArn`` names it (:mod:`gateway.iam.federation`).

Every key is described in :class:`SAMLProviderSettings`. ``metadata_url`` must be https (plain http
only to a loopback host). The provider's ``issuer`` is the IdP's entityID from the metadata.

Security: the signature (on the Response or the Assertion) is verified in process with keys from the
metadata only, and only the element it covers is read, so XML-signature-wrapping variants find
nothing to smuggle; DTDs and entities are refused; sizes are checked before decoding and parsing;
HMAC is never accepted and SHA-1 only when allowed; Audience, Recipient, Destination and the
NotBefore/NotOnOrAfter windows are checked with bounded skew, and so is the assertion's age
(``IssueInstant``, five minutes by default as on AWS); encrypted assertions are refused with a
clear message; each assertion ID is accepted once across all replicas, and across a reset of the
shared store (``ReplayGuard``: an assertion issued before the store's current generation began,
plus the clock-skew leeway, is refused).

The identity's ``audience`` is the Recipient (what AssumeRoleWithSAML returns as ``Audience``), and it
carries AWS's SAML condition keys (``saml:aud`` = the Recipient, ``saml:sub``,
``saml:sub_type``, ``saml:iss``, ``saml:namequalifier``, ``saml:doc``, ``saml:edupersonaffiliation``
and the other eduPerson/X.500 keys), the Role pairs, RoleSessionName, SessionDuration, PrincipalTag
session tags, TransitiveTagKeys, SourceIdentity, SessionNotOnOrAfter and whether MFA was used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import ValidationError

from fedgate_saml.config import SAMLProviderSettings
from gateway.plugin import IdentityProvider, ProviderContext, ProviderSettings, hookimpl, require

if TYPE_CHECKING:  # the provider's libraries are imported only when one is built
    from fedgate_saml.provider import SAMLProvider

__all__ = ["SAMLProvider", "SAMLProviderSettings"]


@hookimpl
def fedgate_add_provider_types() -> Mapping[str, type[ProviderSettings]]:
    """Declare the ``saml`` provider type."""
    return {"saml": SAMLProviderSettings}


@hookimpl
def fedgate_create_identity_provider(
    settings: ProviderSettings, context: ProviderContext
) -> IdentityProvider | None:
    """Build a :class:`SAMLProvider` for ``saml`` settings; ``None`` for any other type."""
    if isinstance(settings, SAMLProviderSettings):
        require("saml2", feature="providers: type saml", package="pysaml2")
        require("signxml", feature="providers: type saml", package="signxml")
        require("lxml.etree", feature="providers: type saml", package="lxml")
        from fedgate_saml.provider import SAMLProvider

        return SAMLProvider(settings, context)
    return None


@hookimpl
def fedgate_api_provider_settings(kind: str, name: str, metadata: str) -> ProviderSettings | None:
    """A SAML provider created through the IAM API (``CreateSAMLProvider``): its name and its
    metadata document, with every other default of the ``saml`` type (AWS's audiences and
    recipient). ``None`` for other kinds, and for a name or document the settings refuse."""
    if kind != "saml" or not metadata:
        return None
    try:
        return SAMLProviderSettings(type="saml", name=name, metadata_document=metadata)
    except ValidationError:
        return None


def __getattr__(name: str) -> object:
    if name == "SAMLProvider":
        from fedgate_saml.provider import SAMLProvider

        return SAMLProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
