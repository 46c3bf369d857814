"""fedgate's exception tree.

Every error a client can see is a :class:`ServiceError` carrying the AWS error ``code`` that SDKs
parse, the HTTP ``status`` and the SOAP-style ``fault`` (``Sender`` for the caller's mistakes,
``Receiver`` for ours). Start-up problems never reach a client.

::

    GatewayError
    ├── ConfigError                      invalid configuration; start-up only
    ├── PluginError                      a plugin failed to load or register; start-up only
    ├── CommandError                     a command cannot do what it was asked (its port is taken,
    │                                    a file cannot be written); CLI only
    ├── AgentError                       fedgate agent's own tree: see gateway.agent.errors
    ├── DatabaseError                    the IAM database's schema is missing, behind or ahead of
    │                                    this fedgate; start-up and CLI only
    └── ServiceError                     code, status, fault = Sender | Receiver
        ├── InvalidParameterValue
        ├── MissingParameter
        ├── ValidationError
        ├── InvalidAction
        ├── InvalidIdentityToken
        ├── ExpiredToken                 an expired web identity token: ExpiredTokenException
        ├── ExpiredRequestToken          expired credentials signing a request: ExpiredToken
        ├── IDPRejectedClaim
        ├── IDPCommunicationError
        ├── MalformedPolicyDocument
        ├── PackedPolicyTooLarge
        ├── AccessDenied
        ├── SignatureDoesNotMatch
        ├── IncompleteSignature
        ├── MissingAuthenticationToken   an unsigned request to an action that needs a signature
        ├── RequestTimeTooSkewed
        ├── InvalidAccessKeyId
        ├── InvalidClientTokenId
        │   └── UnreadableSessionToken   the token does not open at all (S3: InvalidToken)
        ├── InvalidAuthorizationMessage  DecodeAuthorizationMessage: not a message fedgate encoded
        ├── IncompleteBody               an aws-chunked body ended early or disagrees with its length
        ├── NoSuchEntity                 IAM: the named role (or other entity) does not exist; 404
        ├── EntityAlreadyExists          IAM: an entity of that name (or id) exists already; 409
        ├── DeleteConflict               IAM: the entity still has dependents (keys, members...); 409
        ├── LimitExceeded                IAM: a quota (2 access keys per user, 10 groups...); 409
        ├── UnmodifiableEntity           IAM: the entity is declared in the configuration file
        ├── InvalidInput                 IAM: a value of the right shape that cannot be used
        ├── InvalidAuthenticationCode    IAM: an MFA code not accepted (wrong, spent, throttled); 403
        ├── ContentSHA256Mismatch        a streamed body does not match x-amz-content-sha256
        ├── BadDigest                    S3: a body does not match its x-amz-checksum-* or Content-MD5
        ├── InvalidRequest               S3: a request S3 refuses as a whole (a malformed checksum...)
        ├── InvalidToken                 S3: the session token is malformed
        ├── InvalidDigest                S3: a Content-MD5 that is not an MD5
        ├── MalformedXML                 S3: a request body that is not the XML the operation takes
        ├── MissingContentLength         411: an upload without a length the upstream can be told
        ├── BadRequest                   a request HTTP itself could not parse
        ├── RequestHeaderSectionTooLarge a request line or header over the server's limits
        ├── RequestTimeout               the client stalled while sending its request body
        ├── RequestEntityTooLarge        413: a body over what the endpoint reads whole
        ├── NotFound                     404: no API answers at the path
        ├── MethodNotAllowed             405: the API at the path does not take the method
        ├── ClientClosedRequest          the client left before its response ended (audit only)
        ├── InternalFailure              fault = Receiver
        ├── ServiceUnavailable           fault = Receiver
        │   └── DatabaseUnavailable      the IAM database cannot be reached (its cause is chained)
        ├── BadGateway                   502: the upstream failed (fault = Receiver)
        └── GatewayTimeout               504: the upstream did not answer in time (fault = Receiver)

Subclasses set class attributes only. Messages are for the caller: they never contain a secret, a
token or an assertion, and never internals.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "BadDigest",
    "BadGateway",
    "BadRequest",
    "ClientClosedRequest",
    "CommandError",
    "ConfigError",
    "ContentSHA256Mismatch",
    "DatabaseError",
    "DatabaseUnavailable",
    "DeleteConflict",
    "EntityAlreadyExists",
    "ExpiredRequestToken",
    "ExpiredToken",
    "GatewayError",
    "GatewayTimeout",
    "IDPCommunicationError",
    "IDPRejectedClaim",
    "IncompleteBody",
    "IncompleteSignature",
    "InternalFailure",
    "InvalidAccessKeyId",
    "InvalidAction",
    "InvalidAuthenticationCode",
    "InvalidAuthorizationMessage",
    "InvalidClientTokenId",
    "InvalidDigest",
    "InvalidIdentityToken",
    "InvalidInput",
    "InvalidParameterValue",
    "InvalidRequest",
    "InvalidToken",
    "LimitExceeded",
    "MalformedPolicyDocument",
    "MalformedXML",
    "MethodNotAllowed",
    "MissingAuthenticationToken",
    "MissingContentLength",
    "MissingParameter",
    "NoSuchEntity",
    "NotFound",
    "PackedPolicyTooLarge",
    "PluginError",
    "RequestEntityTooLarge",
    "RequestHeaderSectionTooLarge",
    "RequestTimeTooSkewed",
    "RequestTimeout",
    "ServiceError",
    "ServiceUnavailable",
    "SignatureDoesNotMatch",
    "UnmodifiableEntity",
    "UnreadableSessionToken",
    "ValidationError",
]


class GatewayError(Exception):
    """Root of every exception fedgate raises on purpose."""


class ConfigError(GatewayError):
    """The configuration is invalid. The message names the offending key path."""


class PluginError(GatewayError):
    """A plugin could not be loaded, registered or configured."""


class CommandError(GatewayError):
    """A command cannot do what it was asked. The message names the cause and the fix, in one line."""


class DatabaseError(GatewayError):
    """The IAM database cannot be used as it is (its schema needs an upgrade, say).

    The message names the cause and the fix; it never contains the database URL's password.
    """


class ServiceError(GatewayError):
    """An error that is rendered to the client in the dialect of the API it called."""

    code: str = "InternalFailure"
    status: int = 500
    fault: str = "Receiver"

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class _SenderError(ServiceError):
    status = 400
    fault = "Sender"


class InvalidParameterValue(_SenderError):
    code = "InvalidParameterValue"


class MissingParameter(_SenderError):
    code = "MissingParameter"


class ValidationError(_SenderError):
    code = "ValidationError"


class InvalidAction(_SenderError):
    code = "InvalidAction"


class InvalidIdentityToken(_SenderError):
    code = "InvalidIdentityToken"


class ExpiredToken(_SenderError):
    code = "ExpiredTokenException"


class IDPRejectedClaim(_SenderError):
    code = "IDPRejectedClaim"
    status = 403


class IDPCommunicationError(_SenderError):
    code = "IDPCommunicationError"


class MalformedPolicyDocument(_SenderError):
    code = "MalformedPolicyDocument"


class PackedPolicyTooLarge(_SenderError):
    code = "PackedPolicyTooLarge"


class AccessDenied(_SenderError):
    code = "AccessDenied"
    status = 403


class SignatureDoesNotMatch(_SenderError):
    code = "SignatureDoesNotMatch"
    status = 403


class IncompleteSignature(_SenderError):
    code = "IncompleteSignature"


class MissingAuthenticationToken(_SenderError):
    code = "MissingAuthenticationToken"
    status = 403


class RequestTimeTooSkewed(_SenderError):
    code = "RequestTimeTooSkewed"
    status = 403


class InvalidAccessKeyId(_SenderError):
    code = "InvalidAccessKeyId"
    status = 403


class InvalidClientTokenId(_SenderError):
    code = "InvalidClientTokenId"
    status = 403


class UnreadableSessionToken(InvalidClientTokenId):
    """The session token does not open (garbled, tampered with, sealed under an unknown key).

    STS answers it as every invalid token, ``InvalidClientTokenId``; S3 tells it apart as
    ``InvalidToken``, so the proxy does too.
    """


class InvalidAuthorizationMessage(_SenderError):
    code = "InvalidAuthorizationMessageException"


class InternalFailure(ServiceError):
    code = "InternalFailure"
    status = 500


class ServiceUnavailable(ServiceError):
    code = "ServiceUnavailable"
    status = 503


class DatabaseUnavailable(ServiceUnavailable):
    """The IAM database did not answer (refused, timed out, locked).

    Clients see a plain ``ServiceUnavailable``; the library exception is chained (``__cause__``)
    for the operator's one-line message and is never rendered to a client.
    """


class ExpiredRequestToken(_SenderError):
    """The session token that signed the request has expired (STS and the other services' code)."""

    code = "ExpiredToken"


class IncompleteBody(_SenderError):
    """The request body ended before its framing said it would (S3's ``IncompleteBody``)."""

    code = "IncompleteBody"


class NoSuchEntity(_SenderError):
    """IAM: the request names an entity (a role, say) that does not exist."""

    code = "NoSuchEntity"
    status = 404


class EntityAlreadyExists(_SenderError):
    """IAM: the request would create an entity whose name (or id) is taken."""

    code = "EntityAlreadyExists"
    status = 409


class DeleteConflict(_SenderError):
    """IAM: the entity cannot be deleted while it has dependents (access keys, members, ...)."""

    code = "DeleteConflict"
    status = 409


class LimitExceeded(_SenderError):
    """IAM: the request would exceed a quota (access keys per user, groups per user, policy size)."""

    code = "LimitExceeded"
    status = 409


class UnmodifiableEntity(_SenderError):
    """IAM: the entity is declared in the configuration file; change it there, not through the API."""

    code = "UnmodifiableEntity"


class InvalidInput(_SenderError):
    """IAM: a parameter is well formed but cannot be used (a malformed ARN, duplicate tag keys)."""

    code = "InvalidInput"


class InvalidAuthenticationCode(_SenderError):
    """IAM: an MFA device's code was not accepted (wrong, used already, or the device is throttled)."""

    code = "InvalidAuthenticationCode"
    status = 403


class ContentSHA256Mismatch(_SenderError):
    """The body that arrived is not the one whose hash the signature covers."""

    code = "XAmzContentSHA256Mismatch"


class BadDigest(_SenderError):
    """S3: the body does not match the checksum (``x-amz-checksum-*``, ``Content-MD5``) it came with."""

    code = "BadDigest"


class InvalidRequest(_SenderError):
    """S3: a request refused as a whole, such as a malformed checksum or two checksums at once."""

    code = "InvalidRequest"


class InvalidToken(_SenderError):
    """S3: the session token is malformed or otherwise invalid (STS says ``InvalidClientTokenId``)."""

    code = "InvalidToken"


class InvalidDigest(_SenderError):
    """S3: the ``Content-MD5`` header is not the base64 of an MD5 digest."""

    code = "InvalidDigest"


class MalformedXML(_SenderError):
    """S3: the request body is not well-formed, or not the document the operation takes."""

    code = "MalformedXML"


class MissingContentLength(_SenderError):
    """An upload whose length is unknown (S3's ``MissingContentLength``)."""

    code = "MissingContentLength"
    status = 411


class BadRequest(_SenderError):
    """The request is not valid HTTP (a malformed request line or header, a broken chunked body)."""

    code = "BadRequest"


class RequestHeaderSectionTooLarge(_SenderError):
    """The request line or a header is longer than the server accepts (S3's code for it)."""

    code = "RequestHeaderSectionTooLarge"


class RequestTimeout(_SenderError):
    """The client stopped sending its request body (S3's ``RequestTimeout``, a 400 there too)."""

    code = "RequestTimeout"


class RequestEntityTooLarge(_SenderError):
    """The body is larger than the endpoint reads whole."""

    code = "RequestEntityTooLarge"
    status = 413


class NotFound(_SenderError):
    """No API answers at the requested path."""

    code = "NotFound"
    status = 404


class MethodNotAllowed(_SenderError):
    """The API at the path does not take the method (S3's code and status)."""

    code = "MethodNotAllowed"
    status = 405


class ClientClosedRequest(_SenderError):
    """The client closed the connection before its response ended; never sent, only audited
    (499 is nginx's status for it)."""

    code = "ClientClosedRequest"
    status = 499


class BadGateway(ServiceError):
    """The upstream could not be reached or failed mid-request."""

    code = "BadGateway"
    status = 502


class GatewayTimeout(ServiceError):
    """The upstream did not answer in time."""

    code = "GatewayTimeout"
    status = 504
