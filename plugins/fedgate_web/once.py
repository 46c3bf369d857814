"""One-time values of web sign-in that say when they were issued, and spending them once.

Every one-time value fedgate hands out for sign-in (OIDC ``state``, SAML request IDs, the SAML
hand-off handle, CLI codes, CSRF nonces) starts with its issue time: :func:`stamped` prefixes the
random part with the time in hexadecimal milliseconds. The replay guard needs that time to refuse
a value that may have been spent before a store reset (see :mod:`gateway.store.replay`).

The stamp is neither secret nor signed on its own, and need not be: a value is worth something only
when its store record is found (the record's key is a hash of the whole value, stamp included) or
its MAC checks (CSRF nonces), so a value with an altered stamp is a value nobody issued. Spending
an invented value marks only that invented value.
"""

from __future__ import annotations

import hashlib
import re

from gateway.plugin import ReplayGuard

__all__ = ["digest", "issued_at", "spend", "stamped"]

_STAMP = re.compile(r"^([0-9a-f]{1,12})-.")


def digest(value: str) -> str:
    """A store key component for a secret value: the value itself is never a key."""
    return hashlib.sha256(value.encode()).hexdigest()


def stamped(now: float, token: str) -> str:
    """``token`` (random) prefixed with ``now`` (epoch seconds) as hexadecimal milliseconds."""
    return f"{int(now * 1000):x}-{token}"


def issued_at(value: str) -> float | None:
    """The issue time a :func:`stamped` value carries, or ``None`` if it carries none."""
    match = _STAMP.match(value)
    return int(match.group(1), 16) / 1000 if match else None


async def spend(replay: ReplayGuard, prefix: str, value: str, ttl: float) -> bool:
    """Spend the stamped ``value`` once (under ``prefix`` + a hash of it).

    ``False`` when it was spent before, carries no stamp, or was issued before the store's current
    generation began.
    """
    issued = issued_at(value)
    if issued is None:
        return False
    return await replay.spend(prefix + digest(value), ttl, issued)
