"""Time-based one-time passwords (RFC 6238) as authenticator apps compute them.

30-second steps counted from the Unix epoch, 6 digits, HMAC-SHA-1: the parameters every
authenticator app (and AWS's virtual MFA devices) use. The arithmetic is ``cryptography``'s
``twofactor.totp``; this module adds what a server needs around it: new seeds, the Base32 text
and ``otpauth://`` URI apps scan, and finding which step a code belongs to within a window, so that
one-time use can be tracked per step (:mod:`gateway.iam.mfa`). Pure: no I/O, no clock of its own.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from urllib.parse import quote

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

__all__ = [
    "DIGITS",
    "SEED_BYTES",
    "STEP_SECONDS",
    "base32_seed",
    "code_at",
    "is_code",
    "matching_step",
    "new_seed",
    "otpauth_uri",
    "step_of",
]

#: Seconds per time step.
STEP_SECONDS = 30
#: Digits of a code.
DIGITS = 6
#: Bytes of a new seed: 40, whose Base32 text is the 64 characters AWS's seeds have.
SEED_BYTES = 40


def new_seed() -> bytes:
    """A new random seed for a virtual MFA device."""
    return secrets.token_bytes(SEED_BYTES)


def base32_seed(seed: bytes) -> str:
    """The seed as the Base32 text (RFC 4648, no padding) an authenticator app is given."""
    return base64.b32encode(seed).decode("ascii").rstrip("=")


def otpauth_uri(device_name: str, account_name: str, seed: bytes) -> str:
    """The URI a QR code carries: ``otpauth://totp/NAME@ACCOUNT?secret=BASE32``, as AWS builds it
    (``account_name`` is the user's name once assigned, the account id before)."""
    label = quote(f"{device_name}@{account_name}", safe="@")
    return f"otpauth://totp/{label}?secret={base32_seed(seed)}"


def step_of(when: float) -> int:
    """The time step ``when`` (epoch seconds) falls in."""
    return int(when // STEP_SECONDS)


def _totp(seed: bytes, digits: int) -> TOTP:
    # SHA-1 is what authenticator apps compute TOTP with; under HMAC, collisions do not matter.
    return TOTP(seed, digits, SHA1(), STEP_SECONDS)  # noqa: S303 - HMAC-SHA-1 is RFC 6238's default


def code_at(seed: bytes, step: int, *, digits: int = DIGITS) -> str:
    """The code of time step ``step``."""
    return _totp(seed, digits).generate(step * STEP_SECONDS).decode("ascii")


def is_code(text: str, *, digits: int = DIGITS) -> bool:
    """Whether ``text`` has the shape of a code (``digits`` ASCII digits)."""
    return len(text) == digits and text.isascii() and text.isdigit()


def matching_step(
    seed: bytes, code: str, now: float, *, behind: int = 1, ahead: int = 1, digits: int = DIGITS
) -> int | None:
    """The step, from ``behind`` steps before ``now``'s to ``ahead`` after it, whose code is
    ``code``; ``None`` if none is. Every step of the window is compared, in constant time, so the
    answer takes as long whichever step matched (or none)."""
    if not is_code(code, digits=digits):
        return None
    current = step_of(now)
    given = code.encode("ascii")
    found: int | None = None
    totp = _totp(seed, digits)
    for step in range(current - behind, current + ahead + 1):
        if hmac.compare_digest(totp.generate(step * STEP_SECONDS), given) and found is None:
            found = step
    return found
