"""Authenticating a SigV4-signed request made with credentials fedgate issued or holds.

Two kinds of credentials sign requests: a role session (an ``ASIA...`` key with its session token,
whose sealed claims carry the secret) and an IAM user's long-term access key (``AKIA...``, no
token; the secret comes from the catalog through :class:`~gateway.iam.accesskeys.AccessKeys`).
Either way the result is a :class:`~gateway.iam.caller.Caller`. Transport-neutral: the Query
endpoint and the reverse proxy both build a :class:`gateway.sigv4.HttpRequest` and call
:func:`authenticate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.credentials import CredentialService, SessionClaims
from gateway.errors import InvalidClientTokenId, MissingAuthenticationToken
from gateway.iam.accesskeys import AccessKeys
from gateway.iam.caller import Caller
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
    """A verified request: who signed it and what the signature covers."""

    caller: Caller
    verified: Verified


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """A well-formed signature naming valid credentials, before the signature itself is checked."""

    info: SignatureInfo
    caller: Caller
    secret_access_key: str = field(repr=False)


async def open_session(
    request: HttpRequest, credentials: CredentialService, *, now: float, access_keys: AccessKeys | None = None
) -> OpenedSession:
    """The checks that need no body: a well-formed signature naming valid credentials.

    Cheap (no signature computed); callers that must buffer a body run it first, so an anonymous
    or garbled request cannot make them hold megabytes, and hand the result to
    :func:`authenticate` so the credentials are opened once. A long-term key is looked up in
    ``access_keys`` (``None``: none are accepted).
    """
    if signature_form(request) is None:
        raise MissingAuthenticationToken("Request is missing Authentication Token")
    info = parse_signature(request)
    if info.security_token is None:
        if info.access_key_id.startswith("AKIA") and access_keys is not None:
            caller, secret = access_keys.resolve(info.access_key_id)
            return OpenedSession(info, caller, secret)
        # AWS's answer for a temporary key without its token too (S3 spells it InvalidAccessKeyId).
        raise InvalidClientTokenId("The security token included in the request is invalid.")
    claims = await credentials.validate(info.access_key_id, info.security_token, now=now)
    return OpenedSession(info, _caller_of(claims), claims.secret_access_key)


# The credential service hands out one claims object per token while it stays cached, so the
# caller a session is can be built once: keyed by the object, which the caller holds (so its id
# cannot be reused while the entry lives), checked by identity.
_CALLERS: dict[int, Caller] = {}
_CALLERS_MAX = 4096


def _caller_of(claims: SessionClaims) -> Caller:
    caller = _CALLERS.get(id(claims))
    if caller is not None and caller.session is claims:
        return caller
    caller = Caller.of_session(claims)
    if len(_CALLERS) >= _CALLERS_MAX:
        _CALLERS.clear()
    _CALLERS[id(claims)] = caller
    return caller


async def authenticate(
    request: HttpRequest,
    credentials: CredentialService,
    *,
    now: float,
    region: str,
    service: str,
    keys: SigningKeyCache,
    access_keys: AccessKeys | None = None,
    normalize_path: bool = True,
    opened: OpenedSession | None = None,
) -> Authenticated:
    """Verify the request's signature and credentials; return the caller and what was signed.

    The signature is parsed first (cheap, no crypto), the session token is unsealed (or the
    long-term key looked up) to learn the secret key, and only then is the signature checked. Any
    failure raises the AWS error a client SDK expects; nothing is returned for a request that is
    not fully verified. A presigned URL works only while its credentials do: an expired or revoked
    session, or a key made inactive, is refused whatever ``X-Amz-Expires`` says. ``opened`` is
    what :func:`open_session` already returned for this request (whose signature does not depend
    on the body hash the caller added since). A verified use of a long-term key is noted for
    ``GetAccessKeyLastUsed``.
    """
    if opened is None:
        opened = await open_session(request, credentials, now=now, access_keys=access_keys)
    info, caller = opened.info, opened.caller
    verified = verify(
        request,
        info,
        opened.secret_access_key,
        now=datetime.fromtimestamp(now, UTC),
        region=region,
        service=service,
        normalize_path=normalize_path,
        keys=keys,
    )
    if caller.session is None and access_keys is not None:
        access_keys.used(caller.access_key_id, service=service, region=region)
    return Authenticated(caller, verified)
