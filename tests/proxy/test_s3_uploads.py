"""Multipart, presigned and aws-chunked uploads through fedgate to moto."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig

from gateway.sigv4.chunked import checksum_value, encode_unsigned_chunked
from tests.proxy.conftest import BUCKET, Moto, ProxyGateway, s3_client
from tests.proxy.helpers import chunked_put, send, signed

MIB = 1024 * 1024


@pytest.fixture()
def presigner(gateway: ProxyGateway, session_credentials: dict[str, str]) -> Any:
    """boto3 S3 that presigns with SigV4 (boto3 still defaults to SigV2 for presigned URLs)."""
    return s3_client(gateway, session_credentials, signature_version="s3v4")


def test_multipart_upload(s3: Any, moto: Moto) -> None:
    key = "public/multi.bin"
    parts = [b"a" * (5 * MIB), b"b" * 1000]
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)
    etags = []
    for number, data in enumerate(parts, 1):
        part = s3.upload_part(
            Bucket=BUCKET, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=data
        )
        etags.append({"ETag": part["ETag"], "PartNumber": number})
    listed = s3.list_parts(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"])
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": etags}
    )
    stored = moto.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(b"".join(parts)).digest()


def test_abort_multipart_upload(s3: Any, moto: Moto) -> None:
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="public/aborted.bin")
    s3.abort_multipart_upload(Bucket=BUCKET, Key="public/aborted.bin", UploadId=upload["UploadId"])
    uploads = moto.client().list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert upload["UploadId"] not in [u["UploadId"] for u in uploads]


def test_managed_transfer_uses_multipart(s3: Any, moto: Moto) -> None:
    data = bytes(range(256)) * (24 * 1024)  # 6 MiB
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_fileobj(io.BytesIO(data), BUCKET, "public/managed.bin", Config=config)
    out = io.BytesIO()
    s3.download_fileobj(BUCKET, "public/managed.bin", out)
    assert out.getvalue() == data


def test_presigned_get_with_plain_http_client(presigner: Any, moto: Moto) -> None:
    moto.client().put_object(Bucket=BUCKET, Key="public/shared.txt", Body=b"shared")
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "public/shared.txt"}, ExpiresIn=60
    )
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"shared"


def test_presigned_url_for_denied_key_is_refused(presigner: Any, moto: Moto) -> None:
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "private/x"}, ExpiresIn=60
    )
    mark = len(moto.log.lines)
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(url, timeout=10)
    assert exc.value.code == 403
    assert b"<Code>AccessDenied</Code>" in exc.value.read()
    assert moto.log.since(mark) == []


def test_tampered_presigned_url_is_refused(presigner: Any, moto: Moto) -> None:
    moto.client().put_object(Bucket=BUCKET, Key="public/a.txt", Body=b"a")
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "public/a.txt"}, ExpiresIn=60
    )
    mark = len(moto.log.lines)
    for tampered in (
        url.replace("public/a.txt", "public/b.txt"),
        url.replace("X-Amz-Expires=60", "X-Amz-Expires=61"),
    ):
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(tampered, timeout=10)
        assert exc.value.code == 403
        assert b"<Code>SignatureDoesNotMatch</Code>" in exc.value.read()
    assert moto.log.since(mark) == []


@pytest.mark.parametrize("trailer", [False, True])
def test_chunk_signed_upload(
    gateway: ProxyGateway, session_credentials: dict[str, str], moto: Moto, trailer: bool
) -> None:
    chunks = [b"x" * 65536, b"y" * 65536, b"z" * 100]
    key = f"public/chunked-{trailer}.bin"
    reply = chunked_put(gateway.port, session_credentials, key, chunks, trailer=trailer)
    assert reply.status == 200, reply.body
    assert moto.client().get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"".join(chunks)


def test_tampered_chunk_never_completes_upstream(
    gateway: ProxyGateway, session_credentials: dict[str, str], moto: Moto
) -> None:
    chunks = [b"x" * 65536, b"y" * 65536, b"z" * 100]
    reply = chunked_put(gateway.port, session_credentials, "public/tampered.bin", chunks, tamper=70000)
    assert reply.status == 403
    assert reply.code == "SignatureDoesNotMatch"
    keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert "public/tampered.bin" not in keys


def test_unsigned_trailer_upload(
    gateway: ProxyGateway, session_credentials: dict[str, str], moto: Moto
) -> None:
    chunks = [b"q" * 70000, b"r" * 10]
    payload = b"".join(chunks)
    headers = [
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", str(len(payload))),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ]
    target, signed_headers = signed(
        session_credentials,
        "PUT",
        f"/{BUCKET}/public/unsigned-trailer.bin",
        host=f"localhost:{gateway.port}",
        headers=headers,
        payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    )
    body = b"".join(
        encode_unsigned_chunked(
            chunks, [("x-amz-checksum-crc32", checksum_value("x-amz-checksum-crc32", payload))]
        )
    )
    reply = send(gateway.port, "PUT", target, [*signed_headers, ("Content-Length", str(len(body)))], body)
    assert reply.status == 200, reply.body
    stored = moto.client().get_object(Bucket=BUCKET, Key="public/unsigned-trailer.bin")["Body"].read()
    assert stored == payload
