"""Errors only the proxy raises. They belong to the tree in :mod:`gateway.errors`::

ServiceError
├── ContentSHA256Mismatch    400  the streamed body does not match x-amz-content-sha256
├── MissingContentLength     411  an upload without a length the upstream can be told
├── BadGateway               502  the upstream failed or answered garbage (fault = Receiver)
└── GatewayTimeout           504  the upstream did not answer in time (fault = Receiver)
"""

from __future__ import annotations

from gateway.errors import ServiceError

__all__ = ["BadGateway", "ContentSHA256Mismatch", "GatewayTimeout", "MissingContentLength"]


class ContentSHA256Mismatch(ServiceError):
    """The body that arrived is not the one whose hash the signature covers."""

    code = "XAmzContentSHA256Mismatch"
    status = 400
    fault = "Sender"


class MissingContentLength(ServiceError):
    """An upload whose length is unknown (S3's ``MissingContentLength``)."""

    code = "MissingContentLength"
    status = 411
    fault = "Sender"


class BadGateway(ServiceError):
    """The upstream could not be reached or failed mid-request."""

    code = "BadGateway"
    status = 502


class GatewayTimeout(ServiceError):
    """The upstream did not answer in time."""

    code = "GatewayTimeout"
    status = 504
