"""SigV2 through the proxy with stock clients: boto3's ``s3`` presigner and s3cmd.

Allowed per upstream (``allow_sigv2``); where it is not, the client is told SigV4 is required and
how to ask for it.
"""

from __future__ import annotations

import dataclasses
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway.proxy.s3 import signature_context
from gateway.sigv4 import SignatureInfo
from gateway.testing import OIDCTestIssuer
from tests.conftest import BackgroundLoop
from tests.conftest import serve_app as start_gateway
from tests.proxy.clients import client_env, run, s3cmd_config
from tests.proxy.conftest import BUCKET, Moto, ProxyGateway, assume_role, proxy_config, s3_client


@pytest.fixture(scope="module")
def v2_gateway(
    background_loop: BackgroundLoop,
    issuer: OIDCTestIssuer,
    moto: Moto,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyGateway]:
    """fedgate to moto with ``allow_sigv2: true``."""
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    config = proxy_config(issuer, moto.url, audit)
    upstream = config.upstreams[0].model_copy(update={"allow_sigv2": True})
    runner, port, app = background_loop.run(
        start_gateway(config.model_copy(update={"upstreams": [upstream]}))
    )
    yield ProxyGateway(f"http://127.0.0.1:{port}", f"http://localhost:{port}", port, app, audit)
    background_loop.run(runner.cleanup())


@pytest.fixture(scope="module")
def v2_creds(v2_gateway: ProxyGateway, issuer: OIDCTestIssuer) -> dict[str, str]:
    return assume_role(v2_gateway, issuer)


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()  # type: ignore[no-any-return]


def _refused(url: str) -> tuple[int, str]:
    """The status and S3 error code of a GET of ``url`` that must fail."""
    with pytest.raises(urllib.error.HTTPError) as exc:
        _fetch(url)
    with exc.value as error:
        body = error.read().decode()
    return error.code, body.split("<Code>", 1)[1].split("</Code>", 1)[0]


def test_boto3_sigv2_presigned_get(v2_gateway: ProxyGateway, v2_creds: dict[str, str], moto: Moto) -> None:
    moto.client().put_object(Bucket=BUCKET, Key="public/v2.txt", Body=b"signed with v2")
    presigner = s3_client(v2_gateway, v2_creds, signature_version="s3")
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "public/v2.txt"})
    assert "AWSAccessKeyId=" in url and "x-amz-security-token=" in url
    assert _fetch(url) == b"signed with v2"
    denied = presigner.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "private/v2"})
    assert _refused(denied) == (403, "AccessDenied")
    expires = url.rsplit("Expires=", 1)[1].split("&")[0]
    tampered = url.replace(f"Expires={expires}", f"Expires={int(expires) + 1}")
    assert _refused(tampered) == (403, "SignatureDoesNotMatch")


def test_s3cmd_with_sigv2(
    v2_gateway: ProxyGateway, v2_creds: dict[str, str], moto: Moto, tmp_path: Path
) -> None:
    config = s3cmd_config(tmp_path / "s3cfg", v2_gateway.s3_url, v2_creds, signature_v2=True)
    env = client_env(v2_creds, tmp_path)
    local = tmp_path / "up.txt"
    local.write_bytes(b"s3cmd v2 upload")
    done = run(["s3cmd", "-c", str(config), "put", str(local), f"s3://{BUCKET}/public/s3cmd-v2.txt"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        moto.client().get_object(Bucket=BUCKET, Key="public/s3cmd-v2.txt")["Body"].read()
        == b"s3cmd v2 upload"
    )
    listed = run(["s3cmd", "-c", str(config), "ls", f"s3://{BUCKET}/public/"], env)
    assert "s3cmd-v2.txt" in listed.stdout, listed.stderr
    # s3cmd signurl leaves the session token out of its URLs, so, as on S3, temporary credentials
    # cannot make them: the key alone is unknown.
    signed = run(["s3cmd", "-c", str(config), "signurl", f"s3://{BUCKET}/public/s3cmd-v2.txt", "+300"], env)
    assert signed.returncode == 0, signed.stderr
    assert _refused(signed.stdout.strip()) == (403, "InvalidAccessKeyId")


def test_sigv2_refused_by_default_says_how_to_sign_v4(
    gateway: ProxyGateway, session_credentials: dict[str, str]
) -> None:
    presigner: Any = s3_client(gateway, session_credentials, signature_version="s3")
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "public/x"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        _fetch(url)
    with exc.value as error:
        body = error.read().decode()
    assert error.code == 400 and "<Code>InvalidRequest</Code>" in body
    assert "AWS4-HMAC-SHA256" in body and 'signature_version="s3v4"' in body.replace("&quot;", '"')


def test_aws_cli_v1_presign_is_sigv2(
    v2_gateway: ProxyGateway, v2_creds: dict[str, str], moto: Moto, tmp_path: Path
) -> None:
    moto.client().put_object(Bucket=BUCKET, Key="public/cli-v2.txt", Body=b"aws s3 presign")
    done = run(
        ["aws", "s3", "presign", f"s3://{BUCKET}/public/cli-v2.txt", "--endpoint-url", v2_gateway.s3_url],
        client_env(v2_creds, tmp_path),
    )
    url = done.stdout.strip()
    assert done.returncode == 0 and "AWSAccessKeyId=" in url, done.stderr
    assert _fetch(url) == b"aws s3 presign"


def test_parameters_the_signature_does_not_cover_cannot_choose_the_operation(
    v2_gateway: ProxyGateway, v2_creds: dict[str, str], moto: Moto
) -> None:
    """SigV2 signs only the subresources S3 listed long ago: a parameter it does not cover, added to
    a signed request, must not turn it into another operation (the upstream never sees the client's
    signature: fedgate re-signs)."""
    moto.client().put_object(Bucket=BUCKET, Key="public/src.txt", Body=b"source content")
    presigner = s3_client(v2_gateway, v2_creds, signature_version="s3")
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "public/src.txt"})
    for extra in ("legal-hold", "retention", "attributes", "x-id=GetObject&publicAccessBlock"):
        assert _refused(f"{url}&{extra}") == (400, "InvalidRequest"), extra
    # A signed subresource's value with '&' would sign as two subresources.
    content_type = presigner.generate_presigned_url(
        "get_object",
        Params={"Bucket": BUCKET, "Key": "public/src.txt", "ResponseContentType": "x&versionId=v"},
    )
    assert _refused(content_type) == (400, "AuthorizationHeaderMalformed")
    # An Expires past the last date there is: refused as malformed, not a server error.
    expires = url.rsplit("Expires=", 1)[1].split("&")[0]
    assert _refused(url.replace(f"Expires={expires}", "Expires=999999999999")) == (
        400,
        "AuthorizationHeaderMalformed",
    )

    # Header form: x-amz-* query parameters are not signed; added to a PUT they would make a copy.
    client = s3_client(v2_gateway, v2_creds, signature_version="s3")

    def add_copy_source(request: Any, **_: Any) -> None:
        request.url += "?x-amz-copy-source=%2F" + BUCKET + "%2Fpublic%2Fsrc.txt&x-amz-metadata-directive=COPY"

    client.meta.events.register("before-send.s3.PutObject", add_copy_source)
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=BUCKET, Key="public/dest.txt", Body=b"what the signer wrote")
    assert exc.value.response["Error"]["Code"] == "InvalidRequest"
    with pytest.raises(ClientError):
        moto.client().head_object(Bucket=BUCKET, Key="public/dest.txt")  # nothing was written


def test_a_sigv2_presigned_url_has_no_signature_age() -> None:
    """It says when it expires, not when it was signed: a condition on s3:signatureAge cannot be
    met by it (rather than seeing an age of 0)."""
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    info = SignatureInfo(
        "query", "ASIAEXAMPLE", "20260101", "us-east-1", "s3", (), "", stamp, "20260101T000000Z"
    )
    assert "s3:signatureAge" not in signature_context(
        info, "UNSIGNED-PAYLOAD", stamp.timestamp() + 5, version="AWS"
    )
    header = dataclasses.replace(info, form="header")
    assert (
        signature_context(header, "UNSIGNED-PAYLOAD", stamp.timestamp() + 5, version="AWS")["s3:signatureAge"]
        == "5000"
    )
    v4 = signature_context(info, "UNSIGNED-PAYLOAD", stamp.timestamp() + 5)
    assert v4["s3:signatureAge"] == "5000"
