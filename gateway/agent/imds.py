"""IMDSv2 session tokens, as EC2's instance metadata service hands them out.

``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds: 1..21600`` returns a token;
every other request must carry it in ``X-aws-ec2-metadata-token``. Requiring a PUT with a custom
header is what keeps a browser page (DNS rebinding) and a naive server-side request forgery from
reading credentials, and IMDS refuses a request carrying ``X-Forwarded-For``, which only a proxy
adds.

Tokens are stateless: the expiry and a nonce, authenticated with HMAC-SHA256 under a key made at
start. Nothing is stored per token, so a flood of PUTs costs no memory; a restart ends every token,
as a reboot does on EC2 (the SDKs simply ask for a new one).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
import time
from collections.abc import Callable
from typing import Final, final

from gateway.agent.errors import BadRequest

__all__ = ["MAX_TTL", "TOKEN_HEADER", "TTL_HEADER", "ImdsTokens", "parse_ttl"]

TTL_HEADER: Final = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER: Final = "X-aws-ec2-metadata-token"  # noqa: S105 - a header name
MAX_TTL: Final = 21600
_PAYLOAD: Final = struct.Struct(">Q16s")  # expiry (POSIX seconds), nonce
_MAX_TOKEN_CHARS: Final = 128


def parse_ttl(raw: str | None) -> int:
    """The TTL header's value, 1..21600; raises :class:`BadRequest` as IMDS answers 400."""
    if raw is None:
        raise BadRequest(f"{TTL_HEADER} is required")
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_TTL:
        raise BadRequest(f"{TTL_HEADER} must be an integer between 1 and {MAX_TTL}")
    return int(text)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@final
class ImdsTokens:
    """Issues and checks IMDSv2 session tokens."""

    def __init__(self, *, clock: Callable[[], float] = time.time, key: bytes | None = None) -> None:
        self._clock = clock
        self._key = key or secrets.token_bytes(32)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def issue(self, ttl: int) -> str:
        """A token valid for ``ttl`` seconds."""
        payload = _PAYLOAD.pack(int(self._clock()) + ttl, secrets.token_bytes(16))
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def valid(self, token: str | None) -> bool:
        """Whether ``token`` was issued here and has not expired."""
        if not token or len(token) > _MAX_TOKEN_CHARS or not token.isascii():
            return False
        encoded, sep, mac = token.partition(".")
        if not sep:
            return False
        try:
            payload, signature = _unb64(encoded), _unb64(mac)
        except (binascii.Error, ValueError):
            return False
        if len(payload) != _PAYLOAD.size or _b64(payload) != encoded or _b64(signature) != mac:
            return False  # one spelling per token: the decoder would skip stray characters
        if not hmac.compare_digest(signature, self._mac(payload)):
            return False
        expiry, _nonce = _PAYLOAD.unpack(payload)
        return bool(self._clock() < expiry)
