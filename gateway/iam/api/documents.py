"""Policy documents as the IAM API takes and returns them: validated, measured, URL-encoded.

Every document an action stores is first validated by the one policy engine
(:func:`gateway.policy.parse_policy`, ``MalformedPolicyDocument`` naming the offending element)
in the role it will play (identity, trust), then measured as IAM measures it against its quotas:
**without white space** (``LimitExceeded`` over the limit). Documents are stored as the exact text
given and returned URL-encoded, as IAM returns them (botocore and the Terraform provider decode
them; a raw ``%`` or ``+`` would not survive their decoding).

A document the configuration file declares is a decoded mapping; :func:`config_text` gives the
text the API shows for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from gateway.errors import LimitExceeded
from gateway.policy import minify, parse_policy
from gateway.policy.model import PolicyKind

__all__ = [
    "MANAGED_POLICY_CHARS",
    "ROLE_INLINE_CHARS",
    "TRUST_POLICY_CHARS",
    "checked",
    "config_text",
    "encoded",
    "iam_size",
    "total_size",
]

#: A managed policy version's quota (characters, white space not counted).
MANAGED_POLICY_CHARS = 6_144
#: All of a role's inline policies together.
ROLE_INLINE_CHARS = 10_240
#: A role's trust policy (AWS's default quota, ``ACLSizePerRole``).
TRUST_POLICY_CHARS = 2_048


def iam_size(text: str) -> int:
    """The characters IAM counts against a size quota: those of the compact JSON (white space
    between tokens not counted), as the inline policies' quotas count them."""
    return len(minify(text))


def checked(text: str, *, kind: PolicyKind, name: str, limit: int, quota: str) -> str:
    """``text`` if it is a valid ``kind`` policy within ``limit``; raises MalformedPolicyDocument
    or ``LimitExceeded`` (naming ``quota``, as IAM's message does)."""
    parse_policy(text, kind=kind, name=name)  # JSON, then: minify can read it
    if iam_size(text) > limit:
        raise LimitExceeded(f"Cannot exceed quota for {quota}: {limit}")
    return text


def total_size(texts: Iterable[str]) -> int:
    """The size of several documents together (a principal's inline policies)."""
    return sum(iam_size(t) for t in texts)


def encoded(text: str) -> str:
    """A document as IAM returns it: URL-encoded."""
    return quote(text, safe="")


def config_text(document: Mapping[str, Any]) -> str:
    """The text shown for a document the configuration file declares."""
    return json.dumps(document, indent=4)
