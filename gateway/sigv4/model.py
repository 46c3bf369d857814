"""Value types shared by the SigV4 parser, verifier and signer, and the limits they enforce."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, final

__all__ = [
    "ALGORITHM",
    "DEFAULT_MAX_SKEW",
    "EMPTY_SHA256",
    "MAX_EXPIRES",
    "STREAMING_AWS4_HMAC_SHA256_PAYLOAD",
    "STREAMING_AWS4_HMAC_SHA256_PAYLOAD_TRAILER",
    "STREAMING_UNSIGNED_PAYLOAD_TRAILER",
    "UNSIGNED_PAYLOAD",
    "HttpRequest",
    "SignatureInfo",
    "StreamingContext",
    "Verified",
]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_UNSIGNED_PAYLOAD_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_AWS4_HMAC_SHA256_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_AWS4_HMAC_SHA256_PAYLOAD_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
DEFAULT_MAX_SKEW = timedelta(minutes=15)
#: AWS caps presigned URLs at seven days.
MAX_EXPIRES = 604800

# Input limits, applied before any parsing work. They are far above what any SDK sends.
MAX_AUTHORIZATION_LEN = 8192
MAX_SIGNED_HEADERS = 128
MAX_QUERY_LEN = 32768
MAX_QUERY_PARAMS = 1000
MAX_TOKEN_LEN = 16384
MAX_ACCESS_KEY_ID_LEN = 128
MAX_SCOPE_PART_LEN = 64


@final
@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A transport-neutral view of an HTTP request, as it was received.

    ``raw_path`` is the path exactly as on the wire (still percent-encoded, without the query);
    ``raw_query`` is the query string exactly as on the wire, without the leading ``?``;
    ``headers`` is the raw header list in arrival order, original case, duplicates allowed.
    ``payload_sha256`` is the lowercase hex SHA-256 of the body when the caller computed it, or
    ``None`` when the body is streamed and must be checked against :attr:`Verified.payload_hash`.
    """

    method: str
    raw_path: str
    raw_query: str
    headers: Sequence[tuple[str, str]]
    payload_sha256: str | None = None


@final
@dataclass(frozen=True, slots=True)
class SignatureInfo:
    """What :func:`~gateway.sigv4.parse_signature` extracted from a request, before any crypto.

    Nothing here is authenticated until :func:`~gateway.sigv4.verify` has returned. ``timestamp`` is
    the ISO 8601 basic form (``YYYYMMDDTHHMMSSZ``) that goes into the string to sign; ``amz_date`` is
    the same instant as an aware UTC datetime. ``expires`` is ``X-Amz-Expires`` (query form only).
    """

    form: Literal["header", "query"]
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: datetime
    timestamp: str
    security_token: str | None = None
    expires: int | None = None

    @property
    def scope(self) -> str:
        """The credential scope, ``DATE/REGION/SERVICE/aws4_request``."""
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


@final
@dataclass(frozen=True, slots=True)
class StreamingContext:
    """What a verified ``aws-chunked`` upload needs to decode (and check) its body.

    ``payload_hash`` is one of the three ``STREAMING-*`` literals the seed signature covers.
    ``seed_signature`` is the request's own signature, which chains into the first chunk signature;
    ``signing_key`` is the derived SigV4 key (never in ``repr``); ``scope`` and ``timestamp`` (the
    ``X-Amz-Date`` string) go into every chunk's string to sign. ``trailer_names`` are the lowercase
    names the ``x-amz-trailer`` header declares; ``decoded_length`` is ``x-amz-decoded-content-length``
    when sent. Build a :class:`~gateway.sigv4.chunked.ChunkedDecoder` from it.
    """

    payload_hash: str
    seed_signature: str
    signing_key: bytes = field(repr=False)
    scope: str
    timestamp: str
    trailer_names: tuple[str, ...] = ()
    decoded_length: int | None = None

    @property
    def signed_chunks(self) -> bool:
        """Whether every chunk carries a ``chunk-signature`` (the ``STREAMING-AWS4-HMAC-*`` forms)."""
        return self.payload_hash != STREAMING_UNSIGNED_PAYLOAD_TRAILER

    @property
    def trailer(self) -> bool:
        """Whether trailing headers follow the final chunk (the ``*-TRAILER`` forms)."""
        return self.payload_hash.endswith("-TRAILER")


@final
@dataclass(frozen=True, slots=True)
class Verified:
    """The outcome of a successful :func:`~gateway.sigv4.verify`.

    ``payload_hash`` is the value the signature covers for the body: a hex SHA-256, or one of the
    literals ``UNSIGNED-PAYLOAD`` / ``STREAMING-*``. ``payload_checked`` is true when the verifier
    compared it with the caller's ``payload_sha256``; when false and the hash is hex, the caller must
    check the streamed body against it before trusting the body. ``streaming`` is set for the
    ``STREAMING-*`` (``aws-chunked``) forms: the body must then go through a
    :class:`~gateway.sigv4.chunked.ChunkedDecoder` built from it.
    """

    info: SignatureInfo
    payload_hash: str
    payload_checked: bool
    streaming: StreamingContext | None = None

    @property
    def payload_signed(self) -> bool:
        """Whether the signature covers the body bytes (a hex hash rather than a literal)."""
        return len(self.payload_hash) == 64 and "-" not in self.payload_hash
