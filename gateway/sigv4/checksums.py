"""S3's flexible checksums: CRC32, CRC32C, CRC64NVME, SHA-1 and SHA-256, computed incrementally.

A client names one in an ``x-amz-checksum-<algorithm>`` header (or, for a presigned URL, the same
name in the query), or declares it in ``x-amz-trailer`` and sends it after an ``aws-chunked``
body. The value is the base64 of the big-endian digest. CRC32 (the SDKs' default) is :func:`zlib.crc32`;
CRC32C and CRC64NVME come from the AWS common runtime (``awscrt.checksums``, the native code
botocore itself uses), imported by the first checksum that needs it (about 5 MiB resident that a
server whose clients keep the default never loads); the hashes are :mod:`hashlib`'s. Nothing here
is a hand-written table.

Errors are S3's: a malformed value, an unknown algorithm or more than one checksum is
``InvalidRequest``; a value that does not match the body is ``BadDigest``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import zlib
from collections.abc import Callable, Iterable
from typing import Final, Protocol, final

from gateway.errors import BadDigest, InvalidRequest

__all__ = [
    "CHECKSUM_HEADERS",
    "Checksum",
    "ExpectedChecksum",
    "check_digest",
    "checksum_value",
    "decode_value",
    "expected_checksum",
    "new_checksum",
    "value_length",
]

PREFIX: Final = "x-amz-checksum-"


class Checksum(Protocol):
    """An incremental checksum: ``update`` with each piece, then ``digest``."""

    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


@final
class _Crc:
    __slots__ = ("_fn", "_size", "_value")

    def __init__(self, fn: Callable[[bytes, int], int], size: int) -> None:
        self._fn = fn
        self._size = size
        self._value = 0

    def update(self, data: bytes, /) -> None:
        self._value = self._fn(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._size, "big")


def _crc32c() -> Checksum:
    from awscrt import checksums

    return _Crc(checksums.crc32c, 4)


def _crc64nvme() -> Checksum:
    from awscrt import checksums

    return _Crc(checksums.crc64nvme, 8)


def _sha1() -> Checksum:
    return hashlib.sha1()  # noqa: S324 - an integrity checksum S3 defines, not a signature


_FACTORIES: Final[dict[str, Callable[[], Checksum]]] = {
    "x-amz-checksum-crc32": lambda: _Crc(zlib.crc32, 4),
    "x-amz-checksum-crc32c": _crc32c,
    "x-amz-checksum-crc64nvme": _crc64nvme,
    "x-amz-checksum-sha1": _sha1,
    "x-amz-checksum-sha256": hashlib.sha256,
}
#: Digest sizes, to check a claimed value's shape before any body byte is read.
_SIZES: Final = {
    "x-amz-checksum-crc32": 4,
    "x-amz-checksum-crc32c": 4,
    "x-amz-checksum-crc64nvme": 8,
    "x-amz-checksum-sha1": 20,
    "x-amz-checksum-sha256": 32,
}
#: Every checksum header (and trailer) name S3 defines.
CHECKSUM_HEADERS: Final = frozenset(_FACTORIES)
# x-amz-checksum-* headers that are not checksums themselves.
_NOT_CHECKSUMS: Final = frozenset(("x-amz-checksum-mode", "x-amz-checksum-type", "x-amz-checksum-algorithm"))


def new_checksum(name: str) -> Checksum:
    """A fresh checksum for header ``name`` (``x-amz-checksum-crc32c``...); InvalidRequest if unknown."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise InvalidRequest(f"The checksum {name[:64]} is not one S3 defines.")
    return factory()


def value_length(name: str) -> int:
    """The length of the base64 value of checksum header ``name`` (``x-amz-checksum-crc32``: 8)."""
    return -(-_SIZES[name] // 3) * 4


def checksum_value(name: str, data: bytes) -> str:
    """The base64 value of the checksum header ``name`` of ``data``."""
    checksum = new_checksum(name)
    checksum.update(data)
    return base64.b64encode(checksum.digest()).decode("ascii")


def _algorithm(name: str) -> str:
    return name.removeprefix(PREFIX).upper()


@final
class ExpectedChecksum:
    """A checksum a request claims for its body, checked as the body streams.

    ``update`` with every body byte, then :meth:`check`: ``BadDigest`` when they differ.
    """

    __slots__ = ("_checksum", "_expected", "name")

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self._expected = decode_value(name, value)
        self._checksum = new_checksum(name)

    def update(self, data: bytes, /) -> None:
        """Add the next piece of the body."""
        self._checksum.update(data)

    def check(self) -> None:
        """Raise :class:`BadDigest` unless the body so far has the claimed checksum."""
        _compare(self.name, self._checksum.digest(), self._expected)


def _compare(name: str, computed: bytes, expected: bytes) -> None:
    if not hmac.compare_digest(computed, expected):
        raise BadDigest(f"The {_algorithm(name)} you specified did not match the calculated checksum.")


def check_digest(name: str, value: str, digest: bytes) -> None:
    """Raise unless the base64 checksum ``value`` of header ``name`` is ``digest``.

    ``InvalidRequest`` for a malformed value, ``BadDigest`` for a mismatch.
    """
    _compare(name, digest, decode_value(name, value))


def decode_value(name: str, value: str) -> bytes:
    """The digest a base64 checksum ``value`` of header ``name`` stands for; InvalidRequest if malformed."""
    size = _SIZES.get(name)
    if size is None:
        raise InvalidRequest(f"The checksum {name[:64]} is not one S3 defines.")
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != size:
        raise InvalidRequest(f"Value for {name} header is invalid.")
    return digest


def expected_checksum(fields: Iterable[tuple[str, str]]) -> ExpectedChecksum | None:
    """The one checksum ``fields`` (lowercase names, e.g. headers or hoisted query parameters) claim.

    ``None`` when none does; ``InvalidRequest`` for more than one, an unknown algorithm or a
    malformed value, before any body byte is read.
    """
    found: ExpectedChecksum | None = None
    for name, value in fields:
        if not name.startswith(PREFIX) or name in _NOT_CHECKSUMS:
            continue
        if found is not None:
            raise InvalidRequest(
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
            )
        found = ExpectedChecksum(name, value)
    return found
