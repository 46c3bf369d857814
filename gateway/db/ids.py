"""Entity ids as AWS spells them: a four-letter prefix and random characters of ``[A-Z2-7]``.

Users ``AIDA``, groups ``AGPA``, roles ``AROA``, managed policies ``ANPA`` and instance profiles
``AIPA`` take 17 characters (85 random bits); long-term access keys ``AKIA`` take 16 (80 bits), the
same length as the ``ASIA`` keys of sessions.
"""

from __future__ import annotations

import secrets
from typing import Literal

__all__ = ["EntityPrefix", "new_entity_id", "new_long_term_access_key_id"]

EntityPrefix = Literal["AIDA", "AGPA", "AROA", "ANPA", "AIPA"]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _random(count: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(count))


def new_entity_id(prefix: EntityPrefix) -> str:
    """A new unique id for an IAM entity, e.g. ``AIDA`` and 17 characters for a user."""
    return prefix + _random(17)


def new_long_term_access_key_id() -> str:
    """A new long-term access key id: ``AKIA`` and 16 characters."""
    return "AKIA" + _random(16)
