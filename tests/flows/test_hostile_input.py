"""Hostile input against a live fedgate over TCP, with boto3 where a real client can send it.

Malformed headers carrying a real session token, JSON nested past the interpreter's recursion
limit in tokens and policies, and the largest session token fedgate issues at the edge of the
header limit its server enforces. Every answer is a 4xx botocore parses, with the AWS code; no
log record and no answer carries the token.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import socket
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import create_parser

from gateway import keys
from gateway.credentials import MAX_TOKEN_CHARS, IssuedCredentials
from gateway.errors import PackedPolicyTooLarge
from gateway.logs import JsonFormatter
from gateway.testing import OIDCTestIssuer, compact_jws
from tests.conftest import read_until_closed
from tests.flows.conftest import ACCOUNT, LiveGateway

ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
DEEP = "[" * 1000 + "]" * 1000  # json.loads alone raises RecursionError on this


# The clients' own loggers: botocore logs what it sends and receives at DEBUG, tokens included.
_CLIENT_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")


@pytest.fixture()
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], str]]:
    """Every record the gateway side logged in the test so far, at any level, formatted as
    fedgate writes them (with tracebacks)."""
    caplog.set_level(logging.DEBUG)
    formatter = JsonFormatter()
    yield lambda: "\n".join(
        formatter.format(r) for r in caplog.records if not r.name.startswith(_CLIENT_LOGGERS)
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw(port: int, request: bytes) -> bytes:
    """Send ``request`` as it is and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return read_until_closed(sock)


def _query_error(raw: bytes) -> tuple[int, str]:
    """The status and error code of a raw answer, as botocore's Query-protocol parser reads it."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    status = int(lines[0].split(" ", 2)[1])
    parsed = create_parser("query").parse({"status_code": status, "headers": headers, "body": body}, None)
    return status, parsed["Error"]["Code"]


def _sts(gateway: LiveGateway, **credentials: str) -> Any:
    return boto3.client(
        "sts",
        endpoint_url=gateway.url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        **credentials,
    )


def _audited(gateway: LiveGateway, request_id: str) -> dict[str, Any]:
    events = [json.loads(line) for line in gateway.audit_path.read_text().splitlines()]
    (event,) = [e for e in events if e["requestID"] == request_id]
    return event


def _no_secret(text: str, secret: str) -> None:
    # Not the token, nor any long piece of it (aiohttp used to quote the first 100 bytes).
    for start in range(0, len(secret) - 24, 24):
        assert secret[start : start + 24] not in text


def test_a_malformed_header_carrying_a_session_token_is_refused_without_echoing_it(
    gateway: LiveGateway, issuer: OIDCTestIssuer, logs: Callable[[], str], clean_aws_env: dict[str, str]
) -> None:
    creds = _sts(gateway).assume_role_with_web_identity(
        RoleArn=ROLE, RoleSessionName="hostile", WebIdentityToken=issuer.mint()
    )["Credentials"]
    token: str = creds["SessionToken"]
    port = int(gateway.url.rsplit(":", 1)[1])
    head = b"GET /?Action=GetCallerIdentity&Version=2011-06-15 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    cases = [
        (b"X-Amz-Security-Token: " + token.encode() + b"\x00\r\n", "BadRequest"),
        (b"Cookie: fedgate=" + token.encode() + b"\x01\r\n", "BadRequest"),
        (b"X-Amz-Security-Token " + token.encode() + b"\r\n", "BadRequest"),
        (b"X-Amz-Security-Token: " + token.encode() + b"A" * MAX_TOKEN_CHARS + b"\r\n", None),
    ]
    for line, code in cases:
        raw = _raw(port, head + line + b"\r\n")
        status, got = _query_error(raw)
        assert (status, got) == (400, code or "RequestHeaderSectionTooLarge"), raw[:300]
        _no_secret(raw.decode("latin-1"), token)
    text = logs()
    assert "malformed request refused" in text
    _no_secret(text, token)
    _no_secret(gateway.audit_path.read_text(), token)
    # The token itself is fine: sent properly, it works.
    sts = _sts(
        gateway,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=token,
    )
    assert sts.get_caller_identity()["Arn"].endswith(":assumed-role/app/hostile")


DEEP_TOKEN_CASES = ["payload nests at the top", "a claim nests", "payload unclosed", "header nests"]


def _deep_tokens(issuer: OIDCTestIssuer) -> dict[str, str]:
    iss = json.dumps(issuer.issuer)
    return {
        "payload nests at the top": compact_jws({"alg": "RS256"}, DEEP.encode(), b"sig"),
        "a claim nests": compact_jws({"alg": "RS256"}, f'{{"iss": {iss}, "x": {DEEP}}}'.encode(), b"sig"),
        "payload unclosed": compact_jws({"alg": "RS256"}, ('{"a":' * 1500).encode(), b"sig"),
        # The payload is fine, so the issuer's provider gets the token: its header nests.
        "header nests": _b64(b'{"alg":"RS256","x":' + DEEP.encode() + b"}")
        + "."
        + _b64(f'{{"iss": {iss}}}'.encode())
        + ".c2ln",
    }


@pytest.mark.parametrize(
    "case", ["payload nests at the top", "a claim nests", "payload unclosed", "header nests"]
)
def test_deeply_nested_json_in_a_web_identity_token_is_an_invalid_identity_token(
    case: str,
    gateway: LiveGateway,
    issuer: OIDCTestIssuer,
    logs: Callable[[], str],
    clean_aws_env: dict[str, str],
) -> None:
    token = _deep_tokens(issuer)[case]
    with pytest.raises(ClientError) as info:
        _sts(gateway).assume_role_with_web_identity(
            RoleArn=ROLE, RoleSessionName="deep", WebIdentityToken=token
        )
    error = info.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        "InvalidIdentityToken",
        400,
    )
    assert _audited(gateway, error["ResponseMetadata"]["RequestId"])["errorCode"] == "InvalidIdentityToken"
    text = logs()
    assert "Traceback" not in text and "RecursionError" not in text
    _no_secret(text, token)


@pytest.mark.parametrize(
    "policy",
    [
        '{"Version": "2012-10-17", "Statement": ' + "[" * 900 + "]" * 900 + "}",
        '{"Version": "2012-10-17", "Statement": ' + '{"a":' * 400,
    ],
    ids=["deep", "unclosed"],
)
def test_deeply_nested_session_policy_is_a_malformed_policy_document(
    policy: str,
    gateway: LiveGateway,
    issuer: OIDCTestIssuer,
    logs: Callable[[], str],
    clean_aws_env: dict[str, str],
) -> None:
    assert len(policy) <= 2048  # within STS's Policy length: it reaches the parser
    with pytest.raises(ClientError) as info:
        _sts(gateway).assume_role_with_web_identity(
            RoleArn=ROLE, RoleSessionName="deep", WebIdentityToken=issuer.mint(), Policy=policy
        )
    error = info.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        "MalformedPolicyDocument",
        400,
    )
    assert _audited(gateway, error["ResponseMetadata"]["RequestId"])["errorCode"] == "MalformedPolicyDocument"
    assert "Traceback" not in logs()


def _largest_token(gateway: LiveGateway) -> IssuedCredentials:
    """Credentials whose session token is exactly MAX_TOKEN_CHARS long.

    Random padding in an identity claim compresses hardly at all, so each character of it adds
    about one to the token; a few rounds of correction land on the exact length.
    """
    service = gateway.app[keys.CREDENTIALS]
    padding = secrets.token_urlsafe(MAX_TOKEN_CHARS)
    size = MAX_TOKEN_CHARS - 1000
    for _ in range(200):
        try:
            issued = service.issue(
                role_arn=ROLE,
                session_name="largest",
                duration_seconds=900,
                identity_claims={"pad": padding[:size]},
            )
        except PackedPolicyTooLarge:  # over the limit: fedgate refuses to issue it
            size -= 1
            continue
        missing = MAX_TOKEN_CHARS - len(issued.session_token)
        if missing == 0:
            return issued
        size += missing if abs(missing) > 2 else (1 if missing > 0 else -1)
    raise AssertionError("no padding gave a token of exactly MAX_TOKEN_CHARS")


def test_the_largest_session_token_fits_the_header_limit_and_one_byte_more_does_not(
    gateway: LiveGateway, logs: Callable[[], str], clean_aws_env: dict[str, str]
) -> None:
    issued = _largest_token(gateway)
    token = issued.session_token
    assert len(token) == MAX_TOKEN_CHARS
    sts = _sts(
        gateway,
        aws_access_key_id=issued.access_key_id,
        aws_secret_access_key=issued.secret_access_key,
        aws_session_token=token,
    )
    # In a header (boto3's signed request) and in the request line (a presigned URL).
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/app/largest"
    url = sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    assert len(url) > MAX_TOKEN_CHARS
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert b"assumed-role/app/largest" in answer.read()
    # One byte more in the header is refused by the server itself, AWS-shaped, token unquoted.
    port = int(gateway.url.rsplit(":", 1)[1])
    raw = _raw(
        port,
        b"GET /?Action=GetCallerIdentity&Version=2011-06-15 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"X-Amz-Security-Token: " + token.encode() + b"A\r\n\r\n",
    )
    assert _query_error(raw) == (400, "RequestHeaderSectionTooLarge")
    _no_secret(raw.decode("latin-1"), token)
    _no_secret(logs(), token)
