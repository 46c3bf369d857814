"""Issuing and validating temporary credentials, and revoking sessions.

Validation is stateless but for revocations: a token opens under the key ring, its sealed access key
id must match the presented one, it must not have expired, and it must not predate a revocation
cutoff of any scope it falls under: its role (a role session) or its user (the user kinds), the
long-term access key that asked for it, and the same for every session it descends from. Cutoffs
are recorded in the IAM database (where they only move forward) and every replica holds all of
them in memory (:class:`~gateway.credentials.revocation.Revocations`), so validation does no I/O,
and refuses with ``ServiceUnavailable`` while that state is not current.
"""

from __future__ import annotations

import base64
import hmac
import math
import secrets
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast, final

from gateway.arns import parse_role_arn, parse_user_arn
from gateway.credentials.claims import (
    ROLE_SESSION,
    USER_SESSION,
    ClaimValue,
    PrincipalKind,
    SessionClaims,
    decode_claims,
    encode_claims,
    role_facts,
)
from gateway.credentials.keyring import MAX_TOKEN_CHARS, KeyRing, invalid_token
from gateway.credentials.revocation import ACCESS_KEY, ROLE, USER, Revocations, RevocationWriter
from gateway.errors import (
    ExpiredRequestToken,
    InvalidClientTokenId,
    PackedPolicyTooLarge,
    UnreadableSessionToken,
)
from gateway.policy import minify

#: How many opened session tokens are remembered by default (each about 2 KiB of claims).
OPENED_TOKEN_CACHE = 4096

__all__ = [
    "CredentialService",
    "IssuedCredentials",
    "new_access_key_id",
    "new_secret_access_key",
    "revocation_scopes",
    "revoke_role_sessions",
    "revoke_user_sessions",
]

_KEY_ID_CHARS = bytes(ord("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[b & 31]) for b in range(256))
_RAW, _ZLIB = 0, 1
_WINDOW_BITS, _MEM_LEVEL = 12, 4
_MAX_PLAINTEXT = 64 * 1024


def new_access_key_id() -> str:
    """A temporary access key id: ``ASIA`` and 16 random characters of ``[A-Z2-7]``."""
    # Each random byte picks a character by its low 5 bits: 256 is a multiple of 32, so every
    # character is uniform and independent, and bytes.translate does it in C.
    return "ASIA" + secrets.token_bytes(16).translate(_KEY_ID_CHARS).decode("ascii")


def new_secret_access_key() -> str:
    """A secret access key: 40 random characters of ``[A-Za-z0-9+/]`` (240 bits), as AWS issues."""
    return base64.b64encode(secrets.token_bytes(30)).decode("ascii")


@final
@dataclass(frozen=True, slots=True)
class IssuedCredentials:
    """Credentials handed to a caller; ``repr`` hides the secret key and the token."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime
    claims: SessionClaims


def _pack(claims: SessionClaims) -> bytes:
    # zlib saves ~20-30% on typical claims (ARNs and URLs repeat), but not on tiny ones: keep the
    # smaller of the two, flagged by the first byte. A 4 KiB window and small hash table compress
    # claims as well as the defaults (what repeats is close by) at half the cost: zlib's set-up of
    # its default 32 KiB window dominated compressing a few hundred bytes. Any zlib reader opens it.
    body = encode_claims(claims)
    deflate = zlib.compressobj(6, zlib.DEFLATED, _WINDOW_BITS, _MEM_LEVEL)
    packed = deflate.compress(body) + deflate.flush()
    return bytes([_ZLIB]) + packed if len(packed) < len(body) else bytes([_RAW]) + body


def _unpack(plaintext: bytes) -> SessionClaims:
    if not plaintext:
        raise ValueError("empty")
    body = plaintext[1:]
    if plaintext[0] == _ZLIB:
        inflater = zlib.decompressobj()
        body = inflater.decompress(body, _MAX_PLAINTEXT)
        if inflater.unconsumed_tail or not inflater.eof:
            raise ValueError("compressed claims too large or truncated")
    elif plaintext[0] != _RAW:
        raise ValueError("unknown encoding")
    return decode_claims(body)


def _link_kind(arn: str) -> str:
    # A chain link is a role (arn:...:iam::ACCOUNT:role/...) or, first in a chain that starts at
    # a user's own session, a user (...:user/...).
    return USER if arn.split(":", 5)[-1].startswith("user/") else ROLE


def revocation_scopes(claims: SessionClaims) -> list[tuple[str, str, float]]:
    """Every ``(kind, scope, issued_at)`` whose revocation cutoff revokes the session ``claims``
    describe: its role or its user, each session it descends from, and the long-term access key
    that asked for it (or for the user's session its chain starts at), each with the issue time
    of the session that scope covers."""
    scopes = [
        (ROLE, claims.role_arn, claims.issued_at)
        if claims.principal == ROLE_SESSION
        else (USER, claims.user_arn, claims.issued_at)
    ]
    scopes += [(_link_kind(arn), arn, at) for arn, at in claims.chain]
    if claims.source_key_id:
        origin = min((at for _, at in claims.chain), default=claims.issued_at)
        scopes.append((ACCESS_KEY, claims.source_key_id, origin))
    return scopes


@final
class CredentialService:
    """Mints sealed session credentials and validates them on every signed request.

    Args:
        keyring: the keys that seal and open session tokens.
        revocations: this replica's revocation state (fed from the IAM database by the gateway;
            :meth:`Revocations.local` for a single process with nothing to share).
        clock: epoch seconds, for issuing.
    """

    def __init__(
        self,
        keyring: KeyRing,
        revocations: Revocations,
        *,
        opened_cache_size: int = OPENED_TOKEN_CACHE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if opened_cache_size < 0:
            raise ValueError("opened_cache_size must not be negative")
        self._opened_max = opened_cache_size
        self._keyring = keyring
        self._revocations = revocations
        self._clock = clock
        # Opened tokens by their exact text: a client signs many requests with one session, and
        # decrypting and decoding it again each time was a third of a proxied request's cost. Only
        # tokens that opened under our key ring get here; expiry and revocation are still checked
        # on every call.
        self._opened: OrderedDict[str, SessionClaims] = OrderedDict()

    def __repr__(self) -> str:
        return f"CredentialService(keyring={self._keyring!r}, revocations={self._revocations!r})"

    def issue(
        self,
        *,
        role_arn: str,
        session_name: str,
        duration_seconds: int,
        account_id: str | None = None,
        role_name: str | None = None,
        provider_arn: str = "",
        subject: str = "",
        audience: str = "",
        session_policy: str | Mapping[str, Any] | None = None,
        policy_arns: Iterable[str] = (),
        tags: Mapping[str, str] | None = None,
        transitive_tag_keys: Iterable[str] = (),
        source_identity: str | None = None,
        mfa_authenticated: bool = False,
        mfa_at: float | None = None,
        identity_claims: Mapping[str, ClaimValue | list[str]] | None = None,
        chain: Iterable[tuple[str, float]] = (),
        source_key_id: str = "",
        now: float | None = None,
    ) -> IssuedCredentials:
        """Mint credentials for a session of ``role_arn`` lasting ``duration_seconds``.

        The caller (the STS action) has already checked the trust policy and the parameters' AWS
        limits. ``account_id`` and ``role_name`` are implied by the ARN; when given they must agree
        with it. Raises ``ValueError`` for a malformed role ARN or duration, and
        :class:`~gateway.errors.PackedPolicyTooLarge` when the session policy, tags and claims do
        not fit in a token. ``chain`` is what a chained session descends from
        (:attr:`SessionClaims.chain`), ``source_key_id`` the long-term key its chain started with.
        """
        arn_account, arn_role_name, role_id = role_facts(role_arn)
        if account_id not in (None, arn_account) or role_name not in (None, arn_role_name):
            raise ValueError("account_id and role_name must match the role ARN")
        if duration_seconds <= 0:
            raise ValueError("duration_seconds must be positive")
        issued = self._clock() if now is None else now
        claims = SessionClaims(
            account_id=arn_account,
            role_arn=role_arn,
            role_name=arn_role_name,
            role_id=role_id,
            session_name=session_name,
            access_key_id=new_access_key_id(),
            secret_access_key=new_secret_access_key(),
            # Millisecond precision: a revocation at T must not catch sessions issued just after T.
            issued_at=round(issued, 3),
            expires_at=float(math.floor(issued + duration_seconds)),
            session_policy=minify(session_policy) if session_policy is not None else None,
            policy_arns=tuple(policy_arns),
            tags=dict(tags or {}),
            transitive_tag_keys=tuple(transitive_tag_keys),
            provider_arn=provider_arn,
            subject=subject,
            audience=audience,
            source_identity=source_identity,
            mfa_authenticated=mfa_authenticated,
            mfa_at=mfa_at if mfa_authenticated else None,
            # Copied and frozen (lists to tuples) by SessionClaims itself.
            identity_claims=cast(Mapping[str, ClaimValue], identity_claims or {}),
            chain=tuple(chain),
            source_key_id=source_key_id,
        )
        return self._seal(claims)

    def issue_user_session(
        self,
        *,
        principal: PrincipalKind,
        user_arn: str,
        user_id: str,
        source_key_id: str,
        name: str,
        duration_seconds: int,
        now: float,
        session_policy: str | Mapping[str, Any] | None = None,
        policy_arns: Iterable[str] = (),
        tags: Mapping[str, str] | None = None,
        mfa_at: float | None = None,
    ) -> IssuedCredentials:
        """Mint credentials for an IAM user's own session (``GetSessionToken``: ``principal`` is
        ``"user"``, ``name`` the user's name) or a federated user's (``GetFederationToken``:
        ``"federated-user"``, ``name`` the federated user's), asked for with the long-term key
        ``source_key_id``. ``mfa_at`` is when fedgate checked the user's MFA code, if it did.

        The caller has checked the parameters' AWS limits; raises ``ValueError`` for a malformed
        user ARN or duration and :class:`~gateway.errors.PackedPolicyTooLarge` when the claims do
        not fit in a token.
        """
        if principal == ROLE_SESSION:
            raise ValueError("a role session is issued with issue()")
        _, account_id, user_name = parse_user_arn(user_arn)
        if duration_seconds <= 0:
            raise ValueError("duration_seconds must be positive")
        if not user_id or not source_key_id:
            raise ValueError("a user session needs the user's id and the key that asked for it")
        claims = SessionClaims(
            account_id=account_id,
            role_arn="",
            role_name="",
            role_id="",
            session_name=user_name if principal == USER_SESSION else name,
            access_key_id=new_access_key_id(),
            secret_access_key=new_secret_access_key(),
            issued_at=round(now, 3),
            expires_at=float(math.floor(now + duration_seconds)),
            session_policy=minify(session_policy) if session_policy is not None else None,
            policy_arns=tuple(policy_arns),
            tags=dict(tags or {}),
            mfa_authenticated=mfa_at is not None,
            mfa_at=mfa_at,
            principal=principal,
            user_arn=user_arn,
            user_id=user_id,
            source_key_id=source_key_id,
        )
        return self._seal(claims)

    def _seal(self, claims: SessionClaims) -> IssuedCredentials:
        token = self._keyring.seal(_pack(claims))
        if len(token) > MAX_TOKEN_CHARS:
            raise PackedPolicyTooLarge(
                "The session policy, tags and identity claims are too large to fit in a session token."
            )
        return IssuedCredentials(
            access_key_id=claims.access_key_id,
            secret_access_key=claims.secret_access_key,
            session_token=token,
            expiration=datetime.fromtimestamp(claims.expires_at, UTC),
            claims=claims,
        )

    async def validate(self, access_key_id: str, session_token: str, *, now: float) -> SessionClaims:
        """Return the claims of ``session_token`` if it is valid for ``access_key_id`` at ``now``.

        Raises :class:`~gateway.errors.InvalidClientTokenId` for a token that is oversized,
        garbled, tampered with, sealed under an unknown key, issued for another access key or
        revoked (itself, or a session of its chain); :class:`~gateway.errors.ExpiredRequestToken`
        once it has expired; and
        :class:`~gateway.errors.ServiceUnavailable` while the revocation state is not current.
        """
        claims = self._open(session_token)
        presented = access_key_id.encode("utf-8", errors="replace")
        if not hmac.compare_digest(presented, claims.access_key_id.encode("ascii")):
            raise invalid_token()
        if now >= claims.expires_at:
            raise ExpiredRequestToken("The security token included in the request is expired")
        revocations = self._revocations
        if not claims.chain and not claims.source_key_id:
            # The common case (a role session, unchained), without building the scope list.
            if revocations.is_revoked(ROLE, claims.role_arn, claims.issued_at):
                raise invalid_token()
            return claims
        # A chained session falls with any session it descends from.
        for kind, scope, issued_at in revocation_scopes(claims):
            if revocations.is_revoked(kind, scope, issued_at):
                raise invalid_token()
        return claims

    def _open(self, session_token: str) -> SessionClaims:
        opened = self._opened
        claims = opened.get(session_token)
        if claims is not None:
            opened.move_to_end(session_token)
            return claims
        try:
            plaintext = self._keyring.unseal(session_token)
        except InvalidClientTokenId:
            raise UnreadableSessionToken("The security token included in the request is invalid.") from None
        try:
            claims = _unpack(plaintext)
        except (ValueError, zlib.error):
            # Only a holder of our key could seal this: a bug or a version skew, never trusted.
            raise invalid_token() from None
        if self._opened_max:
            opened[session_token] = claims
            if len(opened) > self._opened_max:
                opened.popitem(last=False)
        return claims

    async def revoke_role_sessions(self, role_arn: str, before: float) -> None:
        """Revoke every session of ``role_arn`` issued before ``before`` (epoch seconds).

        Recorded durably first (a failure raises and changes nothing), then applied here at once;
        every other replica applies it when it learns of the database's new revision. Cutoffs only
        move forward.
        """
        parse_role_arn(role_arn)
        await self._revocations.revoke(ROLE, role_arn, before)


async def revoke_role_sessions(writer: RevocationWriter, role_arn: str, before: float) -> float:
    """Record with ``writer`` (the IAM database) that sessions of ``role_arn`` issued before
    ``before`` are revoked.

    For operators' tools that share the gateway's database (``fedgate revoke-sessions``); every
    replica refuses those sessions once it sees the new revision. Returns the cutoff in force,
    which only moves forward.
    """
    parse_role_arn(role_arn)
    return await writer.raise_cutoff(ROLE, role_arn, before)


async def revoke_user_sessions(writer: RevocationWriter, user_arn: str, before: float) -> float:
    """Record with ``writer`` that the sessions the IAM user ``user_arn`` asked for before
    ``before`` (``GetSessionToken`` and ``GetFederationToken`` sessions, and every session chained
    from them) are revoked. Returns the cutoff in force, which only moves forward."""
    parse_user_arn(user_arn)
    return await writer.raise_cutoff(USER, user_arn, before)
