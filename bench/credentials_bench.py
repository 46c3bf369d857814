"""Benchmark: sealing and validating a typical session token, against joserfc's JWE as the peer.

Run with ``.venv/bin/python bench/credentials_bench.py``. Prints seal/s and unseal+validate/s for
fedgate's tokens (AES-256-GCM, compact claims, zlib when smaller) and for a JWE (``dir``, ``A256GCM``)
of the same claims as plain JSON, the ratio of the two, and both tokens' lengths. Takes ~15 s.
"seal" is serialize (+ zlib) + encrypt + encode on both sides; "issue" adds minting the key pair.

Validation includes the revocation check, an in-memory lookup (every replica holds all revocations;
revocation_bench.py measures how fast they spread); the peer does the equivalent work (decrypt,
parse, compare the access key in constant time, check expiry).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time
from collections.abc import Callable

from joserfc import jwe
from joserfc.jwk import OctKey

from gateway.credentials import CredentialService, IssuedCredentials, KeyRing, Revocations
from gateway.credentials.claims import encode_claims
from gateway.credentials.service import _pack

ISSUER = "token.actions.githubusercontent.com"
ROUND_SECONDS = 1.0
ROUNDS = 3


def typical(service: CredentialService) -> IssuedCredentials:
    """A GitHub Actions session with a small session policy, two tags and a few condition keys."""
    subject = "repo:example-org/example-repo:ref:refs/heads/main"
    return service.issue(
        role_arn="arn:aws:iam::123456789012:role/deploy/ci-deployer",
        session_name="gha-run-1234567890",
        duration_seconds=3600,
        provider_arn=f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}",
        subject=subject,
        audience="sts.amazonaws.com",
        session_policy={
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [
                        "arn:aws:s3:::artifacts",
                        "arn:aws:s3:::artifacts/${aws:PrincipalTag/team}/*",
                    ],
                }
            ],
        },
        tags={"team": "platform", "env": "prod"},
        transitive_tag_keys=["team"],
        identity_claims={
            f"{ISSUER}:sub": subject,
            f"{ISSUER}:aud": "sts.amazonaws.com",
            f"{ISSUER}:repository": "example-org/example-repo",
            f"{ISSUER}:amr": ["pwd", "mfa"],
        },
    )


def rate(operation: Callable[[], object]) -> float:
    """Best-of-``ROUNDS`` operations per second, each round running ~``ROUND_SECONDS``."""
    best = 0.0
    for _ in range(ROUNDS):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < ROUND_SECONDS:
            for _ in range(200):
                operation()
            count += 200
        best = max(best, count / elapsed)
    return best


def main() -> None:
    """Run both sides and print the comparison."""
    keyring = KeyRing({"bench": secrets.token_bytes(32)}, "bench")
    service = CredentialService(keyring, Revocations.local())
    # The same service without the opened-token cache: what a token's first use costs.
    cold = CredentialService(keyring, Revocations.local(), opened_cache_size=0)
    issued = typical(service)
    claims = issued.claims
    now = issued.claims.issued_at + 60
    loop = asyncio.new_event_loop()
    for svc in (service, cold):  # one validation each before timing
        loop.run_until_complete(svc.validate(issued.access_key_id, issued.session_token, now=now))

    def fedgate_issue() -> object:
        return typical(service)

    def fedgate_seal() -> object:
        return keyring.seal(_pack(claims))

    def validate_with(svc: CredentialService) -> object:
        # validate never suspends (revocations are in memory), so driving the coroutine by hand
        # measures the work itself rather than the event loop's scheduling.
        coro = svc.validate(issued.access_key_id, issued.session_token, now=now)
        try:
            coro.send(None)
        except StopIteration as done:
            return done.value
        raise RuntimeError("validate suspended: it must do no I/O")

    def fedgate_validate() -> object:
        return validate_with(cold)

    def fedgate_validate_seen() -> object:
        return validate_with(service)

    jwe_key = OctKey.import_key(secrets.token_bytes(32))
    header = {"alg": "dir", "enc": "A256GCM"}
    payload = encode_claims(issued.claims)
    peer_token = jwe.encrypt_compact(header, payload, jwe_key)
    presented = issued.access_key_id.encode()

    def peer_seal() -> object:
        # The same work as ours: serialize fresh claims, then encrypt.
        return jwe.encrypt_compact(header, encode_claims(claims), jwe_key)

    def peer_validate() -> object:
        if len(peer_token) > 8192:
            raise ValueError("oversized")
        claims = json.loads(jwe.decrypt_compact(peer_token, jwe_key).plaintext or b"")
        if not hmac.compare_digest(claims["k"].encode(), presented) or now >= claims["ea"]:
            raise ValueError("invalid")
        return claims

    results = {
        "fedgate issue (mint+seal)": rate(fedgate_issue),
        "fedgate seal": rate(fedgate_seal),
        "joserfc JWE seal": rate(peer_seal),
        "fedgate unseal+validate": rate(fedgate_validate),
        "fedgate validate (seen token)": rate(fedgate_validate_seen),
        "joserfc JWE decrypt+check": rate(peer_validate),
    }
    loop.close()
    assert fedgate_validate() == claims == fedgate_validate_seen()

    print(f"typical claims: {len(payload)} bytes of JSON")
    print(f"token length: fedgate {len(issued.session_token)} chars, joserfc JWE {len(peer_token)} chars")
    for name, value in results.items():
        print(f"{name:28s} {value:>10,.0f} /s")
    print(f"seal ratio (fedgate / JWE):     {results['fedgate seal'] / results['joserfc JWE seal']:.2f}x")
    validate_ratio = results["fedgate unseal+validate"] / results["joserfc JWE decrypt+check"]
    print(f"validate ratio (fedgate / JWE), first use of a token: {validate_ratio:.2f}x")


if __name__ == "__main__":
    main()
