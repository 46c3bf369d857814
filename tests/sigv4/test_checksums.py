"""S3's flexible checksums against published check values, and their S3-shaped errors."""

from __future__ import annotations

import base64

import pytest

from gateway.errors import BadDigest, InvalidRequest
from gateway.sigv4.checksums import CHECKSUM_HEADERS, checksum_value, expected_checksum

# The CRC catalogue's check values (the checksum of b"123456789") and the hashes' own.
CHECK = b"123456789"
VECTORS = {
    "x-amz-checksum-crc32": "cbf43926",
    "x-amz-checksum-crc32c": "e3069283",
    "x-amz-checksum-crc64nvme": "ae8b14860a799888",
    "x-amz-checksum-sha1": "f7c3bc1d808e04732adf679965ccc34ca7ae3441",
    "x-amz-checksum-sha256": "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225",
}


def test_every_algorithm_is_covered() -> None:
    assert set(VECTORS) == CHECKSUM_HEADERS


@pytest.mark.parametrize(("name", "hex_digest"), sorted(VECTORS.items()))
def test_check_values(name: str, hex_digest: str) -> None:
    assert base64.b64decode(checksum_value(name, CHECK)).hex() == hex_digest


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_streamed_in_pieces(name: str) -> None:
    claim = expected_checksum([(name, checksum_value(name, CHECK))])
    assert claim is not None
    for piece in (CHECK[:1], CHECK[1:5], b"", CHECK[5:]):
        claim.update(piece)
    claim.check()
    wrong = expected_checksum([(name, checksum_value(name, CHECK[:-1]))])
    assert wrong is not None
    wrong.update(CHECK)
    with pytest.raises(BadDigest, match="did not match the calculated checksum"):
        wrong.check()


@pytest.mark.parametrize(
    "fields",
    [
        [("x-amz-checksum-crc32", "AAAA")],  # three bytes, not four
        [("x-amz-checksum-crc32", "not base64!")],
        [("x-amz-checksum-crc16", "AAAAAA==")],
        [
            ("x-amz-checksum-crc32", "AAAAAA=="),
            ("x-amz-checksum-sha1", checksum_value("x-amz-checksum-sha1", b"")),
        ],
    ],
    ids=["short", "garbled", "unknown", "two"],
)
def test_malformed_claims_are_invalid_request(fields: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidRequest):
        expected_checksum(fields)


def test_mode_and_algorithm_headers_are_not_claims() -> None:
    assert (
        expected_checksum([("x-amz-checksum-mode", "ENABLED"), ("x-amz-sdk-checksum-algorithm", "CRC32")])
        is None
    )
