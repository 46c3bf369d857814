"""The agent's exception tree.

The agent is its own small server with its own wire dialects (the container credentials endpoint's
JSON, IMDS's plain text), so its errors live here rather than among the gateway's STS errors::

    GatewayError                        (gateway.errors)
    └── AgentError
        ├── SourceError                 fetching credentials failed; the agent retries with backoff
        │   ├── TokenFileError          the token file is missing, unreadable, empty or too large
        │   ├── GatewayUnreachable      no usable answer: connection, TLS, timeout, not STS XML
        │   └── GatewayRefused          the gateway answered with an STS ErrorResponse
        ├── StartError                  the agent cannot start: a port taken, a file not writable
        ├── CredentialsUnavailable      nothing valid to serve (503, or IMDS's Code/Message shape)
        └── RequestRefused              a request to the agent itself is refused: status, code
            ├── BadRequest              400: IMDS token TTL missing or out of range
            ├── Unauthorized            401: no or wrong Authorization, no or bad IMDS session token
            ├── Forbidden               403: sent through a proxy (X-Forwarded-For), or a Host name
            ├── NotFound                404
            └── MethodNotAllowed        405

Subclasses set class attributes only. Messages are for the operator and the SDK: they never hold a
token, a secret or a credential.
"""

from __future__ import annotations

from gateway.errors import GatewayError

__all__ = [
    "AgentError",
    "BadRequest",
    "CredentialsUnavailable",
    "Forbidden",
    "GatewayRefused",
    "GatewayUnreachable",
    "MethodNotAllowed",
    "NotFound",
    "RequestRefused",
    "SourceError",
    "StartError",
    "TokenFileError",
    "Unauthorized",
]


class AgentError(GatewayError):
    """Root of every exception ``fedgate agent`` raises on purpose."""


class SourceError(AgentError):
    """A credential source could not produce credentials; the message says why and what to check."""


class TokenFileError(SourceError):
    """The identity token file is missing, unreadable, empty or too large."""


class GatewayUnreachable(SourceError):
    """The gateway gave no usable answer (connection, TLS, timeout, or not an STS document)."""


class GatewayRefused(SourceError):
    """The gateway answered with an STS ``ErrorResponse``; the message carries its code."""


class StartError(AgentError):
    """The agent cannot start (a port in use, a file it cannot write); the message says which."""


class CredentialsUnavailable(AgentError):
    """No credentials that are still valid: the SDK gets its error shape instead."""

    code = "CredentialsUnavailable"
    status = 503


class RequestRefused(AgentError):
    """A request to the agent is refused with ``status``; ``code`` names why in JSON answers."""

    code = "BadRequest"
    status = 400


class BadRequest(RequestRefused):
    """A malformed request (IMDS: the token TTL header is missing or out of range)."""


class Unauthorized(RequestRefused):
    """No or a wrong ``Authorization`` header, or no or a bad IMDS session token."""

    code = "Unauthorized"
    status = 401


class Forbidden(RequestRefused):
    """A request that came through a proxy, or named the agent by a host name (DNS rebinding)."""

    code = "Forbidden"
    status = 403


class NotFound(RequestRefused):
    """Nothing is served at this path."""

    code = "NotFound"
    status = 404


class MethodNotAllowed(RequestRefused):
    """The path exists, but not for this method."""

    code = "MethodNotAllowed"
    status = 405
