"""boto3 -> fedgate (SigV4 verified, policy enforced, re-signed) -> moto's S3 server, over TCP."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from botocore.exceptions import ClientError

from gateway import keys
from gateway.proxy.handler import front_door
from gateway.web.middleware import request_context
from tests.conftest import read_until_closed
from tests.proxy.conftest import BUCKET, Moto, ProxyGateway
from tests.proxy.helpers import signed


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_allowed_put_get_list_delete(s3: Any, moto: Moto) -> None:
    s3.put_object(Bucket=BUCKET, Key="public/hello.txt", Body=b"hello world", ContentType="text/plain")
    got = s3.get_object(Bucket=BUCKET, Key="public/hello.txt")
    assert got["Body"].read() == b"hello world"
    assert got["ContentType"] == "text/plain"
    head = s3.head_object(Bucket=BUCKET, Key="public/hello.txt")
    assert head["ContentLength"] == 11
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="public/")
    assert "public/hello.txt" in [o["Key"] for o in listed["Contents"]]
    # The upstream really holds it (read straight from moto, not through fedgate).
    assert moto.client().get_object(Bucket=BUCKET, Key="public/hello.txt")["Body"].read() == b"hello world"
    s3.delete_object(Bucket=BUCKET, Key="public/hello.txt")
    with pytest.raises(ClientError):
        moto.client().head_object(Bucket=BUCKET, Key="public/hello.txt")


def test_denied_requests_never_reach_the_upstream(s3: Any, moto: Moto) -> None:
    moto.client().put_object(Bucket=BUCKET, Key="private/secret.txt", Body=b"secret")
    moto.client().put_object(Bucket=BUCKET, Key="public/keep/a.txt", Body=b"keep")
    mark = len(moto.log.lines)
    denied: list[Callable[[], Any]] = [
        lambda: s3.get_object(Bucket=BUCKET, Key="private/secret.txt"),
        lambda: s3.put_object(Bucket=BUCKET, Key="private/new.txt", Body=b"x"),
        lambda: s3.list_objects_v2(Bucket=BUCKET, Prefix="private/"),
        lambda: s3.list_objects_v2(Bucket=BUCKET),
        lambda: s3.delete_object(Bucket=BUCKET, Key="public/keep/a.txt"),
        lambda: s3.get_object(Bucket="other", Key="public/x"),
        lambda: s3.list_buckets(),
    ]
    for call in denied:
        with pytest.raises(ClientError) as exc:
            call()
        assert _error(exc) == ("AccessDenied", 403)
    assert moto.log.since(mark) == []
    keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert "private/new.txt" not in keys
    assert "public/keep/a.txt" in keys


def test_denial_is_s3_xml_with_request_id(s3: Any) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=BUCKET, Key="private/secret.txt")
    response: Any = exc.value.response
    assert response["Error"]["Code"] == "AccessDenied"
    assert "s3:GetObject" in response["Error"]["Message"]
    assert response["ResponseMetadata"]["RequestId"]
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"].startswith("application/xml")


def test_every_decision_is_audited(s3: Any, gateway: ProxyGateway) -> None:
    s3.put_object(Bucket=BUCKET, Key="public/audited.txt", Body=b"a")
    with pytest.raises(ClientError):
        s3.get_object(Bucket=BUCKET, Key="private/audited.txt")
    events = [json.loads(line) for line in gateway.audit_path.read_text().splitlines()]
    proxied = [e for e in events if e["eventSource"] == "s3.amazonaws.com"]
    allowed = next(
        e for e in proxied if e["resources"] and e["resources"][0]["ARN"].endswith("public/audited.txt")
    )
    assert allowed["eventName"] == "PutObject"
    assert allowed["additionalEventData"]["decision"] == "allowed"
    assert allowed["additionalEventData"]["statusCode"] == 200
    assert allowed["userIdentity"]["arn"].endswith(":assumed-role/s3-app/proxy-test")
    denied = next(
        e for e in proxied if e["resources"] and e["resources"][0]["ARN"].endswith("private/audited.txt")
    )
    assert denied["errorCode"] == "AccessDenied"
    assert denied["additionalEventData"]["decision"] == "implicitDeny"
    text = gateway.audit_path.read_text()
    assert "SecretAccessKey" not in text


def test_an_upload_that_expects_100_continue_is_told_to_go_on(
    gateway: ProxyGateway, session_credentials: dict[str, str], s3: Any
) -> None:
    # The aws CLI and the SDKs send large PutObjects with "Expect: 100-continue" and wait for the
    # interim answer before the body: the proxy gives it (as the application's router did).
    body = b"sent after 100 Continue"
    target, headers = signed(
        session_credentials,
        "PUT",
        f"/{BUCKET}/public/expect.txt",
        host=f"localhost:{gateway.port}",
        headers=[("Content-Length", str(len(body))), ("Expect", "100-continue")],
        body=body,
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers)
        sock.sendall(f"PUT {target} HTTP/1.1\r\n{head}Connection: close\r\n\r\n".encode())
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert s3.get_object(Bucket=BUCKET, Key="public/expect.txt")["Body"].read() == body


def test_the_front_door_serves_the_gateway_and_steps_aside_for_other_middlewares(
    gateway: ProxyGateway,
) -> None:
    # fedgate's server routes proxied requests itself only while the application's middlewares
    # are exactly the two it stands in for; one added later must not be skipped silently.
    async def fallback(request: web.BaseRequest) -> web.StreamResponse:
        raise AssertionError("not called")

    assert front_door(gateway.app, fallback) is not fallback
    other = web.Application(middlewares=[request_context])
    other[keys.PROXY] = gateway.app[keys.PROXY]
    assert front_door(other, fallback) is fallback
