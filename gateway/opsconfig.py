"""Settings of fedgate running as a service: TLS, the metrics endpoint, tracing, the access log.

Their own module, beside :mod:`gateway.config` (which re-exports them and holds them in
:class:`~gateway.config.GatewayConfig`), as :mod:`gateway.proxy.config` is for the proxy: what
serving needs, read by the server, the metrics and tracing modules without the whole configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.net import Networks
from gateway.secretref import SecretRef

__all__ = ["AccessLogSettings", "MetricsSettings", "TlsSettings", "TracingSettings"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSettings(_Model):
    """HTTPS on the listening socket, from certificate and key files that are re-read when they change."""

    cert_file: Path = Field(
        description="PEM certificate chain: the server certificate first, then its intermediates."
    )
    key_file: Path = Field(description="PEM private key of the certificate (unencrypted; mode 0600).")
    reload_interval_seconds: float = Field(
        default=60.0,
        ge=0,
        le=86400,
        description="How often the files are checked for a change (size, mtime); a changed pair is "
        "loaded for new connections, open ones keep theirs. 0: only on SIGHUP.",
    )


_LOOPBACK_NETS = ["127.0.0.0/8", "::1/128"]


class MetricsSettings(_Model):
    """``GET /metrics``: Prometheus text format, every worker's samples in one answer.

    Who may read it: a direct peer in ``allow_from`` (loopback by default) that is not relaying for
    someone else (no ``Forwarded`` or ``X-Forwarded-For`` header), or anyone presenting ``token`` as
    ``Authorization: Bearer``. Everything else is answered AccessDenied.
    """

    enabled: bool = Field(default=True, description="Serve /metrics (and keep counting).")
    allow_from: Networks = Field(
        default_factory=lambda: list(_LOOPBACK_NETS),
        description="Networks (CIDR) whose direct connections may scrape without a token; requests "
        "carrying Forwarded or X-Forwarded-For never count as from them (a reverse proxy on the same "
        "host would otherwise make every client local). [] admits only the token.",
    )
    token: SecretRef | None = Field(
        default=None,
        description="Bearer token that admits a scrape from anywhere (Prometheus' "
        "authorization.credentials_file), by reference; at least 16 characters.",
    )


class TracingSettings(_Model):
    """OpenTelemetry tracing: one server span per request, with its request id (needs the ``otel`` extra)."""

    enabled: bool = Field(default=False, description="Trace requests (pip install 'fedgate[otel]').")
    exporter: Literal["otlp", "global"] = Field(
        default="otlp",
        description="otlp: fedgate sends spans itself, over OTLP/HTTP to endpoint, in batches. global: "
        "spans go to the tracer provider the process already has (opentelemetry-instrument, a "
        "sitecustomize), which also decides where they go.",
    )
    endpoint: str | None = Field(
        default=None,
        description="otlp: the collector's traces URL; omitted, $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or "
        "http://localhost:4318/v1/traces (the exporter's default).",
    )
    service_name: str = Field(default="fedgate", min_length=1, description="otlp: the service.name resource.")


class AccessLogSettings(_Model):
    """One JSON line per HTTP request: method, path (never the query), status, bytes, duration."""

    enabled: bool = Field(default=False, description="Write the access log.")
    path: Path | None = Field(
        default=None,
        description="File to append to (mode 0600); omitted, the lines go to stderr with the other logs.",
    )
