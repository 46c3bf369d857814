"""Structured JSON logs with the current request id on every line.

The request id lives in a :class:`contextvars.ContextVar` set by the request middleware, so every
log line written while a request is handled (by any module or plugin) carries it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any, TextIO

__all__ = ["JsonFormatter", "configure_logging", "request_id_var"]

request_id_var: ContextVar[str | None] = ContextVar("fedgate_request_id", default=None)

# Attributes every LogRecord has; anything else passed through ``extra=`` is emitted as a field.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record, as JSON lines, to ``stream`` (stderr by default)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log duplicates our audit events; keep it quiet unless debugging.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
    # Alembic narrates every start-up ("Context impl ..."); fedgate logs the migrations it applies.
    logging.getLogger("alembic").setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
