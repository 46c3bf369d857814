"""Audit events: one CloudTrail-like event per decided request, handed to sink plugins.

Events are built here from what the call learned (:class:`gateway.sts.service.CallContext`) and
passed to the ``fedgate_audit_event`` hook (the built-in sinks are in :mod:`gateway.audit.sinks`).
Events never carry secrets: request parameters are filtered through an allowlist, so a new
parameter is left out until it is reviewed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, final

from gateway.errors import ServiceError
from gateway.plugin_host import PluginHost
from gateway.sts.service import CallContext

__all__ = ["Auditor"]

# Parameters safe to record. Tokens, assertions and secrets are never in this list.
_SAFE_PARAMETERS = frozenset(
    {
        "roleArn",
        "roleSessionName",
        "durationSeconds",
        "policy",
        "policyArns",
        "providerId",
        "principalArn",
    }
)


@final
class Auditor:
    """Builds audit events and hands them to the plugin host."""

    def __init__(self, host: PluginHost, *, account_id: str, region: str) -> None:
        self._host = host
        self._account_id = account_id
        self._region = region

    def build(
        self,
        event_name: str,
        ctx: CallContext,
        error: ServiceError | None,
        *,
        source: str = "sts.amazonaws.com",
    ) -> dict[str, Any]:
        """A CloudTrail-shaped event for one call."""
        params = {
            k: v for k, v in (ctx.request_parameters or {}).items() if k in _SAFE_PARAMETERS and v is not None
        }
        event: dict[str, Any] = {
            "eventVersion": "1.08",
            "eventTime": datetime.fromtimestamp(ctx.now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": source,
            "eventName": event_name,
            "awsRegion": self._region,
            "sourceIPAddress": ctx.source_ip,
            "userAgent": ctx.user_agent[:512],
            "userIdentity": ctx.user_identity or {"type": "Unknown"},
            "requestParameters": params or None,
            "responseElements": ctx.response_elements if error is None else None,
            "requestID": ctx.request_id,
            "eventID": str(uuid.uuid4()),
            "readOnly": event_name.startswith("Get"),
            "resources": ctx.resources or None,
            "eventType": "AwsApiCall",
            "recipientAccountId": self._account_id,
        }
        if error is not None:
            event["errorCode"] = error.code
            event["errorMessage"] = error.message[:1024]
        return event

    def emit(self, event_name: str, ctx: CallContext, error: ServiceError | None, **kw: Any) -> None:
        """Build the event and hand it to every sink (nothing is built when there is none)."""
        if self._host.has_audit_sinks():
            self._host.audit_event(self.build(event_name, ctx, error, **kw))
