"""An OIDC issuer behind a private CA: ``ca_file`` trusts it for that provider only.

A real https issuer on 127.0.0.1 with a certificate from a test CA made with ``cryptography``;
nothing here touches the process-wide trust (``SSL_CERT_FILE``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fedgate_oidc import OIDCProvider, OIDCProviderSettings
from gateway.errors import IDPCommunicationError
from gateway.identity import ProviderContext
from gateway.store.memory import MemoryStore
from gateway.testing import OIDCTestIssuer
from gateway.testing.tls import TestCA

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def ca() -> Iterator[TestCA]:
    with TestCA() as test_ca:
        yield test_ca


@pytest.fixture()
async def tls_idp(issuer_keys: dict[str, Any], ca: TestCA) -> AsyncIterator[OIDCTestIssuer]:
    async with OIDCTestIssuer(keys=issuer_keys, tls=ca.server_context()) as issuer:
        yield issuer


async def _authenticate(idp: OIDCTestIssuer, **overrides: Any) -> str:
    provider = OIDCProvider(
        OIDCProviderSettings.model_validate(idp.provider_config(**overrides)),
        ProviderContext(account_id=ACCOUNT, store=MemoryStore()),
    )
    await provider.start()
    try:
        return (await provider.authenticate(idp.mint(sub="ci-job"))).subject
    finally:
        await provider.close()


async def test_ca_file_trusts_an_internal_issuer(tls_idp: OIDCTestIssuer, ca: TestCA) -> None:
    """IAM API Reference, CreateOpenIDConnectProvider: "Amazon Web Services secures communication
    with OIDC identity providers (IdPs) using our library of trusted root certificate authorities
    (CAs) to verify the JSON Web Key Set (JWKS) endpoint's TLS certificate. If your OIDC IdP relies
    on a certificate that is not signed by one of these trusted CAs, only then we secure
    communication using the thumbprints set in the IdP's configuration."

    fedgate's counterpart for an issuer whose certificate no public CA signed: the provider's
    ``ca_file``, trusted for its discovery and JWKS requests only. Without it, or with another
    CA's bundle, the issuer's certificate is refused and the token with it (IDPCommunicationError).
    """
    assert "SSL_CERT_FILE" not in os.environ or Path(os.environ["SSL_CERT_FILE"]) != ca.cert_file
    assert tls_idp.issuer.startswith("https://127.0.0.1:")
    assert await _authenticate(tls_idp, ca_file=str(ca.cert_file)) == "ci-job"
    assert tls_idp.discovery_fetches == 1 and tls_idp.jwks_fetches == 1  # both over TLS
    with pytest.raises(IDPCommunicationError):
        await _authenticate(tls_idp)  # the system store does not know the test CA
    with TestCA(name="another CA") as other, pytest.raises(IDPCommunicationError):
        await _authenticate(tls_idp, ca_file=str(other.cert_file))
    assert tls_idp.jwks_fetches == 1  # the refused handshakes never reached the endpoint


async def test_ca_file_still_checks_the_host_name(issuer_keys: dict[str, Any], ca: TestCA) -> None:
    """Trusting a CA is not trusting any name it signed: a certificate for another host fails."""
    async with OIDCTestIssuer(keys=issuer_keys, tls=ca.server_context(hosts=("idp.internal.test",))) as idp:
        with pytest.raises(IDPCommunicationError):
            await _authenticate(idp, ca_file=str(ca.cert_file))


@pytest.mark.parametrize("content", [None, b"", b"not a certificate\n"], ids=["missing", "empty", "garbage"])
def test_unusable_ca_file_is_a_config_error(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValidationError) as info:
        OIDCProviderSettings.model_validate(
            {"type": "oidc", "issuer": "https://idp.example.com", "audiences": ["a"], "ca_file": str(path)}
        )
    assert "ca_file" in str(info.value) and "cannot load CA certificates" in str(info.value)
