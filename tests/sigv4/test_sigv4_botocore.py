"""Interoperability: requests signed by botocore (and whole boto3 clients) verify with gateway.sigv4."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials

from gateway.errors import SignatureDoesNotMatch
from gateway.sigv4 import (
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    UNSIGNED_PAYLOAD,
    HttpRequest,
    SigningKeyCache,
    parse_signature,
    sign,
    verify,
)

ENDPOINT = "https://fedgate.example.com"


@pytest.fixture
def creds() -> Credentials:
    return Credentials(
        "ASIA" + secrets.token_hex(8).upper(),
        secrets.token_urlsafe(30),
        secrets.token_urlsafe(400),  # long, with '-' and '_', like a sealed token
    )


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def to_http(method: str, url: str, headers: Any, body: str | bytes | None) -> HttpRequest:
    """What a server sees: the wire path and query, the header list, the body hash."""
    parts = urlsplit(url)
    header_list = [(_text(k), _text(v)) for k, v in headers.items()]
    body = body.encode() if isinstance(body, str) else body
    if not any(k.lower() == "host" for k, _ in header_list):
        header_list.append(("Host", parts.netloc))  # added by the HTTP client, as botocore assumes
    return HttpRequest(
        method, parts.path or "/", parts.query, tuple(header_list), hashlib.sha256(body or b"").hexdigest()
    )


def signed_by(auth: SigV4Auth, request: AWSRequest) -> HttpRequest:
    auth.add_auth(request)
    prepared = request.prepare()
    body = prepared.body if isinstance(prepared.body, bytes) else (prepared.body or "").encode()
    return to_http(prepared.method, prepared.url, prepared.headers, body)


def check(request: HttpRequest, secret: str, *, service: str, normalize_path: bool = True) -> None:
    info = parse_signature(request)
    verify(
        request,
        info,
        secret,
        now=datetime.now(UTC),
        region="us-east-1",
        service=service,
        normalize_path=normalize_path,
    )


def sts_form_request() -> AWSRequest:
    return AWSRequest(
        method="POST",
        url=f"{ENDPOINT}/",
        data=b"Action=GetCallerIdentity&Version=2011-06-15",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )


def test_sigv4auth_sts_form_post_with_session_token(creds: Credentials) -> None:
    request = signed_by(SigV4Auth(creds, "sts", "us-east-1"), sts_form_request())
    info = parse_signature(request)
    assert info.form == "header"
    assert info.access_key_id == creds.access_key
    assert info.security_token == creds.token
    assert "x-amz-security-token" in info.signed_headers
    verified = verify(
        request, info, creds.secret_key, now=datetime.now(UTC), region="us-east-1", service="sts"
    )
    assert verified.payload_checked and verified.payload_signed
    # The form body is signed: a different action must not verify.
    other = HttpRequest(
        request.method,
        request.raw_path,
        request.raw_query,
        request.headers,
        hashlib.sha256(b"Action=GetCallerIdentity&Version=2011-06-16").hexdigest(),
    )
    with pytest.raises(SignatureDoesNotMatch):
        check(other, creds.secret_key, service="sts")
    with pytest.raises(SignatureDoesNotMatch):
        check(request, creds.secret_key + "x", service="sts")


def test_sigv4auth_get_with_awkward_path_and_query(creds: Credentials) -> None:
    url = f"{ENDPOINT}/a%20b/./c//%E1%88%B4/..?b=2&a=~1&a=0&empty=&x=%2F%2B%20"
    request = signed_by(SigV4Auth(creds, "execute-api", "us-east-1"), AWSRequest(method="GET", url=url))
    check(request, creds.secret_key, service="execute-api")


def test_sigv4queryauth_presigned(creds: Credentials) -> None:
    auth = SigV4QueryAuth(creds, "execute-api", "us-east-1", expires=900)
    request = signed_by(auth, AWSRequest(method="GET", url=f"{ENDPOINT}/items/42?view=full"))
    info = parse_signature(request)
    assert (info.form, info.expires, info.security_token) == ("query", 900, creds.token)
    check(request, creds.secret_key, service="execute-api")


def test_s3_header_and_presigned_with_unnormalised_key(creds: Credentials) -> None:
    key = "dir//./my file+1~ሴ.txt"
    url = f"{ENDPOINT}/bucket/{quote(key, safe='/~')}"
    request = AWSRequest(method="GET", url=url)
    request.context["payload_signing_enabled"] = True
    header_form = signed_by(S3SigV4Auth(creds, "s3", "us-east-1"), request)
    check(header_form, creds.secret_key, service="s3", normalize_path=False)
    with pytest.raises(SignatureDoesNotMatch):  # S3 paths must not be normalised
        check(header_form, creds.secret_key, service="s3", normalize_path=True)

    presigned = signed_by(S3SigV4QueryAuth(creds, "s3", "us-east-1"), AWSRequest(method="GET", url=url))
    info = parse_signature(presigned)
    verified = verify(
        presigned, info, creds.secret_key, now=datetime.now(UTC), service="s3", normalize_path=False
    )
    assert verified.payload_hash == UNSIGNED_PAYLOAD and not verified.payload_signed


# --- whole boto3 clients; the transport is replaced by a capture, the signer is botocore's -------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


CALLER_IDENTITY = b"""<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<GetCallerIdentityResult><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn>
<UserId>AROAEXAMPLE:s</UserId><Account>123456789012</Account></GetCallerIdentityResult>
<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"""


def capture(client: Any, event: str, body: bytes, headers: dict[str, str] | None = None) -> list[Any]:
    seen: list[Any] = []

    def before_send(request: Any, **_: Any) -> AWSResponse:
        seen.append(request)
        return AWSResponse(request.url, 200, headers or {}, _Raw(body))

    client.meta.events.register(event, before_send)
    return seen


def client(service: str, creds: Credentials, **kwargs: Any) -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
        **kwargs,
    )


def test_boto3_sts_get_caller_identity(creds: Credentials) -> None:
    sts = client("sts", creds)
    seen = capture(sts, "before-send.sts.GetCallerIdentity", CALLER_IDENTITY)
    assert sts.get_caller_identity()["Account"] == "123456789012"
    (prepared,) = seen
    assert prepared.body == "Action=GetCallerIdentity&Version=2011-06-15"
    request = to_http(prepared.method, prepared.url, prepared.headers, prepared.body)
    keys = SigningKeyCache()
    info = parse_signature(request)
    verify(
        request, info, creds.secret_key, now=datetime.now(UTC), region="us-east-1", service="sts", keys=keys
    )
    assert len(keys) == 1


def test_boto3_s3_get_object_and_presigned_url(creds: Credentials) -> None:
    s3 = client("s3", creds, config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    seen = capture(s3, "before-send.s3.GetObject", b"data", {"Content-Length": "4"})
    s3.get_object(Bucket="bucket", Key="a b/ሴ+%.txt")
    (prepared,) = seen
    request = to_http(prepared.method, prepared.url, prepared.headers, prepared.body)
    check(request, creds.secret_key, service="s3", normalize_path=False)

    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "bucket", "Key": "a b/ሴ.txt"}, ExpiresIn=60
    )
    presigned = to_http("GET", url, {"Host": urlsplit(url).netloc}, None)
    check(presigned, creds.secret_key, service="s3", normalize_path=False)


def test_boto3_s3_put_object_streaming_trailer(creds: Credentials) -> None:
    s3 = client("s3", creds, config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    seen = capture(s3, "before-send.s3.PutObject", b"", {"ETag": '"x"'})
    s3.put_object(Bucket="bucket", Key="k", Body=b"hello")
    (prepared,) = seen
    request = to_http(prepared.method, prepared.url, prepared.headers, None)
    request = HttpRequest(request.method, request.raw_path, request.raw_query, request.headers, None)
    info = parse_signature(request)
    verified = verify(
        request, info, creds.secret_key, now=datetime.now(UTC), service="s3", normalize_path=False
    )
    # botocore >= 1.36 sends aws-chunked bodies with a trailing checksum by default.
    assert verified.payload_hash == STREAMING_UNSIGNED_PAYLOAD_TRAILER
    assert not verified.payload_checked and not verified.payload_signed


def test_our_signature_verifies_with_botocore_canonicalisation(creds: Credentials) -> None:
    """sign() and botocore agree: the same request signed by both carries the same signature."""
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    ours = sign(
        HttpRequest(
            "POST",
            "/",
            "",
            (
                ("Host", "fedgate.example.com"),
                ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
            ),
            hashlib.sha256(body).hexdigest(),
        ),
        access_key_id=creds.access_key,
        secret_key=creds.secret_key,
        region="us-east-1",
        service="sts",
        now=when,
        session_token=creds.token,
    )
    request = sts_form_request()
    request.headers["Host"] = "fedgate.example.com"
    auth = SigV4Auth(creds, "sts", "us-east-1")
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    auth._modify_request_before_signing(request)
    botocore_signature = auth.signature(
        auth.string_to_sign(request, auth.canonical_request(request)), request
    )
    authorization = dict((n.lower(), v) for n, v in ours.headers)["authorization"]
    assert authorization.endswith(f"Signature={botocore_signature}")
