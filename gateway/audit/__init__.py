"""The audit trail: one CloudTrail-like event per decided request, handed to sink plugins.

The events and the built-in sinks live in :mod:`gateway.audit.events`.
"""

from __future__ import annotations

from gateway.audit.events import Auditor, JsonLinesSink, StoreSink

__all__ = ["Auditor", "JsonLinesSink", "StoreSink"]
