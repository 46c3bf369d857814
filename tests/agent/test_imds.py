"""IMDSv2 session tokens: issued for a TTL, checked in constant time, refused when forged or stale."""

from __future__ import annotations

import pytest

from gateway.agent.errors import BadRequest
from gateway.agent.imds import MAX_TTL, ImdsTokens, parse_ttl


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_valid_for_its_ttl() -> None:
    clock = Clock()
    tokens = ImdsTokens(clock=clock)
    token = tokens.issue(60)
    assert tokens.valid(token)
    clock.now += 59
    assert tokens.valid(token)
    clock.now += 1
    assert not tokens.valid(token)


def test_tokens_are_unique_and_bound_to_the_agent() -> None:
    tokens = ImdsTokens()
    assert tokens.issue(60) != tokens.issue(60)
    assert not ImdsTokens().valid(tokens.issue(60))  # another agent (or a restart) has another key


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature changed
        lambda t: ("A" if t[0] != "A" else "B") + t[1:],  # expiry or nonce changed
        lambda t: t.replace(".", ""),
        lambda t: t + "=",  # another spelling of the same bytes
        lambda t: t[:5] + "!" + t[5:],  # a character the decoder would skip
        lambda t: t + "." + t,
        lambda t: t * 3,  # too long
        lambda t: t[:-1] + "é",
        lambda t: "",
    ],
)
def test_tampered_tokens_are_refused(mutate: object) -> None:
    tokens = ImdsTokens()
    token = tokens.issue(MAX_TTL)
    assert not tokens.valid(mutate(token))  # type: ignore[operator]


def test_none_is_refused() -> None:
    assert not ImdsTokens().valid(None)


@pytest.mark.parametrize("raw", ["1", "60", " 21600 ", str(MAX_TTL)])
def test_ttl_in_range(raw: str) -> None:
    assert parse_ttl(raw) == int(raw)


@pytest.mark.parametrize("raw", [None, "", "0", "21601", "-1", "1.5", "ten", "١٢", "99999999999999999999"])
def test_ttl_out_of_range_is_a_bad_request(raw: str | None) -> None:
    with pytest.raises(BadRequest, match="X-aws-ec2-metadata-token-ttl-seconds"):
        parse_ttl(raw)
