"""SigV4 verification throughput beside botocore signing the same request (the peer).

Run: ``python bench/sigv4_bench.py``. Prints ops/s for gateway.sigv4.verify (parse + verify, signing
key from the LRU as in steady state, and with a cold key derivation), and for botocore's
``SigV4Auth.add_auth`` on the same request, with the ratio. Each figure is the best of several
timed rounds of about 0.7 s each; the whole run takes about 15 s.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway.sigv4 import HttpRequest, SigningKeyCache, parse_signature, verify

ROUND_SECONDS = 0.7
ROUNDS = 3
HOST = "fedgate.example.com"
CREDS = Credentials("ASIAQEXAMPLE7FEDGATE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY", "T" * 900)
SDK_HEADERS = {
    "User-Agent": "Boto3/1.40.0 md/Botocore#1.40.0 ua/2.1 os/linux#6.1 lang/python#3.11.7 cfg/retry#legacy",
    "amz-sdk-invocation-id": "7d5c6a0e-9d8b-4c1e-9a4f-3f0c2b1a7e55",
    "amz-sdk-request": "attempt=1; max=3",
}


def _botocore_request(method: str, url: str, body: bytes, headers: dict[str, str]) -> AWSRequest:
    request = AWSRequest(method=method, url=url, data=body, headers={**SDK_HEADERS, **headers})
    request.headers["Host"] = HOST
    return request


def _as_server_sees(request: AWSRequest, body: bytes) -> HttpRequest:
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    headers = tuple(
        (k, v.decode("latin-1") if isinstance(v, bytes) else str(v)) for k, v in prepared.headers.items()
    )
    return HttpRequest(prepared.method, parts.path, parts.query, headers, hashlib.sha256(body).hexdigest())


def sts_post() -> tuple[AWSRequest, SigV4Auth, dict[str, object]]:
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    request = _botocore_request(
        "POST",
        f"https://{HOST}/",
        body,
        {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Content-Length": str(len(body)),
        },
    )
    return request, SigV4Auth(CREDS, "sts", "us-east-1"), {"service": "sts", "normalize_path": True}


def s3_get() -> tuple[AWSRequest, SigV4Auth, dict[str, object]]:
    key = quote("bucket/photos/2024/holiday 01 ሴ.jpg", safe="/~")
    request = _botocore_request("GET", f"https://{HOST}/{key}?versionId=3HL4kqtJlcpXroDTDmJ%2Brmsg", b"", {})
    request.context["payload_signing_enabled"] = True
    return request, S3SigV4Auth(CREDS, "s3", "us-east-1"), {"service": "s3", "normalize_path": False}


def best_rate(fn: Callable[[], object]) -> float:
    """Operations per second: the best of ROUNDS rounds, each calibrated to about ROUND_SECONDS."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed > 0.05:
            break
        n *= 4
    n = max(1, int(n * ROUND_SECONDS / elapsed))
    rates = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        rates.append(n / (time.perf_counter() - start))
    return max(rates)


def bench(name: str, make: Callable[[], tuple[AWSRequest, SigV4Auth, dict[str, object]]]) -> None:
    request, auth, options = make()
    auth.add_auth(request)  # sign once so the server-side view carries a real signature
    server_view = _as_server_sees(request, request.body or b"")
    now = datetime.now(UTC)
    service = str(options["service"])
    normalize_path = bool(options["normalize_path"])
    keys = SigningKeyCache()

    def ours() -> None:
        info = parse_signature(server_view)
        verify(
            server_view,
            info,
            CREDS.secret_key,
            now=now,
            service=service,
            normalize_path=normalize_path,
            keys=keys,
        )

    def ours_cold() -> None:
        info = parse_signature(server_view)
        verify(server_view, info, CREDS.secret_key, now=now, service=service, normalize_path=normalize_path)

    def peer() -> None:
        auth.add_auth(request)  # removes and re-adds its own headers, so the request can be reused

    ours()  # fail loudly before timing if the request does not verify
    ours_rate, cold_rate, peer_rate = best_rate(ours), best_rate(ours_cold), best_rate(peer)
    print(f"{name}")
    print(f"  fedgate verify (cached key)   {ours_rate:>10,.0f} ops/s  {1e6 / ours_rate:7.1f} us/op")
    print(f"  fedgate verify (derive key)   {cold_rate:>10,.0f} ops/s  {1e6 / cold_rate:7.1f} us/op")
    print(
        f"  botocore {type(auth).__name__}.add_auth {peer_rate:>10,.0f} ops/s  {1e6 / peer_rate:7.1f} us/op"
    )
    print(
        f"  ratio verify/add_auth: {ours_rate / peer_rate:.2f}x (cached key), "
        f"{cold_rate / peer_rate:.2f}x (derived key)"
    )


def main() -> None:
    print(f"SigV4 benchmark: best of {ROUNDS} rounds of ~{ROUND_SECONDS}s each")
    bench("STS GetCallerIdentity form POST (header form, session token)", sts_post)
    bench("S3 GetObject (header form, unnormalised path, x-amz-content-sha256)", s3_get)


if __name__ == "__main__":
    main()
