"""STS-style temporary credentials with stateless validation.

:class:`CredentialService` mints an access key pair and a session token sealed under the
:class:`KeyRing` (AES-256-GCM), carrying the :class:`SessionClaims` later authorization needs, and
validates them on each signed request with no I/O: revocations are held in memory by
:class:`Revocations`, fed from the IAM database. Pure domain code: no aiohttp.
"""

from __future__ import annotations

from gateway.credentials.claims import SessionClaims, role_id_for
from gateway.credentials.keyring import MAX_TOKEN_CHARS, KeyRing
from gateway.credentials.revocation import Revocations, RevocationWriter
from gateway.credentials.service import (
    CredentialService,
    IssuedCredentials,
    new_access_key_id,
    new_secret_access_key,
    revocation_scopes,
    revoke_role_sessions,
    revoke_user_sessions,
)

__all__ = [
    "MAX_TOKEN_CHARS",
    "CredentialService",
    "IssuedCredentials",
    "KeyRing",
    "RevocationWriter",
    "Revocations",
    "SessionClaims",
    "new_access_key_id",
    "new_secret_access_key",
    "revocation_scopes",
    "revoke_role_sessions",
    "revoke_user_sessions",
    "role_id_for",
]
