"""OpenTelemetry tracing (``tracing.enabled``, off by default; the ``otel`` extra).

One server span per request, started by the request middleware and current while the handler runs
(so instrumented clients and plugins add children to it), named ``METHOD /route`` by the kind of
call it was once known (``POST sts:AssumeRoleWithWebIdentity``, ``GET s3:GetObject``), with
attributes: ``fedgate.request_id`` (the ``x-amzn-RequestId`` answered), ``http.request.method``,
``url.path`` (without the query), ``http.response.status_code``, ``fedgate.api``,
``fedgate.action`` and, for a failure, ``fedgate.error_code``. Spans carry no header, token,
query string or body.

``exporter: otlp`` makes a tracer provider of fedgate's own that sends batches over OTLP/HTTP and
is shut down (flushed) when the server stops; ``exporter: global`` uses the process's provider,
set up by whoever runs fedgate (``opentelemetry-instrument``, a ``sitecustomize``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, final

from gateway.errors import ConfigError
from gateway.opsconfig import TracingSettings

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = ["RequestSpan", "Tracing"]

_NAME = "fedgate"


@final
class RequestSpan:
    """One request's span, current in its task until :meth:`end`."""

    __slots__ = ("_detach", "_method", "_span")

    def __init__(self, span: Span, method: str, detach: Callable[[], None]) -> None:
        self._span = span
        self._method = method
        self._detach = detach

    def end(self, status: int, *, api: str | None, action: str | None, code: str | None) -> None:
        """Record the answer and end the span."""
        from opentelemetry.trace import Status, StatusCode

        span = self._span
        span.set_attribute("http.response.status_code", status)
        if api is not None and action is not None and action != "none":
            span.set_attribute("fedgate.api", api)
            span.set_attribute("fedgate.action", action)
            span.update_name(f"{self._method} {api}:{action}")
        if code is not None and code != "OK":
            span.set_attribute("fedgate.error_code", code)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        self._detach()
        span.end()


@final
class Tracing:
    """The tracer requests are traced with, and how to flush it."""

    def __init__(self, tracer: Tracer, shutdown: Callable[[], None] = lambda: None) -> None:
        self._tracer = tracer
        self.shutdown = shutdown

    @classmethod
    def from_settings(cls, settings: TracingSettings) -> Tracing:
        """Build what ``settings`` describe; :class:`ConfigError` when the extra is missing."""
        try:
            from opentelemetry import trace
        except ImportError:
            raise ConfigError("tracing.enabled: needs the otel extra (pip install 'fedgate[otel]')") from None
        if settings.exporter == "global":
            return cls(trace.get_tracer(_NAME))
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            raise ConfigError(
                "tracing.exporter otlp: needs the otel extra (pip install 'fedgate[otel]')"
            ) from None
        provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.endpoint)))
        return cls(provider.get_tracer(_NAME), provider.shutdown)

    def start(self, request_id: str, method: str, path: str) -> RequestSpan:
        """Start the span of one request and make it current."""
        from opentelemetry import context, trace

        attributes: dict[str, Any] = {
            "fedgate.request_id": request_id,
            "http.request.method": method,
            "url.path": path,
        }
        span = self._tracer.start_span(f"{method} request", kind=trace.SpanKind.SERVER, attributes=attributes)
        token = context.attach(trace.set_span_in_context(span))
        return RequestSpan(span, method, lambda: context.detach(token))
