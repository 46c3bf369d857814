"""The audit trail: one CloudTrail-like event per decided request, handed to sink plugins.

Events are built here from what the call learned (:class:`gateway.sts.service.CallContext`) and
passed to the ``fedgate_audit_event`` hook. The built-in :class:`JsonLinesSink` (registered
``trylast``) writes them as JSON lines to stdout or a file; :class:`StoreSink` appends them to a
stream in the store instead (a Redis stream shared by every replica). Events never carry secrets:
request parameters are filtered through an allowlist, so a new parameter is left out until it is
reviewed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any, final

from gateway.config import AuditSettings
from gateway.errors import ServiceError
from gateway.plugin import hookimpl
from gateway.plugin_host import PluginHost
from gateway.store.base import Store
from gateway.sts.service import CallContext

__all__ = ["Auditor", "JsonLinesSink", "StoreSink"]

log = logging.getLogger(__name__)

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


@final
class JsonLinesSink:
    """The default audit sink: one JSON object per line on stdout or appended to a file."""

    def __init__(self, settings: AuditSettings) -> None:
        self._settings = settings
        self._stream: IO[str] | None = None
        if settings.sink == "stdout":
            self._stream = sys.stdout
        elif settings.sink == "file":
            assert settings.path is not None
            self._stream = open(settings.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    @hookimpl(trylast=True)
    def fedgate_audit_event(self, event: Mapping[str, Any]) -> None:
        """Write ``event`` as one line."""
        if self._stream is not None:
            self._stream.write(json.dumps(event, separators=(",", ":"), default=str) + "\n")
            self._stream.flush()

    def close(self) -> None:
        """Close the file, if one was opened."""
        if self._stream is not None and self._stream is not sys.stdout:
            self._stream.close()
        self._stream = None


@final
class StoreSink:
    """The audit sink that appends events to a stream in the store (``XADD`` on Redis).

    Hooks are synchronous, so events go into a bounded queue that one background task drains;
    every replica sharing the store appends to the same stream. When the store falls behind by
    ``_QUEUE`` events, new events are dropped and counted in the log rather than blocking requests.
    """

    _QUEUE = 10_000

    def __init__(self, store: Store, settings: AuditSettings) -> None:
        self._store = store
        self._stream = settings.stream
        self._maxlen = settings.max_events
        self._queue: asyncio.Queue[str] = asyncio.Queue(self._QUEUE)
        self._dropped = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the writer task (on the running loop)."""
        self._task = asyncio.get_running_loop().create_task(self._write())

    async def close(self) -> None:
        """Write what is queued, then stop."""
        await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @hookimpl(trylast=True)
    def fedgate_audit_event(self, event: Mapping[str, Any]) -> None:
        """Queue ``event`` for the stream."""
        try:
            self._queue.put_nowait(json.dumps(event, separators=(",", ":"), default=str))
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped in (1, 100) or self._dropped % 10_000 == 0:
                log.error("the audit stream is falling behind", extra={"dropped_events": self._dropped})

    async def _write(self) -> None:
        while True:
            line = await self._queue.get()
            try:
                await self._store.append_event(self._stream, {"event": line}, maxlen=self._maxlen)
            except Exception:
                log.exception("could not append an audit event to the store")
            finally:
                self._queue.task_done()
