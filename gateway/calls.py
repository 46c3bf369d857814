"""The record of one call, filled by every front door and read by the audit trail.

A :class:`CallRecord` starts with what the transport knows (the request id and the request's
:class:`~gateway.context.Transport` facts) and collects facts as the call is decided: the parameters
that were asked for, the federated identity the call verified, the session or user whose
signature it carried, the resources it touched, the response it returned. It holds facts, not CloudTrail
shapes: the audit trail (:mod:`gateway.audit.events`) spells them, one builder per ``userIdentity`` shape,
so the same principal reads the same wherever it appears. Domain code (STS, the proxy's decision)
records facts here; adapters add what only they know (how a browser sign-in arrived).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.context import Transport
from gateway.credentials import SessionClaims
from gateway.iam.caller import Caller
from gateway.identity import Identity

__all__ = ["CallRecord"]


@dataclass(slots=True)
class CallRecord:
    """One call, as the audit trail will tell it.

    Attributes:
        request_id: the id returned in ``x-amzn-RequestId``.
        transport: what the transport knows (source address through trusted proxies, TLS, user
            agent, time).
        request_parameters: the parameters asked for, named as the API names them (lowerCamel);
            the audit trail keeps only those on its allowlist.
        identity: the federated identity the call verified (AssumeRoleWith*, browser sign-in).
        session: the session whose signature the call carried (a call signed by a role session).
        caller: whoever signed the call: a role session (then ``session`` is its claims) or an
            IAM user with a long-term access key.
        sign_in_via: how a browser or CLI sign-in arrived (``web``, ``cli``, ``device``), or ``None``.
        response_elements: what the call returned, for the audit trail (never a secret).
        resources: ``(type, ARN)`` of what the call acted on.
    """

    request_id: str
    transport: Transport
    request_parameters: dict[str, Any] | None = None
    identity: Identity | None = None
    session: SessionClaims | None = None
    caller: Caller | None = None
    sign_in_via: str | None = None
    response_elements: dict[str, Any] | None = None
    resources: list[tuple[str, str]] = field(default_factory=list)

    @property
    def now(self) -> float:
        """When the call was received, in epoch seconds."""
        return self.transport.now
