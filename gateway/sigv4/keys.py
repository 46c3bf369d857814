"""SigV4 signing-key derivation and a bounded cache of derived keys."""

from __future__ import annotations

import functools
import hmac
from typing import final

from gateway.sigv4.model import TERMINATOR

__all__ = ["SigningKeyCache", "derive_signing_key", "hmac_hex"]


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.digest(key, message.encode("utf-8"), "sha256")


def derive_signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """The SigV4 signing key: ``HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), ...)``."""
    k_date = _hmac(f"AWS4{secret_key}".encode(), date)
    k_region = _hmac(k_date, region)
    k_service = _hmac(k_region, service)
    return _hmac(k_service, TERMINATOR)


def hmac_hex(key: bytes, message: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``message`` under ``key``: the final signature step."""
    return hmac.digest(key, message.encode("utf-8"), "sha256").hex()


def _keyed(key: bytes) -> hmac.HMAC:
    return hmac.new(key, digestmod="sha256")


@final
class SigningKeyCache:
    """A bounded LRU of derived signing keys keyed on ``(secret, date, region, service)``.

    A key changes once a day per credential, so the hot path pays one HMAC (the signature) instead
    of five. Held by the application (one per process), not at module level; safe to share between
    threads (``functools.lru_cache`` locks internally). Entries hold secrets in memory only as long
    as the credentials themselves are in use.
    """

    def __init__(self, maxsize: int = 1024) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be positive")
        self._derive = functools.lru_cache(maxsize=maxsize)(derive_signing_key)
        self._keyed = functools.lru_cache(maxsize=maxsize)(_keyed)

    def get(self, secret_key: str, date: str, region: str, service: str) -> bytes:
        """The signing key for these parameters, derived on first use."""
        return self._derive(secret_key, date, region, service)

    def hmac_hex(self, key: bytes, message: str) -> str:
        """:func:`hmac_hex` of a key :meth:`get` gave: an HMAC set up with the key once and copied
        for each message (the set-up is a third of a signature's HMAC)."""
        mac = self._keyed(key).copy()
        mac.update(message.encode("utf-8"))
        return mac.hexdigest()

    def clear(self) -> None:
        """Forget every cached key (e.g. after a key-ring rotation)."""
        self._derive.cache_clear()
        self._keyed.cache_clear()

    def __len__(self) -> int:
        return self._derive.cache_info().currsize
