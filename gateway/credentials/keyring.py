"""The key ring that seals session tokens, and the token format.

A token is ``base64url(header || nonce || AES-256-GCM(plaintext))`` without padding, where the
header is a version byte, the key id's length and the key id. The header is the associated data, so
the version and key id are authenticated though not secret. The nonce is 96 random bits.

Any key in the ring opens a token; only the active key seals, so keys rotate with overlap: add the
new key, make it active once every replica has it, drop the old one after the longest session.
Each AEAD key is derived from its configured secret with HKDF-SHA256 bound to the key id, so any
text of at least 32 bytes serves as a secret.

The same ring seals secrets at rest (access-key secrets, MFA seeds in the IAM database) with
:meth:`KeyRing.seal_value`: the associated data then also carries a purpose marker and the caller's
context (the row the value belongs to), so a value sealed at rest never opens as a session token, nor
as the value of another row. Encoded authorization messages (the explanation at the end of an
AccessDenied, read back by ``sts:DecodeAuthorizationMessage``) are sealed with
:meth:`KeyRing.seal_message` under a purpose of their own, so none opens as a token or a value at
rest, nor the other way round. Rotating the ring keeps such values readable while their key is listed;
:meth:`KeyRing.sealed_with` tells which key sealed one, so they can be sealed again under the new key.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
from collections.abc import Mapping
from typing import final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.config import KeyRingSettings
from gateway.errors import ConfigError, InvalidClientTokenId

__all__ = ["MAX_TOKEN_CHARS", "MIN_SECRET_BYTES", "KeyRing", "invalid_token"]

log = logging.getLogger(__name__)

TOKEN_VERSION = 1
MAX_TOKEN_CHARS = 8192
MIN_SECRET_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_-]+\Z")
_HKDF_SALT = b"fedgate session-token key v1"
_AT_REST = b"\x00fedgate at-rest value\x00"
_AUTHORIZATION_MESSAGE = b"\x00fedgate authorization message\x00"


def invalid_token() -> InvalidClientTokenId:
    """The one error for every token that does not open: it tells an attacker nothing."""
    return InvalidClientTokenId("The security token included in the request is invalid.")


def _derive(key_id: str, secret: bytes) -> AESGCM:
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=b"fedgate/token/" + key_id.encode()
    )
    return AESGCM(hkdf.derive(secret))


@final
class KeyRing:
    """Sealing keys by id, one of them active.

    ``secrets`` maps key ids (1-64 of ``[A-Za-z0-9_-]``) to secret material of at least 32 bytes.
    """

    def __init__(self, secrets_by_id: Mapping[str, bytes], active: str) -> None:
        if active not in secrets_by_id:
            raise ValueError("the active key id is not in the ring")
        self._keys: dict[str, AESGCM] = {}
        for key_id, secret in secrets_by_id.items():
            if not _KEY_ID.match(key_id):
                raise ValueError("key ids are 1-64 characters of letters, digits, _ and -")
            if len(secret) < MIN_SECRET_BYTES:
                raise ValueError(f"key secrets must be at least {MIN_SECRET_BYTES} bytes")
            self._keys[key_id] = _derive(key_id, secret)
        self._active = active
        self._header = bytes([TOKEN_VERSION, len(active)]) + active.encode()

    @classmethod
    def from_settings(cls, settings: KeyRingSettings | None) -> KeyRing:
        """Build the ring from configuration, or an ephemeral one when there is none.

        Raises :class:`~gateway.errors.ConfigError` naming ``keyring.keys[i].secret`` when a secret
        cannot be read or is shorter than 32 bytes.
        """
        if settings is None:
            return cls.ephemeral()
        material: dict[str, bytes] = {}
        for i, key in enumerate(settings.keys):
            where = f"keyring.keys[{i}].secret"
            try:
                secret = key.secret.resolve().get_secret_value().encode()
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            if len(secret) < MIN_SECRET_BYTES:
                raise ConfigError(f"{where}: must be at least {MIN_SECRET_BYTES} bytes")
            material[key.id] = secret
        return cls(material, settings.active)

    @classmethod
    def ephemeral(cls) -> KeyRing:
        """One random key, for a single process that has no configured key ring."""
        log.warning(
            "No keyring configured: session tokens are sealed with a random key, so they will not "
            "survive a restart nor work across replicas."
        )
        key_id = "eph-" + secrets.token_hex(6)
        return cls({key_id: secrets.token_bytes(32)}, key_id)

    @property
    def active_id(self) -> str:
        """Id of the key new tokens are sealed with."""
        return self._active

    @property
    def key_ids(self) -> frozenset[str]:
        """Ids of every key that opens tokens."""
        return frozenset(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing(active={self._active!r}, keys={sorted(self._keys)!r})"

    def seal(self, plaintext: bytes) -> str:
        """Encrypt and authenticate ``plaintext`` under the active key; return the token text."""
        return self._seal(plaintext, b"")

    def unseal(self, token: str) -> bytes:
        """Open ``token``; raise :class:`~gateway.errors.InvalidClientTokenId` if it does not open.

        The size is checked before anything is decoded, and only the canonical encoding of a
        sealed value is accepted.
        """
        return self._unseal(token, b"")

    def seal_value(self, plaintext: bytes, context: bytes) -> str:
        """Seal a secret kept at rest, bound to ``context`` (e.g. ``b"access-key/AKIA..."``)."""
        return self._seal(plaintext, _AT_REST + context)

    def unseal_value(self, sealed: str, context: bytes) -> bytes:
        """Open a value sealed by :meth:`seal_value` with the same ``context``.

        Raises :class:`~gateway.errors.InvalidClientTokenId` when it does not open (another context,
        a key no longer in the ring, tampering); callers translate that for their own use.
        """
        return self._unseal(sealed, _AT_REST + context)

    def seal_message(self, plaintext: bytes) -> str:
        """Seal an encoded authorization message (see the module docstring)."""
        return self._seal(plaintext, _AUTHORIZATION_MESSAGE)

    def unseal_message(self, sealed: str) -> bytes:
        """Open what :meth:`seal_message` sealed; InvalidClientTokenId when it does not open."""
        return self._unseal(sealed, _AUTHORIZATION_MESSAGE)

    def sealed_with(self, sealed: str) -> str | None:
        """The id of the key that sealed ``sealed`` (read from its header, nothing decrypted), or
        ``None`` when it is not a sealed value at all."""
        try:
            raw = self._decode(sealed)
        except InvalidClientTokenId:
            return None
        return raw[2 : 2 + raw[1]].decode("ascii", errors="replace")

    def _seal(self, plaintext: bytes, extra: bytes) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._keys[self._active].encrypt(nonce, plaintext, self._header + extra)
        return base64.urlsafe_b64encode(self._header + nonce + sealed).rstrip(b"=").decode("ascii")

    def _decode(self, token: str) -> bytes:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or len(token) % 4 == 1:
            raise invalid_token()
        if not _TOKEN_CHARS.match(token):
            raise invalid_token()
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise invalid_token() from None
        # Unused trailing bits would let several texts name one token; accept only the canonical one.
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
            raise invalid_token()
        if len(raw) < 2 or raw[0] != TOKEN_VERSION:
            raise invalid_token()
        if len(raw) < 2 + raw[1] + _NONCE_BYTES + _TAG_BYTES:
            raise invalid_token()
        return raw

    def _unseal(self, token: str, extra: bytes) -> bytes:
        raw = self._decode(token)
        header_end = 2 + raw[1]
        aead = self._keys.get(raw[2:header_end].decode("ascii", errors="replace"))
        if aead is None:
            raise invalid_token()
        nonce = raw[header_end : header_end + _NONCE_BYTES]
        try:
            return aead.decrypt(nonce, raw[header_end + _NONCE_BYTES :], raw[:header_end] + extra)
        except InvalidTag:
            raise invalid_token() from None
