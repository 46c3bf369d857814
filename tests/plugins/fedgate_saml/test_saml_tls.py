"""SAML metadata from an https URL behind a private CA: ``ca_file`` trusts it for that provider only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from fedgate_saml import SAMLProvider, SAMLProviderSettings
from gateway.errors import IDPCommunicationError
from gateway.identity import ProviderContext
from gateway.testing.saml import SAMLTestIdP
from gateway.testing.tls import TestCA
from tests.conftest import running_memory_store
from tests.plugins.fedgate_saml.conftest import ACCOUNT, PROVIDER, PROVIDER_ARN, ROLE_ARN


@pytest.fixture(scope="module")
def ca() -> Iterator[TestCA]:
    with TestCA() as test_ca:
        yield test_ca


async def _subject(idp: SAMLTestIdP, **settings: Any) -> str:
    provider = SAMLProvider(
        SAMLProviderSettings(type="saml", name=PROVIDER, **settings),
        ProviderContext(ACCOUNT, running_memory_store()),
    )
    await provider.start()
    try:
        xml = idp.response(roles=[(ROLE_ARN, PROVIDER_ARN)])
        return (await provider.authenticate(SAMLTestIdP.b64(xml))).subject
    finally:
        await provider.close()


async def test_ca_file_trusts_an_internal_metadata_url(idp: SAMLTestIdP, ca: TestCA) -> None:
    """IAM API Reference, CreateSAMLProvider, ``SAMLMetadataDocument``: "An XML document generated
    by an identity provider (IdP) that supports SAML 2.0. The document includes the issuer's name,
    expiration information, and keys that can be used to validate the SAML authentication response
    (assertions) that are received from the IdP."

    AWS takes that document as uploaded; fedgate can also fetch it from ``metadata_url``, and since
    the keys in it decide whose assertions are accepted, the fetch trusts exactly the provider's
    ``ca_file`` when one is set: the test CA's bundle works, none (the system store) or another
    CA's bundle does not.
    """
    async with idp.serve(tls=ca.server_context()) as url:
        assert url.startswith("https://127.0.0.1:")
        assert await _subject(idp, metadata_url=url, ca_file=str(ca.cert_file)) == "alice@example.com"
        fetched = idp.metadata_fetches
        with pytest.raises(IDPCommunicationError):
            await _subject(idp, metadata_url=url)
        with TestCA(name="another CA") as other, pytest.raises(IDPCommunicationError):
            await _subject(idp, metadata_url=url, ca_file=str(other.cert_file))
        assert idp.metadata_fetches == fetched  # the refused handshakes never reached the server


def test_ca_file_needs_a_metadata_url(idp: SAMLTestIdP, ca: TestCA) -> None:
    with pytest.raises(ValidationError, match="ca_file applies to metadata_url only"):
        SAMLProviderSettings(**idp.provider_config(PROVIDER, ca_file=str(ca.cert_file)))
    with pytest.raises(ValidationError, match="cannot load CA certificates"):
        SAMLProviderSettings(
            type="saml",
            name=PROVIDER,
            metadata_url="https://idp.example.com/md",
            ca_file=str(ca.cert_file) + ".nope",
        )
