"""Streamed request bodies, checked as they pass: nothing unverified completes an upstream request.

:class:`BodyGuard` wraps the client's body (an async iterator of byte pieces) and yields what may go
upstream. It always holds back the last piece until the end of the body has been checked, so an
upstream that was promised ``Content-Length`` bytes never receives a complete request whose body
turns out to be wrong; it aborts instead. Three modes:

* a hex ``x-amz-content-sha256``: the SHA-256 of the pieces must equal it;
* ``aws-chunked``: a :class:`~gateway.sigv4.chunked.ChunkedDecoder` releases each chunk's payload
  only after that chunk's signature (and at the end the trailer) verified;
* otherwise the bytes pass as they are, counted against the declared length.

Whatever the mode, an ``x-amz-checksum-*`` the request claims for its (decoded) body is computed
on the way and checked at the end (S3's ``BadDigest`` when it differs).

Memory stays bounded by one client read plus one chunk, whatever the body's size.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Mapping
from typing import final

from gateway.errors import ContentSHA256Mismatch, IncompleteBody, ServiceError
from gateway.sigv4 import EMPTY_SHA256
from gateway.sigv4.checksums import ExpectedChecksum
from gateway.sigv4.chunked import ChunkedDecoder
from gateway.sigv4.model import StreamingContext

__all__ = ["BodyGuard"]


@final
class BodyGuard:
    """Checks one request body as it streams; see the module docstring.

    ``expected_sha256`` is a lowercase hex digest to check, or ``None``; ``streaming`` an
    ``aws-chunked`` context to decode, or ``None``; ``length`` the declared length of the wire body
    (``Content-Length``), or ``None``; ``checksum`` an ``x-amz-checksum-*`` claim on the (decoded)
    body, or ``None``. After the iterator failed, :attr:`error` holds why: a check
    that failed, or a :class:`ServiceError` the source raised (a stalled client's RequestTimeout).
    """

    def __init__(
        self,
        source: AsyncIterator[bytes],
        *,
        expected_sha256: str | None = None,
        streaming: StreamingContext | None = None,
        length: int | None = None,
        checksum: ExpectedChecksum | None = None,
    ) -> None:
        if expected_sha256 is not None and streaming is not None:
            raise ValueError("a body is either hashed or aws-chunked, not both")
        self._source = source
        self._expected = expected_sha256
        self._hash = hashlib.sha256() if expected_sha256 is not None else None
        self._decoder = ChunkedDecoder(streaming) if streaming is not None else None
        self._length = length
        self._checksum = checksum
        self.received = 0
        self.error: ServiceError | None = None
        #: An aws-chunked body's verified trailing headers, once the whole body has passed.
        self.trailers: Mapping[str, str] = {}

    def precheck(self) -> None:
        """Checks possible before any byte is sent: an empty body against its claimed hash and checksum."""
        if self._length == 0 and self._checksum is not None:
            try:
                self._checksum.check()
            except ServiceError as exc:
                self._fail(exc)
        if self._length == 0 and self._expected is not None and self._expected != EMPTY_SHA256:
            self._fail(
                ContentSHA256Mismatch(
                    "The provided 'x-amz-content-sha256' header does not match what was computed."
                )
            )

    def _fail(self, error: ServiceError) -> None:
        self.error = error
        raise error

    def _released(self, piece: bytes) -> list[bytes]:
        self.received += len(piece)
        if self._length is not None and self.received > self._length:
            self._fail(IncompleteBody("The request body is longer than its Content-Length."))
        if self._hash is not None:
            self._hash.update(piece)
        if self._decoder is not None:
            try:
                pieces = self._decoder.feed(piece)
            except ServiceError as exc:
                self._fail(exc)
            if self._checksum is not None:
                for decoded in pieces:
                    self._checksum.update(decoded)
            return pieces
        if self._checksum is not None:
            self._checksum.update(piece)
        return [piece]

    def _finish(self) -> None:
        if self._length is not None and self.received != self._length:
            self._fail(IncompleteBody("The request body ended before its Content-Length."))
        if (
            self._hash is not None
            and self._expected is not None
            and not hmac.compare_digest(self._hash.hexdigest(), self._expected)
        ):
            self._fail(
                ContentSHA256Mismatch(
                    "The provided 'x-amz-content-sha256' header does not match what was computed."
                )
            )
        if self._decoder is not None:
            try:
                self.trailers = self._decoder.finish()
            except ServiceError as exc:
                self._fail(exc)
        if self._checksum is not None:
            try:
                self._checksum.check()
            except ServiceError as exc:
                self._fail(exc)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        held: bytes | None = None
        try:
            async for piece in self._source:
                for out in self._released(piece):
                    if not out:
                        continue
                    if held is not None:
                        yield held
                    held = out
        except ServiceError as exc:
            # The HTTP client sending this body upstream reports only that sending failed: keep
            # the reason (a check above, or the client's stalled or broken body) for the caller.
            self.error = self.error or exc
            raise
        self._finish()
        if held is not None:
            yield held
