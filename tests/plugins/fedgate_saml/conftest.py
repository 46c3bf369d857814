"""Fixtures for the SAML provider: a pysaml2-built IdP with real keys, and providers trusting it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from lxml import etree

from fedgate_saml import SAMLProvider, SAMLProviderSettings
from gateway.identity import ProviderContext
from gateway.store.base import Store
from gateway.testing.saml import DS_NS, SAML_NS, SAMLTestIdP
from tests.conftest import running_memory_store

ACCOUNT = "123456789012"
PROVIDER = "corp"
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:saml-provider/{PROVIDER}"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/Engineers"
Make = Callable[..., Awaitable[SAMLProvider]]


class Clock:
    """A wall clock (and a monotonic one) tests can move."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture(scope="module")
def idp() -> Iterator[SAMLTestIdP]:
    """The trusted IdP (one RSA key), shared by a module: key generation is the slow part."""
    with SAMLTestIdP() as test_idp:
        yield test_idp


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
async def make(idp: SAMLTestIdP, clock: Clock) -> AsyncIterator[Make]:
    """Build started providers trusting ``idp``; keyword arguments override settings.

    ``store=`` gives the store (default: a MemoryStore per provider, running for an hour).
    """
    providers: list[SAMLProvider] = []

    async def build(*, store: Store | None = None, **overrides: Any) -> SAMLProvider:
        settings = SAMLProviderSettings(**{**idp.provider_config(PROVIDER), **overrides})
        provider = SAMLProvider(
            settings,
            ProviderContext(ACCOUNT, store or running_memory_store(), leeway=60),
            clock=clock,
            monotonic=clock.monotonic,
        )
        await provider.start()
        providers.append(provider)
        return provider

    yield build
    for provider in providers:
        await provider.close()


@pytest.fixture()
async def provider(make: Make) -> SAMLProvider:
    return await make()


def restamped(idp: SAMLTestIdP, xml: bytes, *, issued_ago: float = 0, valid_for: float = 3600) -> bytes:
    """``xml`` (a response with no signature) with its assertion issued ``issued_ago`` seconds ago
    and its NotOnOrAfter times ``valid_for`` seconds from now, then signed by ``idp``.

    pysaml2 ties NotOnOrAfter to IssueInstant (five minutes apart); this pulls them apart, as a
    lax IdP or an attacker holding an old but long-lived assertion would.
    """
    now = time.time()

    def stamp(at: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))

    root = etree.fromstring(xml)
    assertion = root.find(f"{{{SAML_NS}}}Assertion")
    assert assertion is not None and root.find(f"{{{DS_NS}}}Signature") is None
    root.set("IssueInstant", stamp(now - issued_ago))
    assertion.set("IssueInstant", stamp(now - issued_ago))
    for element in assertion.iter(f"{{{SAML_NS}}}SubjectConfirmationData", f"{{{SAML_NS}}}Conditions"):
        element.set("NotOnOrAfter", stamp(now + valid_for))
        if element.get("NotBefore") is not None:
            element.set("NotBefore", stamp(now - issued_ago))
    return idp.sign_element(etree.tostring(root), assertion.get("ID", ""))
