"""Presigned URLs from the JavaScript SDK v3 (``@aws-sdk/s3-request-presigner``), default settings.

Its URLs carry ``X-Amz-Content-Sha256=UNSIGNED-PAYLOAD`` and the flexible-checksum headers hoisted
into the query (``x-amz-checksum-mode`` on a GET; ``x-amz-checksum-crc32`` and
``x-amz-sdk-checksum-algorithm`` on a PUT), which S3 reads as headers, and so does fedgate.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.proxy.clients import client_env, run_js_s3
from tests.proxy.conftest import BUCKET, Moto, ProxyGateway

# urllib would send a form content type, which moto's server reads as a form (storing nothing).
OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture()
def env(session_credentials: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return client_env(session_credentials, tmp_path)


def _presign(gateway: ProxyGateway, env: dict[str, str], *args: str) -> str:
    out = run_js_s3(gateway.s3_url, env, *args)
    assert "url" in out, out
    return str(out["url"])


def test_js_presigned_get(gateway: ProxyGateway, env: dict[str, str], moto: Moto) -> None:
    moto.client().put_object(Bucket=BUCKET, Key="public/js get.txt", Body=b"from js")
    url = _presign(gateway, env, "presign-get", BUCKET, "public/js get.txt")
    assert "X-Amz-Content-Sha256=UNSIGNED-PAYLOAD" in url and "x-amz-checksum-mode=ENABLED" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"from js"


def test_js_presigned_put(gateway: ProxyGateway, env: dict[str, str], moto: Moto) -> None:
    url = _presign(gateway, env, "presign-put", BUCKET, "public/js-put.txt", "uploaded by url")
    assert "x-amz-checksum-crc32=" in url and "x-amz-sdk-checksum-algorithm=CRC32" in url
    put = urllib.request.Request(url, data=b"uploaded by url", method="PUT", headers=OCTETS)
    with urllib.request.urlopen(put, timeout=10) as response:
        assert response.status == 200
    stored = moto.client().get_object(Bucket=BUCKET, Key="public/js-put.txt")["Body"].read()
    assert stored == b"uploaded by url"


def test_js_presigned_put_with_another_body_is_bad_digest(
    gateway: ProxyGateway, env: dict[str, str], moto: Moto
) -> None:
    url = _presign(gateway, env, "presign-put", BUCKET, "public/js-other.txt", "the body signed for")
    put = urllib.request.Request(url, data=b"a body not signed f", method="PUT", headers=OCTETS)
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(put, timeout=10)
    assert exc.value.code == 400
    assert b"<Code>BadDigest</Code>" in exc.value.read()
    keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert "public/js-other.txt" not in keys
