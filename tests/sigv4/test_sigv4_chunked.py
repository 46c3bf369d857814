"""aws-chunked streaming payloads: verify() of the seed, ChunkedDecoder, sign_chunked, and interop.

Every rejection test also checks what the decoder released before failing: never a byte of the
chunk that failed, nor anything after it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import (
    BadDigest,
    IncompleteBody,
    InvalidParameterValue,
    InvalidRequest,
    ServiceError,
    SignatureDoesNotMatch,
)
from gateway.sigv4 import (
    STREAMING_AWS4_HMAC_SHA256_PAYLOAD,
    STREAMING_AWS4_HMAC_SHA256_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    ChunkedDecoder,
    HttpRequest,
    StreamingContext,
    checksum_value,
    derive_signing_key,
    encode_unsigned_chunked,
    parse_signature,
    sign,
    sign_chunked,
    verify,
)
from gateway.sigv4.chunked import CHECKSUM_TRAILERS, MAX_CHUNK_LINE, TrailerFramer

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
AKID = "ASIAFEDGATEEXAMPLE01"
SECRET = "kC7p2PJ0h3Ey9sR0Yx0tX8m0Nn1oW5qLb6JzD8vF"
MODES = (
    STREAMING_AWS4_HMAC_SHA256_PAYLOAD,
    STREAMING_AWS4_HMAC_SHA256_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
)
SIGNED_MODES = MODES[:2]
CRC32 = "x-amz-checksum-crc32"


def upload(
    mode: str,
    payload: bytes,
    *,
    method: str = "PUT",
    path: str = "/bucket/key",
    checksum: str | None = CRC32,
    when: datetime = NOW,
    decoded: int | str | None = -1,
    extra: Sequence[tuple[str, str]] = (),
) -> HttpRequest:
    """A request signed as an SDK signs a streaming upload (the body is framed separately).

    ``decoded`` is the x-amz-decoded-content-length to send: the payload's length by default.
    """
    headers = [("Host", "s3.fedgate.example"), ("Content-Encoding", "aws-chunked"), *extra]
    if decoded is not None:
        headers.append(("x-amz-decoded-content-length", str(len(payload) if decoded == -1 else decoded)))
    if mode.endswith("-TRAILER") and checksum is not None:
        headers.append(("x-amz-trailer", checksum))
    return sign(
        HttpRequest(method, path, "", tuple(headers)),
        access_key_id=AKID,
        secret_key=SECRET,
        region="us-east-1",
        service="s3",
        now=when,
        normalize_path=False,
        content_sha256_header=True,
        payload_hash=mode,
    )


def context_of(request: HttpRequest, *, now: datetime = NOW) -> StreamingContext:
    verified = verify(request, parse_signature(request), SECRET, now=now, service="s3", normalize_path=False)
    assert verified.streaming is not None
    return verified.streaming


def split(payload: bytes, size: int) -> list[bytes]:
    return [payload[i : i + size] for i in range(0, len(payload), size)]


def frame(ctx: StreamingContext, payload: bytes, size: int, checksum: str | None = CRC32) -> bytes:
    """The wire body for ``payload`` in chunks of ``size``, signed (or not) per ``ctx``."""
    trailer = [(checksum, checksum_value(checksum, payload))] if checksum else []
    if not ctx.signed_chunks:
        return b"".join(encode_unsigned_chunked(split(payload, size), trailer))
    return b"".join(
        sign_chunked(
            split(payload, size),
            signing_key=derive_signing_key(SECRET, NOW.strftime("%Y%m%d"), "us-east-1", "s3"),
            seed_signature=ctx.seed_signature,
            scope=ctx.scope,
            timestamp=ctx.timestamp,
            trailer=trailer if ctx.trailer else None,
        )
    )


def pieces(body: bytes, cuts: Sequence[int]) -> Iterator[bytes]:
    start = 0
    for cut in sorted(set(cuts)):
        yield body[start:cut]
        start = cut
    yield body[start:]


def decode(ctx: StreamingContext, body: bytes, step: int = 7) -> tuple[bytes, ServiceError | None]:
    """Feed ``body`` in ``step``-byte pieces then finish; return what was released and any error."""
    decoder = ChunkedDecoder(ctx)
    released = bytearray()
    try:
        for piece in split(body, step):
            released += b"".join(decoder.feed(piece))
        decoder.finish()
    except ServiceError as error:
        with pytest.raises(type(error)):  # a failed decoder stays failed
            decoder.feed(b"")
        return bytes(released), error
    return bytes(released), None


# --- round trips ------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    payload=st.binary(max_size=3000),
    size=st.integers(1, 1200),
    cuts=st.lists(st.integers(0, 4000), max_size=12),
    checksum=st.sampled_from(sorted(CHECKSUM_TRAILERS)),
)
def test_round_trip_any_split(mode: str, payload: bytes, size: int, cuts: list[int], checksum: str) -> None:
    ctx = context_of(upload(mode, payload, checksum=checksum))
    assert ctx.decoded_length == len(payload)
    body = frame(ctx, payload, size, checksum)
    decoder = ChunkedDecoder(ctx)
    out = [
        piece for part in pieces(body, [c for c in cuts if c <= len(body)]) for piece in decoder.feed(part)
    ]
    assert b"".join(out) == payload and decoder.decoded_length == len(payload)
    trailers = decoder.finish()
    assert decoder.done
    assert trailers == ({checksum: checksum_value(checksum, payload)} if ctx.trailer else {})


def test_signed_chunks_released_whole_and_only_when_complete() -> None:
    payload = secrets.token_bytes(300)
    ctx = context_of(upload(STREAMING_AWS4_HMAC_SHA256_PAYLOAD, payload))
    body = frame(ctx, payload, 100)
    decoder = ChunkedDecoder(ctx)
    first_end = body.index(b"\r\n") + 2 + 100
    assert decoder.feed(body[: first_end + 1]) == []  # data complete, its CRLF not yet
    assert decoder.feed(body[first_end + 1 : first_end + 2]) == [payload[:100]]
    assert decoder.feed(body[first_end + 2 :]) == [payload[100:200], payload[200:]]
    assert decoder.finish() == {}


def test_empty_payload() -> None:
    for mode in MODES:
        ctx = context_of(upload(mode, b""))
        assert decode(ctx, frame(ctx, b"", 10)) == (b"", None)


# --- verify() of the seed signature ---------------------------------------------------------------


def test_verify_exposes_streaming_context() -> None:
    request = upload(STREAMING_AWS4_HMAC_SHA256_PAYLOAD_TRAILER, b"x" * 5)
    verified = verify(request, parse_signature(request), SECRET, now=NOW, service="s3", normalize_path=False)
    ctx = verified.streaming
    assert ctx is not None and not verified.payload_signed and not verified.payload_checked
    assert verified.payload_hash == STREAMING_AWS4_HMAC_SHA256_PAYLOAD_TRAILER
    assert ctx.seed_signature == parse_signature(request).signature
    assert ctx.signing_key == derive_signing_key(SECRET, "20260304", "us-east-1", "s3")
    assert (ctx.scope, ctx.timestamp) == ("20260304/us-east-1/s3/aws4_request", "20260304T050607Z")
    assert ctx.signed_chunks and ctx.trailer and ctx.trailer_names == (CRC32,) and ctx.decoded_length == 5
    assert ctx.signing_key.hex() not in repr(verified) and str(ctx.signing_key) not in repr(verified)
    plain = upload(STREAMING_AWS4_HMAC_SHA256_PAYLOAD, b"")
    assert context_of(plain).trailer is False
    get = sign(
        HttpRequest("GET", "/b/k", "", (("Host", "s3.fedgate.example"),), hashlib.sha256(b"").hexdigest()),
        access_key_id=AKID,
        secret_key=SECRET,
        region="us-east-1",
        service="s3",
        now=NOW,
    )
    assert verify(get, parse_signature(get), SECRET, now=NOW, service="s3").streaming is None


def test_seed_signature_covers_the_literal() -> None:
    request = upload(STREAMING_AWS4_HMAC_SHA256_PAYLOAD, b"abc")
    swapped = HttpRequest(
        request.method,
        request.raw_path,
        request.raw_query,
        tuple(
            (n, STREAMING_UNSIGNED_PAYLOAD_TRAILER if n.lower() == "x-amz-content-sha256" else v)
            for n, v in request.headers
        ),
    )
    with pytest.raises(SignatureDoesNotMatch):
        context_of(swapped)


@pytest.mark.parametrize(
    ("mode", "kwargs", "match"),
    [
        (STREAMING_AWS4_HMAC_SHA256_PAYLOAD, {"method": "GET"}, "only valid for an upload"),
        ("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", {}, "SigV4a"),
        ("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER", {}, "SigV4a"),
        ("STREAMING-AWS4-HMAC-SHA512-PAYLOAD", {}, "not valid"),
        (
            STREAMING_AWS4_HMAC_SHA256_PAYLOAD,
            {"extra": [("x-amz-trailer", CRC32)]},
            "trailer was declared",
        ),
        (
            STREAMING_AWS4_HMAC_SHA256_PAYLOAD_TRAILER,
            {"checksum": "x-amz-checksum-crc32,x-amz-checksum-sha1"},
            "exactly one",
        ),
    ],
)
def test_verify_refuses(mode: str, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidParameterValue, match=match):
        context_of(upload(mode, b"abc", **kwargs))


@pytest.mark.parametrize("length", ["-1", "+3", " 3x", "1e3", "0x3", "9" * 20, "", "٣"])
def test_verify_refuses_malformed_decoded_length(length: str) -> None:
    with pytest.raises(InvalidParameterValue, match="x-amz-decoded-content-length"):
        context_of(upload(STREAMING_AWS4_HMAC_SHA256_PAYLOAD, b"", decoded=length))


@pytest.mark.parametrize("name", ["x-amz-checksum-crc16", "x-amz-meta-a"])
def test_unknown_trailing_checksum_refused_before_any_body(name: str) -> None:
    with pytest.raises(InvalidRequest):
        context_of(upload(STREAMING_UNSIGNED_PAYLOAD_TRAILER, b"abc", checksum=name))


# --- tampering ----------------------------------------------------------------------------------------

PAYLOAD = secrets.token_bytes(1000)
SIZE = 256  # chunks start at payload offsets 0, 256, 512, 768


def chunk_offsets(body: bytes) -> list[tuple[int, int]]:
    """(wire offset of each chunk header, wire offset of its data) for the data chunks of ``body``."""
    found, pos = [], 0
    for _ in range(4):
        data = body.index(b"\r\n", pos) + 2
        found.append((pos, data))
        pos = data + SIZE + 2 if len(found) < 4 else data + 1000 - 3 * SIZE + 2
    return found


@pytest.mark.parametrize("mode", SIGNED_MODES)
@pytest.mark.parametrize("index", range(4))
def test_flipped_data_byte_in_any_chunk(mode: str, index: int) -> None:
    ctx = context_of(upload(mode, PAYLOAD))
    body = bytearray(frame(ctx, PAYLOAD, SIZE))
    _, data = chunk_offsets(bytes(body))[index]
    body[data + 17] ^= 0x01
    released, error = decode(ctx, bytes(body))
    assert isinstance(error, SignatureDoesNotMatch)
    assert released == PAYLOAD[: index * SIZE]


@pytest.mark.parametrize("mode", SIGNED_MODES)
def test_reordered_dropped_and_duplicated_chunks(mode: str) -> None:
    ctx = context_of(upload(mode, PAYLOAD))
    body = frame(ctx, PAYLOAD, SIZE)
    (h0, _), (h1, _), (h2, _), (h3, _) = chunk_offsets(body)
    first, second, third = body[h0:h1], body[h1:h2], body[h2:h3]
    variants = {
        "swap": first + third + second + body[h3:],
        "drop": first + third + body[h3:],
        "repeat": first + first + second + body[h2:],
    }
    for name, tampered in variants.items():
        released, error = decode(ctx, tampered)
        assert isinstance(error, SignatureDoesNotMatch), name
        assert released == PAYLOAD[:SIZE], name  # the first chunk was genuine


@pytest.mark.parametrize("mode", SIGNED_MODES)
def test_chunk_signatures_from_another_request_are_refused(mode: str) -> None:
    ctx = context_of(upload(mode, PAYLOAD))
    # Same key, same day, same payload: only the seed (another path or another second) differs.
    for other in (
        upload(mode, PAYLOAD, path="/bucket/other"),
        upload(mode, PAYLOAD, when=NOW.replace(second=8)),
    ):
        foreign = frame(context_of(other, now=NOW), PAYLOAD, SIZE)
        released, error = decode(ctx, foreign)
        assert isinstance(error, SignatureDoesNotMatch) and released == b""


@pytest.mark.parametrize("mode", SIGNED_MODES)
def test_wrong_chunk_signature(mode: str) -> None:
    ctx = context_of(upload(mode, PAYLOAD))
    body = frame(ctx, PAYLOAD, SIZE)
    h1 = chunk_offsets(body)[1][0]
    sig_at = body.index(b"chunk-signature=", h1) + 16
    for replacement in (b"0" * 64, bytes(reversed(body[sig_at : sig_at + 64]))):
        released, error = decode(ctx, body[:sig_at] + replacement + body[sig_at + 64 :])
        assert isinstance(error, SignatureDoesNotMatch) and released == PAYLOAD[:SIZE]


@pytest.mark.parametrize("mode", SIGNED_MODES)
def test_wrong_final_chunk_signature(mode: str) -> None:
    ctx = context_of(upload(mode, PAYLOAD))
    body = frame(ctx, PAYLOAD, SIZE)
    at = body.index(b"0;chunk-signature=", chunk_offsets(body)[3][1]) + 18
    released, error = decode(ctx, body[:at] + b"f" * 64 + body[at + 64 :])
    assert isinstance(error, SignatureDoesNotMatch) and released == PAYLOAD


@pytest.mark.parametrize("mode", MODES)
def test_every_truncation_is_incomplete(mode: str) -> None:
    payload = PAYLOAD[:300]
    ctx = context_of(upload(mode, payload))
    body = frame(ctx, payload, 100)
    for cut in range(len(body)):
        decoder = ChunkedDecoder(ctx)
        released = b"".join(decoder.feed(body[:cut]))
        assert payload.startswith(released)
        with pytest.raises(IncompleteBody):
            decoder.finish()
        with pytest.raises(IncompleteBody):
            decoder.feed(body[cut:])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("extra", [b"\r\n", b"0", b"x" * 5000])
def test_extra_bytes_after_final_chunk(mode: str, extra: bytes) -> None:
    ctx = context_of(upload(mode, PAYLOAD))
    body = frame(ctx, PAYLOAD, SIZE)
    with pytest.raises(InvalidParameterValue, match="after the final chunk"):
        ChunkedDecoder(ctx).feed(body + extra)
    decoder = ChunkedDecoder(ctx)
    assert b"".join(decoder.feed(body)) == PAYLOAD
    with pytest.raises(InvalidParameterValue, match="after the final chunk"):
        decoder.feed(extra)
    with pytest.raises(InvalidParameterValue):
        decoder.finish()


@pytest.mark.parametrize(
    "header",
    [
        b"+100",
        b" 100",
        b"100 ",
        b"0x100",
        b"10g",
        b"",
        b"1_00",
        b"\xd9\xa1",
        b"100;chunk-signature=",
        b"100;chunk-signature=" + b"A" * 64,
        b"100;chunk-signature=" + b"a" * 63,
        b"100;chunk-signature=" + b"a" * 65,
        b"100;foo=bar;chunk-signature=" + b"a" * 64,
        b"100;chunk-signature=" + b"a" * 64 + b";foo=bar",
        b"100;Chunk-Signature=" + b"a" * 64,
        b"100 ;chunk-signature=" + b"a" * 64,
        b"100",
        b"100\n",
    ],
)
def test_malformed_signed_chunk_header(header: bytes) -> None:
    ctx = context_of(upload(STREAMING_AWS4_HMAC_SHA256_PAYLOAD, PAYLOAD))
    released, error = decode(ctx, header + b"\r\n" + PAYLOAD[:256] + b"\r\n")
    assert isinstance(error, InvalidParameterValue) and "malformed" in error.message and released == b""


@pytest.mark.parametrize("header", [b"100;chunk-signature=" + b"a" * 64, b"-1", b"0x10", b"1 0", b" 10"])
def test_malformed_unsigned_chunk_header(header: bytes) -> None:
    ctx = context_of(upload(STREAMING_UNSIGNED_PAYLOAD_TRAILER, PAYLOAD))
    released, error = decode(ctx, header + b"\r\n" + PAYLOAD[:256] + b"\r\n")
    assert isinstance(error, InvalidParameterValue) and released == b""


@pytest.mark.parametrize("mode", MODES)
def test_bare_lf_and_missing_crlf_after_data(mode: str) -> None:
    ctx = context_of(upload(mode, PAYLOAD))
    body = frame(ctx, PAYLOAD, SIZE)
    h1 = chunk_offsets(body)[1][0]
    for tampered in (body[: h1 - 2] + b"\n" + body[h1:], body[: h1 - 2] + b"\n\r" + body[h1:]):
        released, error = decode(ctx, tampered)
        assert isinstance(error, InvalidParameterValue)
        assert len(released) <= SIZE and PAYLOAD.startswith(released)
        if ctx.signed_chunks:
            assert released == b""


@pytest.mark.parametrize("mode", MODES)
def test_oversized_chunk_header_and_chunk(mode: str) -> None:
    ctx = context_of(upload(mode, PAYLOAD))
    decoder = ChunkedDecoder(ctx)
    with pytest.raises(InvalidParameterValue, match="too long"):
        for _ in range(MAX_CHUNK_LINE // 100 + 2):  # never a CRLF: refused without buffering forever
            decoder.feed(b"1" * 100)
    small = ChunkedDecoder(ctx, max_chunk_size=255)
    with pytest.raises(InvalidParameterValue, match="larger than 255"):
        small.feed(frame(ctx, PAYLOAD, SIZE))
    huge = b"ffffffffffffffff" + (b";chunk-signature=" + b"a" * 64 if ctx.signed_chunks else b"") + b"\r\n"
    with pytest.raises(InvalidParameterValue, match="larger than"):
        ChunkedDecoder(ctx).feed(huge)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("declared", [len(PAYLOAD) - 1, len(PAYLOAD) + 1, 0, 300])
def test_decoded_length_must_match(mode: str, declared: int) -> None:
    ctx = context_of(upload(mode, PAYLOAD, decoded=declared))
    assert ctx.decoded_length == declared
    released, error = decode(ctx, frame(ctx, PAYLOAD, SIZE))
    assert isinstance(error, IncompleteBody)
    # More data than declared is refused before the chunk that overflows is released.
    assert len(released) <= declared and PAYLOAD.startswith(released)
    if ctx.signed_chunks:
        assert len(released) % SIZE == 0 or released == PAYLOAD


def test_no_decoded_length_header_is_fine() -> None:
    for mode in MODES:
        ctx = context_of(upload(mode, PAYLOAD, decoded=None))
        assert ctx.decoded_length is None
        assert decode(ctx, frame(ctx, PAYLOAD, SIZE)) == (PAYLOAD, None)


# --- trailers -----------------------------------------------------------------------------------------


def signed_trailer_body(ctx: StreamingContext, trailer: Sequence[tuple[str, str]]) -> bytes:
    return b"".join(
        sign_chunked(
            split(PAYLOAD, SIZE),
            signing_key=ctx.signing_key,
            seed_signature=ctx.seed_signature,
            scope=ctx.scope,
            timestamp=ctx.timestamp,
            trailer=trailer,
        )
    )


def test_signed_trailer_tampering() -> None:
    ctx = context_of(upload(STREAMING_AWS4_HMAC_SHA256_PAYLOAD_TRAILER, PAYLOAD))
    good = signed_trailer_body(ctx, [(CRC32, checksum_value(CRC32, PAYLOAD))])
    assert decode(ctx, good) == (PAYLOAD, None)
    value = checksum_value(CRC32, PAYLOAD).encode()
    other = checksum_value(CRC32, PAYLOAD[:-1]).encode()
    signature_at = good.index(b"x-amz-trailer-signature:") + 24
    cases: dict[bytes, type[ServiceError]] = {
        # The value is covered by the trailer signature.
        good.replace(value, other): SignatureDoesNotMatch,
        good[:signature_at] + b"0" * 64 + good[signature_at + 64 :]: SignatureDoesNotMatch,
        # A correctly signed trailer whose checksum is wrong.
        signed_trailer_body(ctx, [(CRC32, other.decode())]): BadDigest,
        # Signed, but not the declared trailing header.
        signed_trailer_body(
            ctx, [("x-amz-checksum-sha256", checksum_value("x-amz-checksum-sha256", PAYLOAD))]
        ): InvalidParameterValue,
        signed_trailer_body(ctx, []): InvalidParameterValue,
        signed_trailer_body(ctx, [(CRC32, value.decode()), ("x-amz-meta-a", "b")]): InvalidParameterValue,
        # The signature line missing, or not last.
        good[: good.index(b"x-amz-trailer-signature:")] + b"\r\n": InvalidParameterValue,
        good[: good.index(b"x-amz-checksum-crc32:")]
        + good[signature_at - 24 : -2]
        + b"x-amz-checksum-crc32:"
        + value
        + b"\r\n\r\n": InvalidParameterValue,
        good[:-2] + b"x" * (MAX_CHUNK_LINE + 10) + b"\r\n\r\n": InvalidParameterValue,
        good[:-2] + b"x-amz-meta-\xff:b\r\n\r\n": InvalidParameterValue,
    }
    for body, expected in cases.items():
        released, error = decode(ctx, body)
        assert isinstance(error, expected), body[-200:]
        assert released == PAYLOAD  # every chunk was good; only the end is refused


def test_unsigned_trailer_tampering() -> None:
    ctx = context_of(upload(STREAMING_UNSIGNED_PAYLOAD_TRAILER, PAYLOAD))
    good = frame(ctx, PAYLOAD, SIZE)
    flipped = bytearray(good)
    flipped[chunk_offsets(good)[2][1] + 3] ^= 0x80
    value = checksum_value(CRC32, PAYLOAD).encode()
    for body in (bytes(flipped), good.replace(value, checksum_value(CRC32, b"").encode())):
        released, error = decode(ctx, body)
        assert isinstance(error, BadDigest) and "CRC32 you specified" in error.message
        assert len(released) == len(PAYLOAD)
    for body, match in (
        (good.replace(b"\r\n\r\n", b"\r\nx-amz-trailer-signature:" + b"a" * 64 + b"\r\n\r\n"), "differ"),
        (good.replace(b"x-amz-checksum-crc32:", b"x-amz-checksum-crc32 :"), "name:value"),
        (good.replace(b"x-amz-checksum-crc32:", b"x-amz-checksum-crc32"), "name:value"),
        (good[: good.index(b"x-amz-checksum")] + b"\r\n", "differ"),
    ):
        released, error = decode(ctx, body)
        assert isinstance(error, InvalidParameterValue) and match in error.message, match
        assert len(released) == len(PAYLOAD)  # unsigned data streams; only the checksum vouches for it
    # Header names are case-insensitive, and optional whitespace around a value is allowed.
    relaxed = good.replace(b"x-amz-checksum-crc32:", b"X-Amz-Checksum-CRC32: ")
    assert decode(ctx, relaxed) == (PAYLOAD, None)


def test_trailing_headers_on_a_payload_without_trailer() -> None:
    ctx = context_of(upload(STREAMING_AWS4_HMAC_SHA256_PAYLOAD, PAYLOAD))
    body = frame(ctx, PAYLOAD, SIZE)
    released, error = decode(ctx, body[:-2] + b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n")
    assert isinstance(error, InvalidParameterValue) and released == PAYLOAD


# --- the AWS documentation's worked example (sigv4-streaming) --------------------------------------

AWS_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
AWS_CHUNK_SIGNATURES = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)


def test_aws_documentation_example() -> None:
    headers = (
        ("Host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", STREAMING_AWS4_HMAC_SHA256_PAYLOAD),
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("Content-Length", "66824"),
    )
    authorization = (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        f"x-amz-decoded-content-length;x-amz-storage-class,Signature={AWS_SEED}"
    )
    request = HttpRequest(
        "PUT", "/examplebucket/chunkObject.txt", "", (*headers, ("Authorization", authorization))
    )
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    when = datetime(2013, 5, 24, tzinfo=UTC)
    verified = verify(request, parse_signature(request), secret, now=when, service="s3", normalize_path=False)
    ctx = verified.streaming
    assert ctx is not None and ctx.decoded_length == 66560 and ctx.seed_signature == AWS_SEED
    payload = b"a" * 66560
    body = b"".join(
        sign_chunked(
            split(payload, 65536),
            signing_key=ctx.signing_key,
            seed_signature=AWS_SEED,
            scope=ctx.scope,
            timestamp=ctx.timestamp,
        )
    )
    expected = (
        f"10000;chunk-signature={AWS_CHUNK_SIGNATURES[0]}\r\n".encode()
        + payload[:65536]
        + f"\r\n400;chunk-signature={AWS_CHUNK_SIGNATURES[1]}\r\n".encode()
        + payload[65536:]
        + f"\r\n0;chunk-signature={AWS_CHUNK_SIGNATURES[2]}\r\n\r\n".encode()
    )
    assert body == expected and len(body) == 66824
    assert decode(ctx, body, step=4096) == (payload, None)
    # The same upload signed with a different secret must not verify.
    with pytest.raises(SignatureDoesNotMatch):
        verify(request, parse_signature(request), secret[:-1], now=when, service="s3", normalize_path=False)


# --- botocore: real signing, the transport replaced by a capture ---------------------------------


class _Raw:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


def captured_upload(operation: str, call: str, **params: Any) -> tuple[HttpRequest, bytes, Credentials]:
    creds = Credentials("ASIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30), "tok" * 50)
    s3 = boto3.session.Session().client(
        "s3",
        endpoint_url="https://fedgate.example.com",
        region_name="us-east-1",
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_supported",
        ),
    )
    seen: list[Any] = []

    def before_send(request: Any, **_: Any) -> AWSResponse:
        seen.append((request, request.body.read()))
        return AWSResponse(request.url, 200, {"ETag": '"x"'}, _Raw())

    s3.meta.events.register(f"before-send.s3.{operation}", before_send)
    getattr(s3, call)(Bucket="bucket", **params)
    ((prepared, body),) = seen
    path, _, query = prepared.url.removeprefix("https://fedgate.example.com").partition("?")
    headers = tuple(
        (k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v)
        for k, v in prepared.headers.items()
    )
    if not any(name.lower() == "host" for name, _ in headers):  # botocore's CRT signer adds it itself
        headers = (*headers, ("Host", "fedgate.example.com"))
    return HttpRequest(prepared.method, path, query, headers), body, creds


@pytest.mark.parametrize(
    ("operation", "call", "params", "checksum"),
    [
        ("PutObject", "put_object", {"Key": "k"}, CRC32),
        (
            "PutObject",
            "put_object",
            {"Key": "a b/ሴ.txt", "ChecksumAlgorithm": "SHA256"},
            "x-amz-checksum-sha256",
        ),
        ("PutObject", "put_object", {"Key": "k", "ChecksumAlgorithm": "SHA1"}, "x-amz-checksum-sha1"),
        ("UploadPart", "upload_part", {"Key": "k", "UploadId": "u-1", "PartNumber": 2}, CRC32),
    ],
)
def test_botocore_uploads_round_trip(
    operation: str, call: str, params: dict[str, Any], checksum: str
) -> None:
    payload = secrets.token_bytes(2 * 1024 * 1024 + 12345)  # three of botocore's 1 MiB chunks
    request, body, creds = captured_upload(operation, call, Body=payload, **params)
    info = parse_signature(request)
    verified = verify(
        request, info, creds.secret_key, now=datetime.now(UTC), service="s3", normalize_path=False
    )
    ctx = verified.streaming
    assert verified.payload_hash == STREAMING_UNSIGNED_PAYLOAD_TRAILER and ctx is not None
    assert ctx.trailer_names == (checksum,) and ctx.decoded_length == len(payload)
    for step in (len(body), 65536, 1000):
        decoder = ChunkedDecoder(ctx)
        out = b"".join(piece for part in split(body, step) for piece in decoder.feed(part))
        assert out == payload
        assert decoder.finish() == {checksum: checksum_value(checksum, payload)}
    # botocore's framing is what encode_unsigned_chunked writes.
    ours = encode_unsigned_chunked(
        split(payload, 1024 * 1024), [(checksum, checksum_value(checksum, payload))]
    )
    assert b"".join(ours) == body
    tampered = bytearray(body)
    tampered[len(body) // 2] ^= 0x01
    _, error = decode(ctx, bytes(tampered), step=1 << 20)
    assert isinstance(error, BadDigest)


@pytest.mark.parametrize("length", [0, 1, 65535, 65536, 65537, 200_000])
@pytest.mark.parametrize("name", sorted(CHECKSUM_TRAILERS))
def test_trailer_framer(length: int, name: str) -> None:
    payload = secrets.token_bytes(length)
    framer = TrailerFramer(length, name)
    body = b"".join(piece for part in split(payload, 7000) for piece in framer.feed(part))
    body += framer.finish(checksum_value(name, payload))
    assert len(body) == framer.wire_length
    ctx = context_of(upload(STREAMING_UNSIGNED_PAYLOAD_TRAILER, payload, checksum=name))
    assert decode(ctx, body) == (payload, None)
