"""The audit trail: one CloudTrail-like event per decided request, handed to sink plugins.

:class:`Auditor` (:mod:`gateway.audit.events`, where every event shape is spelled) builds events
from each call's record (:class:`gateway.calls.CallRecord`) and passes them to the
``fedgate_audit_event`` hook. The built-in sinks (:mod:`gateway.audit.sinks`, registered
``trylast``): :class:`JsonLinesSink` writes JSON lines to stdout or a file; :class:`StoreSink`
appends them in batches to a stream in the store (a Redis stream shared by every replica), spilling
to a local file (:mod:`gateway.audit.spill`) what the store cannot take. Events never carry secrets.
"""

from __future__ import annotations

from gateway.audit.events import Auditor
from gateway.audit.sinks import AuditSinkStats, JsonLinesSink, StoreSink

__all__ = ["AuditSinkStats", "Auditor", "JsonLinesSink", "StoreSink"]
