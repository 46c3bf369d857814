"""What verified claims become: trust-policy condition keys and session tags (pure, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from gateway.errors import InvalidIdentityToken

__all__ = ["TAGS_CLAIM", "condition_keys", "flat_claims", "session_tags"]

#: The claim AWS reads session tags from.
TAGS_CLAIM: Final = "https://aws.amazon.com/tags"
_MAX_TAGS: Final = 50
# AWS tag keys: letters, digits, whitespace and _ . : / = + - @ (Unicode letters and digits allowed).
_TAG_KEY: Final = re.compile(r"[\w\s.:/=+\-@]{1,128}")

Scalar = str | int | float | bool


def flat_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The claims whose value is a string, number, boolean or a list of those (nested objects dropped)."""
    # A tuple of types, not a union, and no helper call per claim: this runs on every token.
    scalar = (str, int, float)  # bool is an int
    return {
        name: value
        for name, value in claims.items()
        if isinstance(value, scalar)
        or (isinstance(value, list) and all(isinstance(v, scalar) for v in value))
    }


def _render(value: Scalar) -> str:
    # As AWS renders JSON scalars in condition keys: lower-case booleans, plain decimals.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def condition_keys(flat: Mapping[str, Any], provider_id: str, audience: str) -> dict[str, str | list[str]]:
    """Condition keys ``provider_id:claim`` (lower-cased) for every claim of ``flat``, the
    :func:`flat_claims` of a token.

    ``aud`` is the audience the token was accepted for and ``amr`` is always a list. A claim whose
    name only differs in case from a lower-case one never overrides it.
    """
    keys: dict[str, str | list[str]] = {}
    prefix = f"{provider_id}:"
    mixed_case: list[tuple[str, Any]] = []
    for name, value in flat.items():
        lower = name.lower()
        if lower != name:
            mixed_case.append((lower, value))  # after every lower-case name, in token order
        else:
            keys[prefix + lower] = _key_value(lower, value)
    for lower, value in mixed_case:
        key = prefix + lower
        if key not in keys:
            keys[key] = _key_value(lower, value)
    keys[f"{provider_id}:aud"] = audience
    return keys


def _key_value(lower_name: str, value: Any) -> str | list[str]:
    if type(value) is str:
        return [value] if lower_name == "amr" else value
    if isinstance(value, list):
        return [_render(v) for v in value]
    return [_render(value)] if lower_name == "amr" else _render(value)


def session_tags(claims: Mapping[str, Any]) -> tuple[dict[str, str], tuple[str, ...]]:
    """Session tags and transitive tag keys from the ``https://aws.amazon.com/tags`` claim.

    The claim is ``{"principal_tags": {"Key": ["value"]}, "transitive_tag_keys": ["Key"]}`` as
    AWS documents it. Raises :class:`InvalidIdentityToken` when it breaks AWS's limits: at most 50
    tags, keys of 1-128 and values of 0-256 characters, one value per tag, no duplicate keys
    (case-insensitively), transitive keys among the tags.
    """
    raw = claims.get(TAGS_CLAIM)
    if raw is None:
        return {}, ()
    if not isinstance(raw, dict) or not set(raw) <= {"principal_tags", "transitive_tag_keys"}:
        raise InvalidIdentityToken("token tags claim must hold only principal_tags and transitive_tag_keys")
    principal = raw.get("principal_tags", {})
    if not isinstance(principal, dict):
        raise InvalidIdentityToken("token tags claim: principal_tags must be an object")
    if len(principal) > _MAX_TAGS:
        raise InvalidIdentityToken(f"token tags claim: at most {_MAX_TAGS} tags are allowed")
    tags: dict[str, str] = {}
    seen: set[str] = set()
    for key, values in principal.items():
        if not _TAG_KEY.fullmatch(key):
            raise InvalidIdentityToken("token tags claim: tag keys must be 1-128 letters, digits or _.:/=+-@")
        if key.lower() in seen:
            raise InvalidIdentityToken("token tags claim: duplicate tag key")
        seen.add(key.lower())
        if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str):
            raise InvalidIdentityToken("token tags claim: each tag value must be a list of one string")
        if len(values[0]) > 256:
            raise InvalidIdentityToken("token tags claim: tag values are at most 256 characters")
        tags[key] = values[0]
    transitive = raw.get("transitive_tag_keys", [])
    if not isinstance(transitive, list) or not all(isinstance(k, str) for k in transitive):
        raise InvalidIdentityToken("token tags claim: transitive_tag_keys must be a list of strings")
    if len(transitive) > _MAX_TAGS:
        raise InvalidIdentityToken(f"token tags claim: at most {_MAX_TAGS} transitive tag keys are allowed")
    if any(k.lower() not in seen for k in transitive):
        raise InvalidIdentityToken("token tags claim: transitive_tag_keys must name principal tags")
    return tags, tuple(dict.fromkeys(transitive))
