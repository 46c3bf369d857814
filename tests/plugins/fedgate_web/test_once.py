"""Web sign-in's one-time values: they carry their issue time, and a store reset does not renew them."""

from __future__ import annotations

import time

import pytest

from fedgate_web.once import issued_at, spend, stamped
from fedgate_web.saml_slo import stamped_id
from fedgate_web.sessions import Signer, WebSessions
from gateway.identity import Identity
from gateway.store import MemoryStore, ReplayGuard

SECRET = "0123456789abcdef0123456789abcdef-cookie"
IDENTITY = Identity(provider_arn="arn:aws:iam::123456789012:oidc-provider/idp", provider_id="idp",
                    kind="oidc", subject="alice", audience="fedgate", issuer="https://idp")  # fmt: skip


def test_stamp_round_trip_and_refusals() -> None:
    now = 1_700_000_000.123
    value = stamped(now, "random-part_with-dashes")
    assert value.startswith(f"{1_700_000_000_122:x}-") or value.startswith(f"{1_700_000_000_123:x}-")
    issued = issued_at(value)
    # Milliseconds, never rounded up: a stamp is never later than the moment it stands for.
    assert issued is not None and now - 0.002 < issued <= now
    for unstamped in ("", "-abc", "xyz-abc", "18bcfe56883-", "18bcfe56883", "1234567890abc-x"):
        assert issued_at(unstamped) is None, unstamped
    saml_id = stamped_id(now)
    assert saml_id.startswith("_") and issued_at(saml_id[1:]) == issued


async def test_spend_refuses_unstamped_and_spent_values() -> None:
    guard = ReplayGuard(MemoryStore())
    value = stamped(time.time(), "abc")
    assert await spend(guard, "web:x:", "no-stamp-here", 60) is False
    assert await spend(guard, "web:x:", value, 60) is True
    assert await spend(guard, "web:x:", value, 60) is False


async def test_values_issued_before_a_restart_are_refused_after_it() -> None:
    issued = stamped(time.time() - 1, "abc")
    # The process restarts (a new memory store): the value may have been used before it.
    assert await spend(ReplayGuard(MemoryStore()), "web:x:", issued, 60) is False


def _sessions(store: MemoryStore, clock: list[float]) -> WebSessions:
    return WebSessions(
        store, Signer(SECRET), lifetime=3600, clock=lambda: clock[0], replay=ReplayGuard(store)
    )


async def test_form_token_once_and_not_across_a_restart() -> None:
    now = [time.time()]
    store = MemoryStore(started=now[0] - 60)
    sessions = _sessions(store, now)
    session = await sessions.create(IDENTITY, "corp")
    token = sessions.form_token(session)
    assert await sessions.check_form_token(session, token) is True
    assert await sessions.check_form_token(session, token) is False
    # A token issued before the store's generation began (the moment the process started): refused
    # although nothing here remembers it.
    now[0] -= 120
    old = sessions.form_token(session)
    now[0] += 120
    assert await sessions.check_form_token(session, old) is False


@pytest.mark.parametrize("tamper", ["stamp", "nonce", "mac"])
async def test_form_token_stamp_is_covered_by_the_mac(tamper: str) -> None:
    now = [time.time()]
    store = MemoryStore(started=now[0] - 60)
    sessions = _sessions(store, now)
    session = await sessions.create(IDENTITY, "corp")
    nonce, _, mac = sessions.form_token(session).partition(".")
    stamp, _, rest = nonce.partition("-")

    def flip(text: str) -> str:  # another last character, whatever it was
        return text[:-1] + ("B" if text.endswith("A") else "A")

    forged = {
        "stamp": f"{int(stamp, 16) + 1:x}-{rest}.{mac}",  # a later issue time, same MAC
        "nonce": f"{stamp}-{flip(rest)}.{mac}",
        "mac": f"{nonce}.{flip(mac)}",
    }[tamper]
    assert await sessions.check_form_token(session, forged) is False
