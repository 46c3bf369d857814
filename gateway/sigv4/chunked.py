"""S3 ``aws-chunked`` streaming payloads: an incremental verifying decoder, and the matching encoder.

A request whose ``x-amz-content-sha256`` is ``STREAMING-*`` signs a literal instead of the body
hash; the body then carries its own integrity, chunk by chunk::

    STREAMING-AWS4-HMAC-SHA256-PAYLOAD            hex-size;chunk-signature=SIG CRLF data CRLF ...
                                                  0;chunk-signature=SIG CRLF CRLF
    STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER    ... 0;chunk-signature=SIG CRLF
                                                  x-amz-checksum-crc32:B64 CRLF
                                                  x-amz-trailer-signature:SIG CRLF CRLF
    STREAMING-UNSIGNED-PAYLOAD-TRAILER            hex-size CRLF data CRLF ... 0 CRLF
                                                  x-amz-checksum-crc32:B64 CRLF CRLF

Each chunk signature is ``HMAC(key, "AWS4-HMAC-SHA256-PAYLOAD" \\n timestamp \\n scope \\n previous
\\n sha256("") \\n sha256(data))`` where ``previous`` starts as the request's seed signature; the
trailer signature is ``HMAC(key, "AWS4-HMAC-SHA256-TRAILER" \\n timestamp \\n scope \\n previous \\n
sha256("name:value\\n" ...))``. The chain makes dropping, reordering or splicing chunks (even from
another request of the same key) fail.

:class:`ChunkedDecoder` is what a proxy runs between the client and the upstream: it releases a
chunk's data only once that chunk's signature has been checked, holds at most one chunk, and fails
closed (a failed decoder refuses everything after). The grammar is strict: hex sizes without sign,
space or ``0x``; no chunk extension but ``chunk-signature``; CRLF exactly; nothing after the end.
Unsigned chunks carry no signature, so their data is released as it arrives and only the trailing
checksum, checked by :meth:`ChunkedDecoder.finish`, vouches for it: a proxy must then hold back the
end of the upstream request until ``finish()`` has returned.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final, final

from gateway.errors import IncompleteBody, InvalidParameterValue, ServiceError, SignatureDoesNotMatch
from gateway.sigv4.checksums import CHECKSUM_HEADERS, check_digest, checksum_value, new_checksum, value_length
from gateway.sigv4.model import (
    EMPTY_SHA256,
    STREAMING_AWS4_HMAC_SHA256_PAYLOAD,
    STREAMING_AWS4_HMAC_SHA256_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    HttpRequest,
    SignatureInfo,
    StreamingContext,
)

__all__ = [
    "CHECKSUM_TRAILERS",
    "MAX_CHUNK_LINE",
    "MAX_CHUNK_SIZE",
    "MAX_TRAILER_LEN",
    "STREAMING_PAYLOADS",
    "ChunkedDecoder",
    "TrailerFramer",
    "checksum_value",
    "encode_unsigned_chunked",
    "sign_chunked",
    "streaming_context",
]

#: The ``x-amz-content-sha256`` literals decoded here.
STREAMING_PAYLOADS: Final = frozenset(
    (
        STREAMING_AWS4_HMAC_SHA256_PAYLOAD,
        STREAMING_AWS4_HMAC_SHA256_PAYLOAD_TRAILER,
        STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    )
)
#: Largest chunk accepted (and so buffered). SDKs send 64 KiB (signed) or 1 MiB (unsigned) chunks.
MAX_CHUNK_SIZE: Final = 16 * 1024 * 1024
#: Longest chunk header or trailer line, without its CRLF.
MAX_CHUNK_LINE: Final = 4096
#: Largest trailer section (all lines together).
MAX_TRAILER_LEN: Final = 4096
#: Trailing checksum headers: every flexible checksum S3 defines (see :mod:`.checksums`).
CHECKSUM_TRAILERS: Final = CHECKSUM_HEADERS

_TRAILER_SIGNATURE = "x-amz-trailer-signature"
_CHUNK_SIGNATURE = b"chunk-signature="
_HEX_ANY_CASE = b"0123456789abcdefABCDEF"
_HEX_LOWER = b"0123456789abcdef"
_DIGITS = "0123456789"
_CRLF = b"\r\n"
_MAX_SIZE_DIGITS = 16
_MAX_LENGTH_DIGITS = 19  # fits a signed 64-bit integer, as S3's own limit does


def _header(request: HttpRequest, name: str) -> str | None:
    found: str | None = None
    for key, value in request.headers:
        if key.lower() == name:
            if found is not None:
                raise InvalidParameterValue(f"The request has more than one '{name}' header.")
            found = value.strip()
    return found


def streaming_context(
    request: HttpRequest, info: SignatureInfo, payload_hash: str, signing_key: bytes
) -> StreamingContext:
    """The :class:`StreamingContext` of a request whose signature covers a ``STREAMING-*`` literal.

    Called by :func:`~gateway.sigv4.verify` once the seed signature matched. Reads
    ``x-amz-decoded-content-length`` (decimal digits only) and ``x-amz-trailer`` (comma-separated
    names, at most one); raises :class:`InvalidParameterValue` when either is malformed, or when a
    trailer is declared for a form that has none.
    """
    if payload_hash not in STREAMING_PAYLOADS:
        raise ValueError("not a streaming payload hash")
    length = _header(request, "x-amz-decoded-content-length")
    decoded_length: int | None = None
    if length is not None:
        if not (0 < len(length) <= _MAX_LENGTH_DIGITS and not length.strip(_DIGITS)):
            raise InvalidParameterValue("x-amz-decoded-content-length must be a non-negative whole number.")
        decoded_length = int(length)
    declared = _header(request, "x-amz-trailer")
    names: tuple[str, ...] = ()
    if declared is not None:
        names = tuple(name.strip().lower() for name in declared.split(","))
        if len(names) != 1 or not names[0] or names[0] == _TRAILER_SIGNATURE:
            raise InvalidParameterValue("The x-amz-trailer header must name exactly one trailing checksum.")
        if not payload_hash.endswith("-TRAILER"):
            raise InvalidParameterValue("A trailer was declared for a payload without trailing headers.")
        new_checksum(names[0])  # an unknown name is refused before any body byte is read
    return StreamingContext(
        payload_hash=payload_hash,
        seed_signature=info.signature,
        signing_key=signing_key,
        scope=info.scope,
        timestamp=info.timestamp,
        trailer_names=names,
        decoded_length=decoded_length,
    )


def _fail_grammar(what: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"The aws-chunked request body is malformed: {what}.")


# Decoder states.
_HEADER, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


@final
class ChunkedDecoder:
    """Incrementally decode and verify an ``aws-chunked`` body (see the module docstring).

    ``feed(data)`` accepts the body in pieces of any size and returns the payload pieces it can
    release (signed chunks only once verified); ``finish()`` checks that the body ended exactly
    after the final chunk and trailer, that the decoded length matches
    ``x-amz-decoded-content-length`` and that a trailing checksum matches, and returns the verified
    trailing headers. Errors: :class:`SignatureDoesNotMatch` for a bad chunk or trailer signature,
    :class:`InvalidParameterValue` for malformed framing, oversized chunks or lines, unsupported or
    mismatching checksums, :class:`IncompleteBody` for a body that ends early or disagrees with its
    declared length. After an error every call raises it again. Not thread-safe; one per request.
    """

    __slots__ = (
        "_buf",
        "_checksum",
        "_ctx",
        "_decoded",
        "_error",
        "_max_chunk_size",
        "_prefix",
        "_previous",
        "_remaining",
        "_sig",
        "_state",
        "_trailer_len",
        "_trailer_lines",
        "_trailers",
    )

    def __init__(self, context: StreamingContext, *, max_chunk_size: int = MAX_CHUNK_SIZE) -> None:
        if context.payload_hash not in STREAMING_PAYLOADS:
            raise ValueError("not a streaming payload hash")
        if max_chunk_size < 1:
            raise ValueError("max_chunk_size must be positive")
        self._ctx = context
        self._max_chunk_size = max_chunk_size
        self._checksum = new_checksum(context.trailer_names[0]) if context.trailer_names else None
        self._prefix = f"AWS4-HMAC-SHA256-PAYLOAD\n{context.timestamp}\n{context.scope}\n"
        self._previous = context.seed_signature
        self._buf = bytearray()
        self._state = _HEADER
        self._remaining = 0  # data bytes of the current chunk still to come
        self._sig = b""  # the current chunk's claimed signature
        self._decoded = 0
        self._trailer_lines: list[bytes] = []
        self._trailer_len = 0
        self._trailers: dict[str, str] = {}
        self._error: ServiceError | None = None

    @property
    def decoded_length(self) -> int:
        """Payload bytes released so far."""
        return self._decoded

    @property
    def done(self) -> bool:
        """Whether the final chunk (and trailer) has been read and verified."""
        return self._state == _DONE and self._error is None

    def feed(self, data: bytes) -> list[bytes]:
        """Consume ``data`` (the next bytes of the body); return the payload pieces now released."""
        if self._error is not None:
            raise self._error
        out: list[bytes] = []
        try:
            if self._state == _DONE:
                if data:
                    raise _fail_grammar("data after the final chunk")
                return out
            self._buf += data
            while self._step(out):
                pass
        except ServiceError as error:
            self._poison(error)
            raise
        return out

    def finish(self) -> Mapping[str, str]:
        """Check the body is complete; return its verified trailing headers (lowercase names)."""
        if self._error is not None:
            raise self._error
        if self._state != _DONE:
            error = IncompleteBody("The request body ended before the final aws-chunked chunk.")
            self._poison(error)
            raise error
        return dict(self._trailers)

    def _poison(self, error: ServiceError) -> None:
        self._error = error
        self._buf = bytearray()
        self._trailer_lines = []

    def _line(self) -> bytes | None:
        end = self._buf.find(_CRLF, 0, MAX_CHUNK_LINE + 2)
        if end < 0:
            if len(self._buf) >= MAX_CHUNK_LINE + 2:
                raise _fail_grammar("a chunk header or trailer line is too long")
            return None
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def _step(self, out: list[bytes]) -> bool:
        state = self._state
        if state == _HEADER:
            line = self._line()
            if line is None:
                return False
            self._chunk_header(line)
            return True
        if state == _DATA:
            return self._data(out)
        if state == _DATA_END:
            if len(self._buf) < 2:
                return False
            if self._buf[:2] != _CRLF:
                raise _fail_grammar("chunk data is not followed by CRLF")
            del self._buf[:2]
            self._state = _HEADER
            return True
        if state == _TRAILER:
            line = self._line()
            if line is None:
                return False
            if line:
                self._trailer_len += len(line) + 2
                if self._trailer_len > MAX_TRAILER_LEN:
                    raise _fail_grammar("the trailer is too long")
                self._trailer_lines.append(line)
                return True
            self._finish_trailer()
            self._state = _DONE
            if self._buf:
                raise _fail_grammar("data after the final chunk")
            return False
        return False

    def _chunk_header(self, line: bytes) -> None:
        if self._ctx.signed_chunks:
            size_text, sep, extension = line.partition(b";")
            signature = extension[len(_CHUNK_SIGNATURE) :]
            if (
                not sep
                or not extension.startswith(_CHUNK_SIGNATURE)
                or len(signature) != 64
                or signature.strip(_HEX_LOWER)
            ):
                raise _fail_grammar(
                    "a chunk must carry exactly one chunk-signature of 64 lowercase hex digits"
                )
            self._sig = signature
        else:
            size_text = line
        if not (0 < len(size_text) <= _MAX_SIZE_DIGITS) or size_text.strip(_HEX_ANY_CASE):
            raise _fail_grammar("a chunk size is not a hexadecimal number")
        size = int(size_text, 16)
        if size > self._max_chunk_size:
            raise InvalidParameterValue(f"An aws-chunked chunk is larger than {self._max_chunk_size} bytes.")
        declared = self._ctx.decoded_length
        if declared is not None and self._decoded + size > declared:
            raise IncompleteBody("The decoded body is longer than x-amz-decoded-content-length.")
        if size:
            self._remaining = size
            self._state = _DATA
            return
        if self._ctx.signed_chunks:
            self._verify_chunk(EMPTY_SHA256)
        if declared is not None and self._decoded != declared:
            raise IncompleteBody("The decoded body is shorter than x-amz-decoded-content-length.")
        self._state = _TRAILER

    def _data(self, out: list[bytes]) -> bool:
        buffered = len(self._buf)
        if self._ctx.signed_chunks:
            # The whole chunk, and its CRLF, must be here before any of it may be released.
            size = self._remaining
            if buffered < size + 2:
                return False
            if self._buf[size : size + 2] != _CRLF:
                raise _fail_grammar("chunk data is not followed by CRLF")
            with memoryview(self._buf) as view:
                piece = bytes(view[:size])
            self._verify_chunk(hashlib.sha256(piece).hexdigest())
            del self._buf[: size + 2]
            self._remaining = 0
            self._state = _HEADER
            self._release(piece, out)
            return True
        # Unsigned chunks have nothing to wait for: release what is here.
        if not buffered:
            return False
        take = min(buffered, self._remaining)
        with memoryview(self._buf) as view:
            piece = bytes(view[:take])
        del self._buf[:take]
        self._remaining -= take
        if not self._remaining:
            self._state = _DATA_END
        self._release(piece, out)
        return True

    def _release(self, piece: bytes, out: list[bytes]) -> None:
        self._decoded += len(piece)
        if self._checksum is not None:
            self._checksum.update(piece)
        out.append(piece)

    def _verify_chunk(self, data_sha256: str) -> None:
        to_sign = f"{self._prefix}{self._previous}\n{EMPTY_SHA256}\n{data_sha256}"
        expected = hmac.digest(self._ctx.signing_key, to_sign.encode("ascii"), "sha256").hex()
        if not hmac.compare_digest(expected.encode("ascii"), self._sig):
            raise SignatureDoesNotMatch("The chunk signature we calculated does not match the one provided.")
        self._previous = expected

    def _finish_trailer(self) -> None:
        ctx = self._ctx
        if not ctx.trailer:
            if self._trailer_lines:
                raise _fail_grammar("trailing headers after the final chunk of a payload without a trailer")
            return
        fields: list[tuple[str, str]] = []
        for line in self._trailer_lines:
            raw_name, colon, raw_value = line.partition(b":")
            try:
                name, value = raw_name.decode("ascii").lower(), raw_value.decode("ascii").strip(" \t")
            except UnicodeDecodeError:
                raise _fail_grammar("a trailing header is not ASCII") from None
            if not colon or not name or name != name.strip():
                raise _fail_grammar("a trailing header is not 'name:value'")
            fields.append((name, value))
        if ctx.signed_chunks:
            if not fields or fields[-1][0] != _TRAILER_SIGNATURE:
                raise _fail_grammar("the trailer must end with x-amz-trailer-signature")
            signature = fields.pop()[1].encode("ascii")
            canonical = "".join(f"{name}:{value}\n" for name, value in sorted(fields))
            to_sign = (
                f"AWS4-HMAC-SHA256-TRAILER\n{ctx.timestamp}\n{ctx.scope}\n{self._previous}\n"
                f"{hashlib.sha256(canonical.encode('ascii')).hexdigest()}"
            )
            expected = hmac.digest(ctx.signing_key, to_sign.encode("ascii"), "sha256").hex()
            if not hmac.compare_digest(expected.encode("ascii"), signature):
                raise SignatureDoesNotMatch(
                    "The trailer signature we calculated does not match the one provided."
                )
        if tuple(name for name, _ in fields) != ctx.trailer_names:
            raise _fail_grammar("the trailing headers differ from those x-amz-trailer declared")
        if self._checksum is not None:
            name, value = fields[0]
            check_digest(name, value, self._checksum.digest())
        self._trailers = dict(fields)


def _trailer_block(trailer: Sequence[tuple[str, str]]) -> str:
    return "".join(f"{name.lower()}:{value.strip()}\n" for name, value in trailer)


def sign_chunked(
    chunks: Iterable[bytes],
    *,
    signing_key: bytes,
    seed_signature: str,
    scope: str,
    timestamp: str,
    trailer: Sequence[tuple[str, str]] | None = None,
) -> Iterator[bytes]:
    """Encode ``chunks`` as a chunk-signed ``aws-chunked`` body, one wire chunk per non-empty input.

    ``seed_signature`` is the signature of the request itself, signed with
    ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` (``trailer is None``) or ``...-PAYLOAD-TRAILER`` (then
    ``trailer`` holds the trailing headers, e.g. ``[("x-amz-checksum-crc32", checksum_value(...))]``,
    and the request's ``x-amz-trailer`` header names them). Yields the body in pieces, lazily, so a
    proxy re-signing an upload for its upstream streams it in constant memory.
    """
    prefix = f"AWS4-HMAC-SHA256-PAYLOAD\n{timestamp}\n{scope}\n"
    previous = seed_signature

    def signed(data: bytes) -> bytes:
        nonlocal previous
        to_sign = f"{prefix}{previous}\n{EMPTY_SHA256}\n{hashlib.sha256(data).hexdigest()}"
        previous = hmac.digest(signing_key, to_sign.encode("ascii"), "sha256").hex()
        return f"{len(data):x};chunk-signature={previous}\r\n".encode("ascii")

    for data in chunks:
        if data:
            yield signed(data) + data + _CRLF
    final = signed(b"")
    if trailer is None:
        yield final + _CRLF
        return
    block = _trailer_block(trailer)
    to_sign = (
        f"AWS4-HMAC-SHA256-TRAILER\n{timestamp}\n{scope}\n{previous}\n"
        f"{hashlib.sha256(block.encode('ascii')).hexdigest()}"
    )
    signature = hmac.digest(signing_key, to_sign.encode("ascii"), "sha256").hex()
    lines = block.replace("\n", "\r\n") + f"{_TRAILER_SIGNATURE}:{signature}\r\n\r\n"
    yield final + lines.encode("ascii")


def encode_unsigned_chunked(chunks: Iterable[bytes], trailer: Sequence[tuple[str, str]]) -> Iterator[bytes]:
    """Encode ``chunks`` as a ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` body (botocore's framing)."""
    for data in chunks:
        if data:
            yield f"{len(data):x}\r\n".encode("ascii") + data + _CRLF
    yield b"0\r\n" + _trailer_block(trailer).replace("\n", "\r\n").encode("ascii") + _CRLF


@final
class TrailerFramer:
    """Re-frame a decoded body as ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` for an upstream, streaming.

    A proxy re-signing an ``aws-chunked`` upload with a trailing checksum cannot pass the client's
    chunk signatures on (they are bound to the client's key), but can keep the trailer, so the
    upstream checks the checksum too. Chunks are of a fixed ``chunk_size`` (the last one shorter),
    so the wire length (:attr:`wire_length`, the ``Content-Length`` to announce) is known from the
    decoded length before the first byte: ``feed`` the decoded pieces, then ``finish`` with the
    verified trailer value. Holds less than one chunk.
    """

    __slots__ = ("_buf", "_size", "name", "wire_length")

    def __init__(self, decoded_length: int, trailer_name: str, *, chunk_size: int = 64 * 1024) -> None:
        if chunk_size < 1 or decoded_length < 0:
            raise ValueError("chunk_size must be positive and decoded_length not negative")
        self.name = trailer_name
        self._size = chunk_size
        self._buf = bytearray()
        full, rest = divmod(decoded_length, chunk_size)
        frame = len(f"{chunk_size:x}") + 4 + chunk_size
        last = len(f"{rest:x}") + 4 + rest if rest else 0
        trailer = len(trailer_name) + 1 + value_length(trailer_name) + 2
        self.wire_length = full * frame + last + 3 + trailer + 2

    def _chunk(self, data: bytes | bytearray | memoryview) -> bytes:
        return b"".join((f"{len(data):x}\r\n".encode("ascii"), data, _CRLF))

    def feed(self, piece: bytes) -> list[bytes]:
        """The whole chunks ``piece`` completes."""
        self._buf += piece
        size = self._size
        if len(self._buf) < size:
            return []
        out = []
        with memoryview(self._buf) as view:
            start = 0
            while len(self._buf) - start >= size:
                out.append(self._chunk(view[start : start + size]))
                start += size
        del self._buf[:start]
        return out

    def finish(self, trailer_value: str) -> bytes:
        """The last chunk, the final one and the trailer."""
        last = self._chunk(self._buf) if self._buf else b""
        self._buf = bytearray()
        return last + f"0\r\n{self.name}:{trailer_value}\r\n\r\n".encode("ascii")
