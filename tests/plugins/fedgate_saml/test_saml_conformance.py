"""AssumeRoleWithSAML as AWS documents it: which value is the Audience, and how old a response may be."""

from __future__ import annotations

import pytest

from fedgate_saml import SAMLProviderSettings
from gateway.errors import ExpiredToken
from gateway.testing.saml import AWS_ACS, SAMLTestIdP
from tests.plugins.fedgate_saml.conftest import PROVIDER, PROVIDER_ARN, ROLE_ARN, Clock, Make, restamped

GATEWAY_ACS = "https://gateway.example.com/saml/acs"


async def test_audience_is_the_recipient(make: Make, idp: SAMLTestIdP) -> None:
    """ "AssumeRoleWithSAML" (AWS STS API Reference), Response Elements: ``Audience`` is "The value
    of the Recipient attribute of the SubjectConfirmationData element of the SAML assertion."
    "Configuring SAML assertions for the authentication response" (IAM User Guide): "The SAML
    AudienceRestriction value in the SAML assertion from the IdP does not map to the saml:aud
    context key that you can test in an IAM policy. Instead, the saml:aud context key comes from
    the SAML recipient attribute".

    So the identity's audience (what the STS response returns) and ``saml:aud`` are both the
    Recipient, whatever AudienceRestriction value was matched.
    """
    provider = await make(recipients=[AWS_ACS, GATEWAY_ACS])
    for sp, recipient in (
        ("urn:amazon:webservices", GATEWAY_ACS),
        ("https://signin.aws.amazon.com/saml", AWS_ACS),
    ):
        xml = idp.response(roles=[(ROLE_ARN, PROVIDER_ARN)], sp_entity_id=sp, destination=recipient)
        identity = await provider.authenticate(SAMLTestIdP.b64(xml))
        assert identity.audience == recipient
        assert identity.condition_keys["saml:aud"] == recipient


def _long_lived(idp: SAMLTestIdP) -> bytes:
    unsigned = idp.response(roles=[(ROLE_ARN, PROVIDER_ARN)], sign_response=False, sign_assertion=False)
    return restamped(idp, unsigned, valid_for=3600)


async def test_assertion_older_than_five_minutes_is_expired(
    make: Make, idp: SAMLTestIdP, clock: Clock
) -> None:
    """ "Configuring SAML assertions for the authentication response" (IAM User Guide), Subject and
    NameID: "There must be exactly one SubjectConfirmation element with a SubjectConfirmationData
    element that includes both the NotOnOrAfter attribute and a Recipient attribute." AWS also
    refuses a response that is older than five minutes (counted from its IssueInstant) even when
    its NotOnOrAfter lies further ahead; the STS error for a token past its validity is
    ``ExpiredTokenException`` ("The web identity token that was passed is expired or is not
    valid.", AssumeRoleWithSAML, Errors).

    fedgate checks the signed assertion's IssueInstant against ``max_assertion_age_seconds``
    (default 300), plus the bounded clock skew (60 s here), before the one-time use is recorded.
    """
    provider = await make()
    assert SAMLProviderSettings(**idp.provider_config(PROVIDER)).max_assertion_age_seconds == 300
    xml = SAMLTestIdP.b64(_long_lived(idp))
    clock.offset = 300 + 61  # NotOnOrAfter is an hour away
    with pytest.raises(ExpiredToken) as info:
        await provider.authenticate(xml)
    assert info.value.code == "ExpiredTokenException" and "IssueInstant" in info.value.message
    clock.offset = 300 + 55  # within the skew: accepted, and spent only now
    assert (await provider.authenticate(xml)).subject == "alice@example.com"


async def test_assertion_age_is_configurable_per_provider(make: Make, idp: SAMLTestIdP, clock: Clock) -> None:
    """The same rule with a provider-specific allowance (``max_assertion_age_seconds``)."""
    strict = await make(max_assertion_age_seconds=30)
    lax = await make(max_assertion_age_seconds=1800)
    clock.offset = 600
    with pytest.raises(ExpiredToken):
        await strict.authenticate(SAMLTestIdP.b64(_long_lived(idp)))
    assert (await lax.authenticate(SAMLTestIdP.b64(_long_lived(idp)))).subject == "alice@example.com"
    clock.offset = 3600 + 61
    with pytest.raises(ExpiredToken) as info:  # NotOnOrAfter still applies on its own
        await lax.authenticate(SAMLTestIdP.b64(_long_lived(idp)))
    assert "NotOnOrAfter" in info.value.message
