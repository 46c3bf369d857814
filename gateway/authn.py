"""Authenticating a SigV4-signed request made with credentials fedgate issued.

Transport-neutral: the STS endpoint and the reverse proxy both build a
:class:`gateway.sigv4.HttpRequest` and call :func:`authenticate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.credentials import CredentialService, SessionClaims
from gateway.errors import InvalidClientTokenId, MissingAuthenticationToken
from gateway.sigv4 import (
    HttpRequest,
    SignatureInfo,
    SigningKeyCache,
    Verified,
    parse_signature,
    signature_form,
    verify,
)

__all__ = ["Authenticated", "OpenedSession", "authenticate", "open_session"]


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A verified request: the session that signed it and what the signature covers."""

    claims: SessionClaims
    verified: Verified


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """A well-formed signature naming a valid session, before the signature itself is checked."""

    info: SignatureInfo
    claims: SessionClaims


async def open_session(request: HttpRequest, credentials: CredentialService, *, now: float) -> OpenedSession:
    """The checks that need no body: a well-formed signature naming a valid session.

    Cheap (no signature computed); callers that must buffer a body run it first, so an anonymous
    or garbled request cannot make them hold megabytes, and hand the result to
    :func:`authenticate` so the session is opened once.
    """
    if signature_form(request) is None:
        raise MissingAuthenticationToken("Request is missing Authentication Token")
    info = parse_signature(request)
    if info.security_token is None:
        # AWS's answer for a temporary key without its token too (S3 spells it InvalidAccessKeyId).
        raise InvalidClientTokenId("The security token included in the request is invalid.")
    claims = await credentials.validate(info.access_key_id, info.security_token, now=now)
    return OpenedSession(info, claims)


async def authenticate(
    request: HttpRequest,
    credentials: CredentialService,
    *,
    now: float,
    region: str,
    service: str,
    keys: SigningKeyCache,
    normalize_path: bool = True,
    opened: OpenedSession | None = None,
) -> Authenticated:
    """Verify the request's signature and session; return the session and what was signed.

    The signature is parsed first (cheap, no crypto), the session token is unsealed to learn the
    secret key, and only then is the signature checked. Any failure raises the AWS error a client
    SDK expects; nothing is returned for a request that is not fully verified. A presigned URL
    works only while its credentials do: an expired or revoked session is refused whatever
    ``X-Amz-Expires`` says. ``opened`` is what :func:`open_session` already returned for this
    request (whose signature does not depend on the body hash the caller added since).
    """
    if opened is None:
        opened = await open_session(request, credentials, now=now)
    info, claims = opened.info, opened.claims
    verified = verify(
        request,
        info,
        claims.secret_access_key,
        now=datetime.fromtimestamp(now, UTC),
        region=region,
        service=service,
        normalize_path=normalize_path,
        keys=keys,
    )
    return Authenticated(claims, verified)
