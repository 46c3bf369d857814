"""Tampered, stale, mis-scoped and tricky requests: refused in S3's dialect, never forwarded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway import keys
from tests.proxy.conftest import BUCKET, ROLE, Moto, ProxyGateway
from tests.proxy.helpers import Reply, send, signed


@pytest.fixture()
def quiet_upstream(moto: Moto) -> Iterator[None]:
    """Fails the test if the upstream logged any request during it."""
    mark = len(moto.log.lines)
    yield
    assert moto.log.since(mark) == []


def _get(gateway: ProxyGateway, creds: dict[str, str], path: str, **kw: Any) -> Reply:
    target, headers = signed(creds, "GET", path, host=f"localhost:{gateway.port}", **kw)
    return send(gateway.port, "GET", target, headers)


def test_modified_signature_is_refused(
    gateway: ProxyGateway, session_credentials: dict[str, str], quiet_upstream: None
) -> None:
    target, headers = signed(
        session_credentials, "GET", f"/{BUCKET}/public/a", host=f"localhost:{gateway.port}"
    )
    headers = [
        (n, v[:-1] + ("0" if v[-1] != "0" else "1")) if n == "Authorization" else (n, v) for n, v in headers
    ]
    reply = send(gateway.port, "GET", target, headers)
    assert (reply.status, reply.code) == (403, "SignatureDoesNotMatch")
    assert reply.headers["x-amz-request-id"]


def test_signed_path_swapped_is_refused(
    gateway: ProxyGateway, session_credentials: dict[str, str], quiet_upstream: None
) -> None:
    _, headers = signed(session_credentials, "GET", f"/{BUCKET}/public/a", host=f"localhost:{gateway.port}")
    reply = send(gateway.port, "GET", f"/{BUCKET}/private/a", headers)
    assert (reply.status, reply.code) == (403, "SignatureDoesNotMatch")


def test_body_not_matching_signed_hash_never_lands(
    gateway: ProxyGateway, session_credentials: dict[str, str], moto: Moto
) -> None:
    body = b"the real body" * 10000
    target, headers = signed(
        session_credentials,
        "PUT",
        f"/{BUCKET}/public/swapped.bin",
        host=f"localhost:{gateway.port}",
        headers=[("Content-Length", str(len(body)))],
        body=body,
    )
    forged = body[:-1] + b"!"
    reply = send(gateway.port, "PUT", target, headers, forged)
    assert (reply.status, reply.code) == (400, "XAmzContentSHA256Mismatch")
    keys_ = [o["Key"] for o in moto.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert "public/swapped.bin" not in keys_


@pytest.mark.parametrize(
    ("kw", "status", "code"),
    [
        ({"region": "eu-west-1"}, 403, "SignatureDoesNotMatch"),
        ({"service": "execute-api"}, 403, "SignatureDoesNotMatch"),
        ({"skew": -20 * 60}, 403, "RequestTimeTooSkewed"),
        ({"skew": 20 * 60}, 403, "RequestTimeTooSkewed"),
    ],
)
def test_wrong_scope_or_time_is_refused(
    gateway: ProxyGateway,
    session_credentials: dict[str, str],
    quiet_upstream: None,
    kw: dict[str, Any],
    status: int,
    code: str,
) -> None:
    if "skew" in kw:  # from the moment of the request, not of collection: a long run must not shrink it
        kw = {"now": time.time() + kw["skew"]}
    reply = _get(gateway, session_credentials, f"/{BUCKET}/public/a", **kw)
    assert (reply.status, reply.code) == (status, code)


def test_garbled_token_is_invalid_token_and_unknown_key_invalid_access_key(
    gateway: ProxyGateway, session_credentials: dict[str, str], quiet_upstream: None
) -> None:
    garbled = {
        **session_credentials,
        "aws_session_token": session_credentials["aws_session_token"][:-4] + "AAAA",
    }
    assert _get(gateway, garbled, f"/{BUCKET}/public/a").code == "InvalidToken"
    other_key = {**session_credentials, "aws_access_key_id": "ASIAAAAAAAAAAAAAAAAA"}
    assert _get(gateway, other_key, f"/{BUCKET}/public/a").code == "InvalidAccessKeyId"


def test_unsigned_request_is_access_denied(gateway: ProxyGateway, quiet_upstream: None) -> None:
    reply = send(gateway.port, "GET", f"/{BUCKET}/public/a", [("Host", f"localhost:{gateway.port}")])
    assert (reply.status, reply.code) == (403, "AccessDenied")


def test_expired_session_is_refused(gateway: ProxyGateway, quiet_upstream: None) -> None:
    issued = gateway.app[keys.CREDENTIALS].issue(
        role_arn=ROLE, session_name="old", duration_seconds=900, now=time.time() - 1000
    )
    creds = {
        "aws_access_key_id": issued.access_key_id,
        "aws_secret_access_key": issued.secret_access_key,
        "aws_session_token": issued.session_token,
    }
    reply = _get(gateway, creds, f"/{BUCKET}/public/a")
    assert (reply.status, reply.code) == (400, "ExpiredToken")
    # A presigned URL made within the session's life stops working with the session too.
    reply = _get(gateway, creds, f"/{BUCKET}/public/a", form="query", now=time.time() - 200, expires=3600)
    assert (reply.status, reply.code) == (400, "ExpiredToken")


@pytest.mark.parametrize(
    "path",
    [
        f"/{BUCKET}/public/../private/secret.txt",
        f"/{BUCKET}/public/%2e%2e/private/secret.txt",
        f"/{BUCKET}/public/%2E%2E%2Fprivate/secret.txt",
        f"/{BUCKET}/public/%252e%252e/private/secret.txt",
        f"/{BUCKET}/public/./x",
        f"/{BUCKET}/public/%00x",
        f"/{BUCKET}/public/%ff",
    ],
)
def test_path_tricks_are_refused(
    gateway: ProxyGateway, session_credentials: dict[str, str], quiet_upstream: None, path: str
) -> None:
    reply = _get(gateway, session_credentials, path)
    assert reply.status == 400
    assert reply.code == "InvalidArgument"


def test_encoded_slash_in_a_key_is_the_same_key(
    gateway: ProxyGateway, session_credentials: dict[str, str], moto: Moto
) -> None:
    moto.client().put_object(Bucket=BUCKET, Key="public/dir/file.txt", Body=b"same")
    reply = _get(gateway, session_credentials, f"/{BUCKET}/public%2Fdir%2Ffile.txt")
    assert (reply.status, reply.body) == (200, b"same")
    assert any('"GET /data/public/dir/file.txt' in line for line in moto.log.lines[-3:])
