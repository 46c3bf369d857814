"""S3's flexible checksums through the proxy: every algorithm, as a header and as a trailer."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.sigv4.checksums import CHECKSUM_HEADERS, checksum_value
from gateway.sigv4.chunked import encode_unsigned_chunked
from tests.proxy.conftest import BUCKET, Moto, ProxyGateway
from tests.proxy.helpers import send, signed

ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]
PAYLOAD = bytes(range(256)) * 300


def test_every_algorithm_is_tested() -> None:
    assert {f"x-amz-checksum-{a.lower()}" for a in ALGORITHMS} == CHECKSUM_HEADERS


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_boto3_checksum_header(s3: Any, moto: Moto, algorithm: str) -> None:
    key = f"public/checksum-{algorithm}.bin"
    out = s3.put_object(Bucket=BUCKET, Key=key, Body=PAYLOAD, ChecksumAlgorithm=algorithm)
    name = f"x-amz-checksum-{algorithm.lower()}"
    assert out[f"Checksum{algorithm}"] == checksum_value(name, PAYLOAD)
    assert moto.client().get_object(Bucket=BUCKET, Key=key)["Body"].read() == PAYLOAD


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_unsigned_trailer(
    gateway: ProxyGateway, session_credentials: dict[str, str], moto: Moto, algorithm: str
) -> None:
    name = f"x-amz-checksum-{algorithm.lower()}"
    key = f"public/trailer-{algorithm}.bin"
    reply = _trailer_put(gateway, session_credentials, key, name, checksum_value(name, PAYLOAD))
    assert reply.status == 200, reply.body
    assert moto.client().get_object(Bucket=BUCKET, Key=key)["Body"].read() == PAYLOAD


def test_wrong_trailer_is_bad_digest(
    gateway: ProxyGateway, session_credentials: dict[str, str], moto: Moto
) -> None:
    name = "x-amz-checksum-crc32c"
    key = "public/trailer-wrong.bin"
    reply = _trailer_put(gateway, session_credentials, key, name, checksum_value(name, b"other"))
    assert (reply.status, reply.code) == (400, "BadDigest")
    keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert key not in keys


@pytest.mark.parametrize(
    ("value", "code"),
    [(checksum_value("x-amz-checksum-crc32c", b"other"), "BadDigest"), ("AAAA", "InvalidRequest")],
    ids=["mismatch", "malformed"],
)
def test_wrong_header_checksum(
    gateway: ProxyGateway, session_credentials: dict[str, str], moto: Moto, value: str, code: str
) -> None:
    key = f"public/header-{code}.bin"
    target, headers = signed(
        session_credentials,
        "PUT",
        f"/{BUCKET}/{key}",
        host=f"localhost:{gateway.port}",
        headers=[("x-amz-checksum-crc32c", value)],
        payload_hash="UNSIGNED-PAYLOAD",
    )
    reply = send(gateway.port, "PUT", target, [*headers, ("Content-Length", str(len(PAYLOAD)))], PAYLOAD)
    assert (reply.status, reply.code) == (400, code)
    keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert key not in keys


def _trailer_put(gateway: ProxyGateway, credentials: dict[str, str], key: str, name: str, value: str) -> Any:
    headers = [
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", str(len(PAYLOAD))),
        ("x-amz-trailer", name),
    ]
    target, signed_headers = signed(
        credentials,
        "PUT",
        f"/{BUCKET}/{key}",
        host=f"localhost:{gateway.port}",
        headers=headers,
        payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    )
    body = b"".join(encode_unsigned_chunked([PAYLOAD[:50000], PAYLOAD[50000:]], [(name, value)]))
    return send(gateway.port, "PUT", target, [*signed_headers, ("Content-Length", str(len(body)))], body)
