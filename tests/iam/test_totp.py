"""TOTP as RFC 6238 computes it (Appendix B's SHA-1 vectors), the window, and what apps are given."""

from __future__ import annotations

import base64

import pytest

from gateway.iam import totp

# RFC 6238 Appendix B: the SHA-1 seed, times and 8-digit codes.
RFC_SEED = b"12345678901234567890"
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("when", "code"), RFC_VECTORS)
def test_rfc_6238_appendix_b(when: int, code: str) -> None:
    assert totp.code_at(RFC_SEED, totp.step_of(when), digits=8) == code
    # Six digits are the same truncation, taken modulo 10**6: what apps show.
    assert totp.code_at(RFC_SEED, totp.step_of(when)) == code[-6:]


def test_the_window_is_one_step_either_side() -> None:
    now = 1111111111.0
    step = totp.step_of(now)
    for offset in (-1, 0, 1):
        code = totp.code_at(RFC_SEED, step + offset)
        assert totp.matching_step(RFC_SEED, code, now) == step + offset
    for offset in (-2, 2):
        assert totp.matching_step(RFC_SEED, totp.code_at(RFC_SEED, step + offset), now) is None
    assert totp.matching_step(RFC_SEED, totp.code_at(RFC_SEED, step), now, behind=0, ahead=0) == step


@pytest.mark.parametrize("text", ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", " 12345"])
def test_what_is_no_code_matches_nothing(text: str) -> None:
    assert not totp.is_code(text)
    assert totp.matching_step(RFC_SEED, text, 59.0) is None


def test_new_seeds_and_their_base32_text() -> None:
    seed = totp.new_seed()
    assert len(seed) == totp.SEED_BYTES and seed != totp.new_seed()
    text = totp.base32_seed(seed)
    assert len(text) == 64 and base64.b32decode(text) == seed  # AWS's seeds are 64 characters too


def test_otpauth_uri_as_aws_builds_it() -> None:
    uri = totp.otpauth_uri("alice-phone", "123456789012", RFC_SEED)
    assert uri == f"otpauth://totp/alice-phone@123456789012?secret={totp.base32_seed(RFC_SEED)}"
    assert totp.otpauth_uri("a b", "x", RFC_SEED).startswith("otpauth://totp/a%20b@x?")
