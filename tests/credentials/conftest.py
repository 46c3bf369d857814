"""Fixtures for the credential tests: key rings and a service (store fixtures are in tests/conftest.py)."""

from __future__ import annotations

import secrets

import pytest

from gateway.credentials import CredentialService, KeyRing, Revocations


@pytest.fixture
def keyring() -> KeyRing:
    """A ring with one active key."""
    return KeyRing({"k1": secrets.token_bytes(32)}, "k1")


@pytest.fixture
def service(keyring: KeyRing) -> CredentialService:
    """A credential service with process-local revocations."""
    return CredentialService(keyring, Revocations.local())
