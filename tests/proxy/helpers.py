"""Hand-signed requests over raw HTTP, for what boto3 will not send (tampering, chunked bodies, tricks)."""

from __future__ import annotations

import hashlib
import http.client
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from gateway.sigv4 import HttpRequest, derive_signing_key, sign
from gateway.sigv4.chunked import checksum_value, sign_chunked


@dataclass
class Reply:
    """What came back."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str:
        """The error code of an S3 XML or JSON error document (empty when none)."""
        text = self.body.decode("utf-8", "replace")
        if "<Code>" in text:
            return text.split("<Code>", 1)[1].split("</Code>", 1)[0]
        if '"__type"' in text:
            return text.split('"__type": "', 1)[1].split('"', 1)[0]
        return ""


def send(
    port: int,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes | Iterable[bytes] = b"",
    *,
    timeout: float = 30,
) -> Reply:
    """Send exactly ``method target`` with ``headers`` (no header added) and ``body`` to 127.0.0.1."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        try:
            if isinstance(body, bytes):
                if body:
                    conn.send(body)
            else:
                for piece in body:
                    conn.send(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused the body early; its answer is still to be read
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def signed(
    credentials: dict[str, str],
    method: str,
    path: str,
    *,
    host: str,
    query: str = "",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    payload_hash: str | None = None,
    service: str = "s3",
    region: str = "us-east-1",
    now: float | None = None,
    form: Literal["header", "query"] = "header",
    content_sha256_header: bool = True,
    expires: int = 300,
) -> tuple[str, list[tuple[str, str]]]:
    """Sign a request with session ``credentials``; return its request target and headers."""
    request = HttpRequest(method, path, query, (("Host", host), *headers), hashlib.sha256(body).hexdigest())
    out = sign(
        request,
        access_key_id=credentials["aws_access_key_id"],
        secret_key=credentials["aws_secret_access_key"],
        session_token=credentials["aws_session_token"],
        region=region,
        service=service,
        now=datetime.fromtimestamp(time.time() if now is None else now, UTC),
        normalize_path=service != "s3",
        content_sha256_header=content_sha256_header and form == "header",
        payload_hash=payload_hash,
        form=form,
        expires=expires,
    )
    target = out.raw_path + (f"?{out.raw_query}" if out.raw_query else "")
    return target, list(out.headers)


def chunked_put(
    port: int,
    creds: dict[str, str],
    key: str,
    chunks: list[bytes],
    *,
    trailer: bool = False,
    tamper: int | None = None,
    bucket: str = "data",
) -> Reply:
    """An aws-chunked, chunk-signed PUT of ``chunks`` (with a CRC32 trailer when ``trailer``),
    one byte flipped at wire offset ``tamper`` when given."""
    payload = b"".join(chunks)
    literal = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    headers = [
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", str(len(payload))),
    ]
    trailers = (
        [("x-amz-checksum-crc32", checksum_value("x-amz-checksum-crc32", payload))] if trailer else None
    )
    if trailer:
        headers.append(("x-amz-trailer", "x-amz-checksum-crc32"))
    # The wire length depends only on sizes, so sign once with a dummy body to learn it.
    target, signed_headers = signed(
        creds,
        "PUT",
        f"/{bucket}/{key}",
        host=f"localhost:{port}",
        headers=headers,
        payload_hash=literal,
    )
    auth = dict(signed_headers)["Authorization"]
    seed = auth.rsplit("Signature=", 1)[1]
    date = dict(signed_headers)["X-Amz-Date"]
    signing_key = derive_signing_key(creds["aws_secret_access_key"], date[:8], "us-east-1", "s3")
    body = b"".join(
        sign_chunked(
            chunks,
            signing_key=signing_key,
            seed_signature=seed,
            scope=f"{date[:8]}/us-east-1/s3/aws4_request",
            timestamp=date,
            trailer=trailers,
        )
    )
    if tamper is not None:
        body = body[:tamper] + bytes([body[tamper] ^ 1]) + body[tamper + 1 :]
    return send(port, "PUT", target, [*signed_headers, ("Content-Length", str(len(body)))], body)
