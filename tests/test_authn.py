"""Authenticating a signed request: the session is opened once, even when a body is read between."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from gateway.authn import authenticate, open_session
from gateway.credentials import CredentialService, KeyRing
from gateway.credentials.revocation import Revocations
from gateway.errors import InvalidClientTokenId
from gateway.sigv4 import HttpRequest, SigningKeyCache, sign

ROLE = "arn:aws:iam::123456789012:role/app"
NOW = 1_800_000_000.0


async def test_a_session_opened_before_buffering_the_body_is_not_opened_again() -> None:
    credentials = CredentialService(KeyRing({"k": secrets.token_bytes(32)}, "k"), Revocations.local())
    issued = credentials.issue(role_arn=ROLE, session_name="s", duration_seconds=3600, now=NOW)
    body = b"a body whose hash the signature covers"
    signed = sign(
        HttpRequest("POST", "/items", "", (("Host", "api.local"),)),
        access_key_id=issued.access_key_id,
        secret_key=issued.secret_access_key,
        session_token=issued.session_token,
        region="us-east-1",
        service="execute-api",
        now=datetime.fromtimestamp(NOW, UTC),
        payload_hash=hashlib.sha256(body).hexdigest(),
    )
    received = replace(signed, payload_sha256=None)
    keys = SigningKeyCache()

    opened = await open_session(received, credentials, now=NOW)
    # Revoked between the two steps: a second opening would see it, the one opening does not.
    await credentials.revoke_role_sessions(ROLE, before=NOW + 1)
    with_body = replace(received, payload_sha256=hashlib.sha256(body).hexdigest())
    result = await authenticate(
        with_body, credentials, now=NOW, region="us-east-1", service="execute-api", keys=keys, opened=opened
    )
    assert result.caller.access_key_id == issued.access_key_id  # checked on the session opened before

    with pytest.raises(InvalidClientTokenId):  # without it, authenticate opens the session itself
        await authenticate(
            with_body, credentials, now=NOW, region="us-east-1", service="execute-api", keys=keys
        )
