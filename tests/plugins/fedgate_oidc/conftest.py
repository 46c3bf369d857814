"""Fixtures for the OIDC plugin's tests: a live issuer with keys made once per module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey

from gateway.testing import OIDCTestIssuer


@pytest.fixture(scope="module")
def issuer_keys() -> dict[str, Any]:
    """Keys generated once per module (RSA generation is the slow part); each test gets its own issuer."""
    return {
        "rsa-1": RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True),
        "ec-1": ECKey.generate_key("P-256", parameters={"kid": "ec-1"}, private=True),
    }


@pytest.fixture()
async def idp(issuer_keys: dict[str, Any]) -> AsyncIterator[OIDCTestIssuer]:
    async with OIDCTestIssuer(keys=issuer_keys) as issuer:
        yield issuer
