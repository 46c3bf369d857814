"""What verified claims become: the condition keys, against the obvious reading of the rules (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fedgate_oidc.claims import condition_keys, flat_claims

PROVIDER = "issuer.example.com/Path"
_SCALARS = st.text(max_size=6) | st.integers() | st.booleans() | st.floats(allow_nan=False)
_VALUES = (
    _SCALARS | st.lists(_SCALARS, max_size=3) | st.dictionaries(st.text(max_size=3), _SCALARS, max_size=2)
)
# Names that collide once lower-cased, and amr, which is always a list.
_NAMES = st.sampled_from(["sub", "Sub", "SUB", "amr", "AMR", "aud", "email", "Email", "x"]) | st.text(
    max_size=5
)


def _rendered(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _reference(claims: dict[str, Any], audience: str) -> dict[str, Any]:
    """Lower-case names first (a case variant never overrides one), each flat claim once."""
    flat = {
        k: v
        for k, v in claims.items()
        if isinstance(v, str | int | float)
        or (isinstance(v, list) and all(isinstance(x, str | int | float) for x in v))
    }
    keys: dict[str, Any] = {}
    for name, value in sorted(flat.items(), key=lambda item: item[0] != item[0].lower()):
        key = f"{PROVIDER}:{name.lower()}"
        if key in keys:
            continue
        if isinstance(value, list):
            keys[key] = [_rendered(v) for v in value]
        elif name.lower() == "amr":
            keys[key] = [_rendered(value)]
        else:
            keys[key] = _rendered(value)
    keys[f"{PROVIDER}:aud"] = audience
    return keys


@given(st.dictionaries(_NAMES, _VALUES, max_size=8), st.text(min_size=1, max_size=5))
def test_condition_keys_of_any_claims(claims: dict[str, Any], audience: str) -> None:
    got = condition_keys(flat_claims(claims), PROVIDER, audience)
    expected = _reference(claims, audience)
    assert got == expected
    assert list(got) == list(expected)  # the same order too
