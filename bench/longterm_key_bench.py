"""Benchmark: authenticating a request signed with an IAM user's long-term key (AKIA...) against one
signed with a session token (the peer: what every session-signed request costs today).

Run: ``.venv/bin/python bench/longterm_key_bench.py``. Both go through :func:`gateway.authn.authenticate`
on the same signed STS ``GetCallerIdentity`` POST, as the Query endpoint and the proxy call it:

- **long-term key**: the key is looked up in a catalog snapshot of 1,000 users (one key each) and
  its secret, sealed under the key ring, opened once and kept in the resolver's cache;
- **session token**: the token is unsealed (AES-256-GCM) once and kept in the credential
  service's opened-token cache, then its claims and revocation state checked;

in steady state (caches warm) and on first use (caches off: every request opens its secret or its
token). Printed: requests/s of each and the ratio. Each figure is the best of five rounds of about
0.7 s, the two alternating; takes about 20 s.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from gateway.authn import Authenticated, authenticate
from gateway.credentials import CredentialService, KeyRing, Revocations, new_secret_access_key
from gateway.db.repos.secrets import access_key_context
from gateway.iam.accesskeys import AccessKeys
from gateway.iam.catalog import Catalog, build_snapshot
from gateway.iam.records import AccessKeyRecord, CatalogRecords, UserRecord
from gateway.sigv4 import HttpRequest, SigningKeyCache, sign

ACCOUNT = "123456789012"
USERS = 1000
ROUND_SECONDS = 0.7
ROUNDS = 5
BODY = b"Action=GetCallerIdentity&Version=2011-06-15"
RING = KeyRing({"k": b"bench key ring secret, 32 bytes!"}, "k")


def _signed(key_id: str, secret: str, token: str | None, now: datetime) -> HttpRequest:
    request = HttpRequest(
        "POST",
        "/",
        "",
        (("Host", "fedgate.example.com"), ("Content-Type", "application/x-www-form-urlencoded")),
        hashlib.sha256(BODY).hexdigest(),
    )
    return sign(
        request,
        access_key_id=key_id,
        secret_key=secret,
        session_token=token,
        region="us-east-1",
        service="sts",
        now=now,
    )


def _catalog() -> tuple[Catalog, str, str]:
    users, keys = [], []
    chosen: tuple[str, str] = ("", "")
    for i in range(USERS):
        secret = new_secret_access_key()
        key_id = f"AKIA{i:016d}"
        sealed = RING.seal_value(secret.encode(), access_key_context(key_id))
        users.append(UserRecord(f"user{i}", source="api"))
        keys.append(AccessKeyRecord(key_id, f"user{i}", sealed=sealed, source="api"))
        if i == USERS // 2:
            chosen = (key_id, secret)
    snapshot = build_snapshot(CatalogRecords(ACCOUNT, users=tuple(users), access_keys=tuple(keys)))
    return Catalog(snapshot), *chosen


async def _calibrated(fn: Callable[[], Awaitable[object]]) -> int:
    """How many calls take about ROUND_SECONDS."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            await fn()
        elapsed = time.perf_counter() - start
        if elapsed > 0.05:
            return max(1, int(n * ROUND_SECONDS / elapsed))
        n *= 4


async def best_rates(
    first: Callable[[], Awaitable[object]], second: Callable[[], Awaitable[object]]
) -> tuple[float, float]:
    """Operations per second of each: the best of ROUNDS rounds, the two alternating round by round
    so that a busy machine slows both alike."""
    counts = (await _calibrated(first), await _calibrated(second))
    best = [0.0, 0.0]
    for _ in range(ROUNDS):
        for i, fn in enumerate((first, second)):
            start = time.perf_counter()
            for _ in range(counts[i]):
                await fn()
            best[i] = max(best[i], counts[i] / (time.perf_counter() - start))
    return best[0], best[1]


async def main() -> None:
    now = datetime.now(UTC)
    epoch = now.timestamp()
    catalog, key_id, secret = _catalog()
    warm_keys = AccessKeys(catalog, RING)
    cold_keys = AccessKeys(catalog, RING, cache_size=0)
    warm_sessions = CredentialService(RING, Revocations.local())
    cold_sessions = CredentialService(RING, Revocations.local(), opened_cache_size=0)
    issued = warm_sessions.issue(
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/bench", session_name="bench", duration_seconds=3600
    )
    user_request = _signed(key_id, secret, None, now)
    session_request = _signed(issued.access_key_id, issued.secret_access_key, issued.session_token, now)
    signing_keys = SigningKeyCache()

    def run(
        request: HttpRequest, sessions: CredentialService, keys: AccessKeys
    ) -> Callable[[], Awaitable[Authenticated]]:
        async def once() -> Authenticated:
            return await authenticate(
                request,
                sessions,
                now=epoch,
                region="us-east-1",
                service="sts",
                keys=signing_keys,
                access_keys=keys,
            )

        return once

    caller = (await run(user_request, warm_sessions, warm_keys)()).caller
    assert caller.user_name == f"user{USERS // 2}"
    print(f"authenticate() of a signed STS POST ({USERS} users in the catalog)")
    print(f"{'':<32} {'long-term key/s':>16} {'session token/s':>16} {'ratio':>7}")
    for name, keys, sessions in (
        ("steady state (caches warm)", warm_keys, warm_sessions),
        ("first use (no cache)", cold_keys, cold_sessions),
    ):
        user_rate, session_rate = await best_rates(
            run(user_request, sessions, keys), run(session_request, sessions, keys)
        )
        print(f"{name:<32} {user_rate:16,.0f} {session_rate:16,.0f} {user_rate / session_rate:6.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
