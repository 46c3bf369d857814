"""``SAMLProvider.authenticate_for_sp``: responses to fedgate's own ACS (browser sign-in).

fedgate's SP entity id and ACS URL replace the AWS audiences and recipients; the signed
InResponseTo is handed to the caller before the assertion is spent; the unsigned envelope cannot
name another request; the IdP's HTTP-Redirect endpoints come from its metadata.
"""

from __future__ import annotations

import pytest
from lxml import etree

from fedgate_saml import SAMLProvider
from gateway.errors import InvalidIdentityToken
from gateway.testing.saml import SAMLP_NS, SAMLTestIdP
from tests.plugins.fedgate_saml.conftest import PROVIDER_ARN, ROLE_ARN

SP = "https://sso.example.test/sso/saml/corp/metadata"
ACS = "https://sso.example.test/sso/saml/corp/acs"


def sp_response(idp: SAMLTestIdP, **kwargs: object) -> bytes:
    return idp.response(roles=[(ROLE_ARN, PROVIDER_ARN)], sp_entity_id=SP, destination=ACS, **kwargs)  # type: ignore[arg-type]


class Answers:
    """Records the InResponseTo it was given; refuses when told to."""

    def __init__(self, refuse: bool = False) -> None:
        self.seen: list[str | None] = []
        self.refuse = refuse

    async def __call__(self, in_response_to: str | None) -> None:
        self.seen.append(in_response_to)
        if self.refuse:
            raise InvalidIdentityToken("refused by the caller")


async def test_sp_audience_and_in_response_to(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    answers = Answers()
    token = SAMLTestIdP.b64(sp_response(idp, in_response_to="_req-1", sign_assertion=True))
    identity, verified = await provider.authenticate_for_sp(
        token, audience=SP, recipient=ACS, answers=answers
    )
    assert answers.seen == ["_req-1"]
    assert identity.audience == ACS and identity.roles == ((ROLE_ARN, PROVIDER_ARN),)  # the Recipient
    assert verified.audience == SP and verified.in_response_to == "_req-1" and verified.session_index
    # The AssumeRoleWithSAML path still refuses it: wrong audience, and InResponseTo not allowed.
    with pytest.raises(InvalidIdentityToken):
        await provider.authenticate(SAMLTestIdP.b64(sp_response(idp, in_response_to="_req-2")))


async def test_unsolicited_gives_none(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    answers = Answers()
    await provider.authenticate_for_sp(
        SAMLTestIdP.b64(sp_response(idp)), audience=SP, recipient=ACS, answers=answers
    )
    assert answers.seen == [None]


async def test_refusal_by_caller_does_not_spend_the_assertion(
    provider: SAMLProvider, idp: SAMLTestIdP
) -> None:
    token = SAMLTestIdP.b64(sp_response(idp, in_response_to="_req-3"))
    with pytest.raises(InvalidIdentityToken, match="refused by the caller"):
        await provider.authenticate_for_sp(token, audience=SP, recipient=ACS, answers=Answers(refuse=True))
    identity, _ = await provider.authenticate_for_sp(token, audience=SP, recipient=ACS, answers=Answers())
    assert identity.subject == "alice@example.com"


async def test_other_audience_or_recipient_refused(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    token = SAMLTestIdP.b64(sp_response(idp))
    for audience, recipient in ((SP, "https://evil.test/acs"), ("https://evil.test/sp", ACS)):
        with pytest.raises(InvalidIdentityToken, match=r"Audience|Recipient|Destination"):
            await provider.authenticate_for_sp(
                token, audience=audience, recipient=recipient, answers=Answers()
            )


async def test_unsigned_envelope_naming_another_request_refused(
    provider: SAMLProvider, idp: SAMLTestIdP
) -> None:
    # Only the assertion is signed: the envelope's InResponseTo is attacker-controlled.
    root = etree.fromstring(
        sp_response(idp, in_response_to="_real", sign_response=False, sign_assertion=True)
    )
    assert root.tag == f"{{{SAMLP_NS}}}Response"
    root.set("InResponseTo", "_forged")
    answers = Answers()
    with pytest.raises(InvalidIdentityToken, match="different requests"):
        await provider.authenticate_for_sp(
            SAMLTestIdP.b64(etree.tostring(root)), audience=SP, recipient=ACS, answers=answers
        )
    assert answers.seen == []


async def test_metadata_redirect_endpoints(provider: SAMLProvider) -> None:
    metadata = await provider.metadata()
    assert metadata.sso_redirect == "https://idp.example.test/sso/redirect"
    assert metadata.slo_redirect is None
