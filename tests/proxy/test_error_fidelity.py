"""The errors stock clients get where AWS answers them exactly: codes, statuses, audit."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.proxy.conftest import BUCKET, Moto, ProxyGateway, s3_client
from tests.proxy.helpers import send, signed


def _code(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as exc:
        call()
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"], exc.value.response["Error"]["Code"]


def test_temporary_key_without_its_token(gateway: ProxyGateway, session_credentials: dict[str, str]) -> None:
    keys = {k: v for k, v in session_credentials.items() if k != "aws_session_token"}
    s3 = s3_client(gateway, keys)
    assert _code(lambda: s3.get_object(Bucket=BUCKET, Key="public/x")) == (403, "InvalidAccessKeyId")
    sts = boto3.client(
        "sts", endpoint_url=gateway.sts_url, region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}), **keys,
    )  # fmt: skip
    assert _code(sts.get_caller_identity) == (403, "InvalidClientTokenId")


def test_malformed_session_token_on_s3(gateway: ProxyGateway, session_credentials: dict[str, str]) -> None:
    s3 = s3_client(gateway, {**session_credentials, "aws_session_token": "not-a-token"})
    assert _code(lambda: s3.list_objects_v2(Bucket=BUCKET, Prefix="public/")) == (400, "InvalidToken")


def test_key_with_a_literal_percent_2f(s3: Any, moto: Moto) -> None:
    key = "public/dir/a%2Fb.txt"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"escaped slash")
    assert moto.client().get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"escaped slash"
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"escaped slash"


def test_body_over_the_buffer_limit_is_s3_shaped_and_audited(
    gateway: ProxyGateway, session_credentials: dict[str, str], moto: Moto
) -> None:
    body = b"x" * (10 * 1024 * 1024 + 1)  # one byte over max_buffered_body
    target, headers = signed(
        session_credentials,
        "PUT",
        f"/{BUCKET}/public/too-big",
        host=f"localhost:{gateway.port}",
        body=body,
        content_sha256_header=False,  # so the signature covers the body, which must be buffered
    )
    mark = len(moto.log.lines)
    reply = send(gateway.port, "PUT", target, [*headers, ("Content-Length", str(len(body)))], body)
    assert (reply.status, reply.code) == (400, "MaxMessageLengthExceeded")
    assert reply.headers["content-type"].startswith("application/xml")
    assert moto.log.since(mark) == []
    events = [json.loads(line) for line in gateway.audit_path.read_text().splitlines()]
    assert events[-1]["errorCode"] == "RequestEntityTooLarge"
