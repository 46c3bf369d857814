"""The main S3 flows through fedgate against moto and against SeaweedFS, which checks signatures.

moto accepts whatever fedgate signs; SeaweedFS verifies every re-signed request (header SigV4,
payload hash, streaming forms) against its own identity, so a flow passing against both proves the
re-signing as well as the forwarding.
"""

from __future__ import annotations

import io
import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from gateway.sigv4.checksums import checksum_value
from gateway.testing import OIDCTestIssuer
from tests.conftest import BackgroundLoop
from tests.conftest import serve_app as start_gateway
from tests.proxy.clients import client_env, run, run_js_s3, s3cmd_config
from tests.proxy.conftest import (
    BUCKET,
    UPSTREAM_KEY,
    UPSTREAM_SECRET,
    ProxyGateway,
    assume_role,
    proxy_config,
    s3_client,
    serve_proxy,
)
from tests.proxy.helpers import chunked_put
from tests.proxy.seaweed import SeaweedS3

MIB = 1024 * 1024


class Backend(Protocol):
    url: str

    def client(self) -> Any: ...


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """SeaweedFS with fedgate's upstream key as its one identity, and the data bucket."""
    weed = SeaweedS3(tmp_path_factory.mktemp("weed"), access_key=UPSTREAM_KEY, secret_key=UPSTREAM_SECRET)
    try:
        weed.create_bucket(BUCKET)
        yield weed
    finally:
        weed.stop()


@pytest.fixture(scope="module", params=["moto", "seaweed"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """The S3 upstream: moto's server, or SeaweedFS."""
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def proxied(
    background_loop: BackgroundLoop,
    issuer: OIDCTestIssuer,
    backend: Backend,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyGateway]:
    """fedgate proxying host ``localhost`` to ``backend`` (auth: resign, default forwarding headers)."""
    audit_path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with serve_proxy(background_loop, proxy_config(issuer, backend.url, audit_path), audit_path) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def creds(proxied: ProxyGateway, issuer: OIDCTestIssuer) -> dict[str, str]:
    return assume_role(proxied, issuer)


@pytest.fixture()
def s3(proxied: ProxyGateway, creds: dict[str, str]) -> Any:
    return s3_client(proxied, creds)


def stored(backend: Backend, key: str) -> bytes:
    return backend.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()  # type: ignore[no-any-return]


def test_put_and_get(s3: Any, backend: Backend) -> None:
    s3.put_object(Bucket=BUCKET, Key="public/flow.txt", Body=b"through fedgate")
    assert stored(backend, "public/flow.txt") == b"through fedgate"
    assert s3.get_object(Bucket=BUCKET, Key="public/flow.txt")["Body"].read() == b"through fedgate"
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="public/")
    assert "public/flow.txt" in [o["Key"] for o in listed["Contents"]]


@pytest.mark.parametrize("trailer", [False, True])
def test_aws_chunked_put(
    proxied: ProxyGateway, creds: dict[str, str], backend: Backend, trailer: bool
) -> None:
    chunks = [b"x" * 65536, b"y" * 65536, b"z" * 100]
    key = f"public/chunked-{trailer}.bin"
    reply = chunked_put(proxied.port, creds, key, chunks, trailer=trailer)
    assert reply.status == 200, reply.body
    assert stored(backend, key) == b"".join(chunks)


def test_multipart(s3: Any, backend: Backend) -> None:
    data = bytes(range(256)) * (24 * 1024)  # 6 MiB
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_fileobj(io.BytesIO(data), BUCKET, "public/multi.bin", Config=config)
    assert stored(backend, "public/multi.bin") == data


def test_presigned_get_boto3_and_put_js(
    proxied: ProxyGateway, creds: dict[str, str], backend: Backend, tmp_path: Path
) -> None:
    url = run_js_s3(
        proxied.s3_url, client_env(creds, tmp_path), "presign-put", BUCKET, "public/url.txt", "by url"
    )
    assert "url" in url, url
    put = urllib.request.Request(
        url["url"], data=b"by url", method="PUT", headers={"Content-Type": "application/octet-stream"}
    )
    with urllib.request.urlopen(put, timeout=10) as response:
        assert response.status == 200
    assert stored(backend, "public/url.txt") == b"by url"
    presigner = s3_client(proxied, creds, signature_version="s3v4")
    get = presigner.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "public/url.txt"})
    with urllib.request.urlopen(get, timeout=10) as response:
        assert response.read() == b"by url"


def test_forwarded_host_breaks_a_verifying_upstream(
    background_loop: BackgroundLoop,
    issuer: OIDCTestIssuer,
    seaweed: SeaweedS3,
    tmp_path: Path,
) -> None:
    """Why resign's default leaves X-Forwarded-Host out: SeaweedFS checks the signature against it."""
    config = proxy_config(issuer, seaweed.url, tmp_path / "audit.jsonl")
    upstream = config.upstreams[0].model_copy(
        update={"forwarded_headers": ["X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"]}
    )
    runner, port, _ = background_loop.run(start_gateway(config.model_copy(update={"upstreams": [upstream]})))
    try:
        gateway = ProxyGateway(f"http://127.0.0.1:{port}", f"http://localhost:{port}", port, _, tmp_path)
        client = s3_client(gateway, assume_role(gateway, issuer))
        with pytest.raises(ClientError) as exc:
            client.put_object(Bucket=BUCKET, Key="public/forwarded.txt", Body=b"x")
        assert exc.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    finally:
        background_loop.run(runner.cleanup())


def _keys(backend: Backend, prefix: str) -> set[str]:
    listed = backend.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"] for o in listed.get("Contents", [])}


@pytest.mark.parametrize("quiet", [False, True])
def test_delete_objects_with_a_denied_key(s3: Any, backend: Backend, quiet: bool) -> None:
    prefix = f"public/del-{quiet}/"
    for name in ("a", "b"):
        backend.client().put_object(Bucket=BUCKET, Key=prefix + name, Body=b"x")
    backend.client().put_object(Bucket=BUCKET, Key=f"public/keep/{quiet}", Body=b"kept")
    objects = [{"Key": prefix + "a"}, {"Key": f"public/keep/{quiet}"}, {"Key": prefix + "b"}]
    out = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": objects, "Quiet": quiet})
    assert [e["Key"] for e in out["Errors"]] == [f"public/keep/{quiet}"]
    assert out["Errors"][0]["Code"] == "AccessDenied"
    deleted = sorted(d["Key"] for d in out.get("Deleted", []))
    assert deleted == ([] if quiet else [prefix + "a", prefix + "b"])
    assert _keys(backend, prefix) == set()
    assert _keys(backend, "public/keep/") >= {f"public/keep/{quiet}"}


def test_delete_objects_all_denied_never_reaches_the_upstream(s3: Any, backend: Backend) -> None:
    backend.client().put_object(Bucket=BUCKET, Key="private/secret", Body=b"x")
    out = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "private/secret"}]})
    assert [(e["Key"], e["Code"]) for e in out["Errors"]] == [("private/secret", "AccessDenied")]
    assert "private/secret" in _keys(backend, "private/")


def test_aws_cli_delete_objects(
    proxied: ProxyGateway, creds: dict[str, str], backend: Backend, tmp_path: Path
) -> None:
    backend.client().put_object(Bucket=BUCKET, Key="public/cli/one", Body=b"x")
    backend.client().put_object(Bucket=BUCKET, Key="public/keep/cli", Body=b"x")
    request = '{"Objects": [{"Key": "public/cli/one"}, {"Key": "public/keep/cli"}]}'
    done = run(
        ["aws", "--endpoint-url", proxied.s3_url, "s3api", "delete-objects", "--bucket", BUCKET,
         "--delete", request, "--output", "json"],
        client_env(creds, tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [d["Key"] for d in out["Deleted"]] == ["public/cli/one"]
    assert [(e["Key"], e["Code"]) for e in out["Errors"]] == [("public/keep/cli", "AccessDenied")]
    assert _keys(backend, "public/keep/cli") == {"public/keep/cli"}


def test_s3cmd_sync_delete_removed(
    proxied: ProxyGateway, creds: dict[str, str], backend: Backend, tmp_path: Path
) -> None:
    prefix = "public/s3cmd/"
    for name in ("gone", "kept-one"):
        backend.client().put_object(Bucket=BUCKET, Key=prefix + name, Body=b"old")
    local = tmp_path / "local"
    local.mkdir()
    (local / "new").write_bytes(b"new file")
    config = s3cmd_config(tmp_path / "s3cfg", proxied.s3_url, creds)
    done = run(
        ["s3cmd", "-c", str(config), "sync", "--delete-removed", f"{local}/", f"s3://{BUCKET}/{prefix}"],
        client_env(creds, tmp_path),
    )
    assert _keys(backend, prefix) == {prefix + "new", prefix + "kept-one"}, done.stdout + done.stderr
    events = [json.loads(line) for line in proxied.audit_path.read_text().splitlines()]
    deletes = [e for e in events if e["eventName"] == "DeleteObjects"]
    assert deletes and deletes[-1]["additionalEventData"]["deniedKeys"] == 1
    assert stored(backend, prefix + "new") == b"new file"


@pytest.mark.timeout(240)
def test_js_sdk_100_mb_upload_with_crc32c_trailer(
    background_loop: BackgroundLoop, issuer: OIDCTestIssuer, seaweed: SeaweedS3, tmp_path: Path
) -> None:
    """The JS SDK streams a file as aws-chunked with a CRC32C trailer: fedgate checks it on the way
    and re-frames it, trailer kept, for SeaweedFS, which checks it again (moto would take minutes
    to search 100 MB for the trailer)."""
    piece = os.urandom(1024 * 1024)
    path = tmp_path / "big.bin"
    with path.open("wb") as out:
        for _ in range(100):
            out.write(piece)
    config = proxy_config(issuer, seaweed.url, tmp_path / "audit.jsonl")
    runner, port, app = background_loop.run(start_gateway(config))
    try:
        gateway = ProxyGateway(f"http://127.0.0.1:{port}", f"http://localhost:{port}", port, app, tmp_path)
        env = client_env(assume_role(gateway, issuer), tmp_path)
        key = "public/js-100mb.bin"
        result = run_js_s3(gateway.s3_url, env, "put-file", BUCKET, key, str(path), "CRC32C")
        assert "ETag" in result, result
        assert result["checksum"] in (None, checksum_value("x-amz-checksum-crc32c", piece * 100))
        head = seaweed.client().head_object(Bucket=BUCKET, Key=key)
        assert head["ContentLength"] == 100 * 1024 * 1024
        last = seaweed.client().get_object(Bucket=BUCKET, Key=key, Range=f"bytes={99 * 1024 * 1024}-")
        assert last["Body"].read() == piece
    finally:
        background_loop.run(runner.cleanup())
