"""The gateway's Prometheus metrics: every series fedgate exports, and the seams that feed them.

One :class:`Metrics` per application (under ``keys.METRICS``) owns its series in a registry of its
own. Nothing else in fedgate creates a counter; the existing seams report to it:

============================  ===================================================================
seam                          series
============================  ===================================================================
request middleware            ``fedgate_requests_total``, ``fedgate_request_duration_seconds``
                              (by api, action and outcome; the action is what the audit seam
                              named for this request, ``none`` when nothing was audited)
:class:`~gateway.audit.Auditor`  ``fedgate_decisions_total`` (by effect),
                              ``fedgate_credentials_issued_total``
HTTP server connections       ``fedgate_open_connections``
proxy client sessions         ``fedgate_upstream_request_duration_seconds``,
(aiohttp ``TraceConfig``)     ``fedgate_upstream_responses_total``, ``fedgate_upstream_errors_total``
the Redis store's boundary    ``fedgate_store_operation_duration_seconds``,
                              ``fedgate_store_errors_total``
SQLAlchemy engine events      ``fedgate_database_statement_duration_seconds``,
                              ``fedgate_database_errors_total``
identity providers            ``fedgate_provider_refreshes_total`` (JWKS, SAML metadata; by outcome)
sampled each second           ``fedgate_audit_events_dropped_total``, ``fedgate_audit_events_spilled_total``,
                              ``fedgate_catalog_revision``, ``fedgate_database_revision``,
                              ``fedgate_catalog_propagation_lag_seconds``
reloads                       ``fedgate_config_reloads_total``
============================  ===================================================================

**Workers.** ``fedgate serve --workers N`` is multi-process: the parent makes a directory for this
run (:func:`multiprocess_directory`) before it forks, every worker's series are memory-mapped files
in it (prometheus_client's multiprocess mode), a scrape answered by any worker reads them all,
counters and histograms summed, and the parent removes a dead worker's live gauges and, at the end,
the directory. With one process the series live in memory.

**Cost.** What every request reports (the request, decision and upstream series) is tallied in
plain numbers, one dictionary look-up and an addition each, and added to the Prometheus series by
:meth:`Metrics.flush`, which :meth:`Metrics.sample` calls: each second and before every scrape (and
once more at shutdown), so a scrape sees every request answered before it, and a worker's mapped
file is at most a second behind. prometheus_client's own path (a lock and a chain of calls per
increment, a loop over the buckets per observation) cost the proxy about a twentieth of its CPU.
The tallies take no lock: every seam that tallies, and the flush, run on the event loop's thread
(only the exposition runs in a thread, and it reads the series, never the tallies). The rarer
seams (store, database, providers, reloads) report to their series directly. Nothing
formats or allocates a label set twice. This module imports no web framework: the audit seam is
domain code.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any, Final, final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import ExceptionContext

__all__ = [
    "CONTENT_TYPE",
    "MULTIPROCESS_ENV",
    "Metrics",
    "RequestMeter",
    "instrument_engine",
    "multiprocess_directory",
    "note_call",
    "worker_exited",
]

#: prometheus_client's switch to multi-process mode (the directory of mapped files).
MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# Seconds; requests answered from memory take well under a millisecond, proxied ones what the
# upstream takes.
_LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@final
class RequestMeter:
    """What the seams learn about one request while it is handled (held in a context variable,
    as the request id is): when it started, and the API, action and error code the audit seam
    named. The middleware begins one when metrics or tracing are on, and closes it in the task
    it began in."""

    __slots__ = ("action", "api", "code", "started", "token")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.api = "http"
        self.action = "none"
        self.code: str | None = None
        self.token: Token[RequestMeter | None] | None = _current.set(self)

    def close(self) -> None:
        """Stop being the current request's meter."""
        if self.token is not None:
            _current.reset(self.token)
            self.token = None

    def outcome_code(self, status: int, code: str | None) -> str:
        """The error code the request is counted with: the audit seam's, else ``code`` (the
        middleware's), else ``OK`` or the status."""
        return self.code or code or ("OK" if status < 400 else str(status))


# The request being handled in this task.
_current: ContextVar[RequestMeter | None] = ContextVar("fedgate_request_meter", default=None)


def note_call(source: str, event_name: str, error_code: str | None) -> None:
    """The audit seam names the call being answered (``source`` is its event source)."""
    meter = _current.get()
    if meter is not None:
        meter.api, meter.action, meter.code = source.partition(".")[0], event_name, error_code or "OK"


def _outcome(status: int) -> str:
    return "ok" if status < 400 else "client_error" if status < 500 else "server_error"


@final
class Metrics:
    """Every series of one application, and one method per seam that feeds them.

    ``directory`` is the multiprocess directory (``$PROMETHEUS_MULTIPROC_DIR`` by default): given,
    samples are mapped files there and :meth:`exposition` merges every process's.
    """

    def __init__(self, *, directory: str | None = None) -> None:
        directory = directory if directory is not None else os.environ.get(MULTIPROCESS_ENV)
        self.directory = directory or None
        if self.directory is not None and not getattr(values.ValueClass, "_multiprocess", False):
            # prometheus_client picks its value class when first imported; a plugin may have
            # imported it before serve named the directory.
            os.environ[MULTIPROCESS_ENV] = self.directory
            values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter(
            "fedgate_requests",
            "Requests answered, by API, action and error code (OK).",
            ["api", "action", "code"],
            registry=r,
        )
        self._latency = Histogram(
            "fedgate_request_duration_seconds",
            "Time from the request's head to its answer's end.",
            ["api", "action", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._decisions = Counter(
            "fedgate_decisions",
            "Authorization decisions, by API and effect (Allow, Deny).",
            ["api", "effect"],
            registry=r,
        )
        self._issued = Counter(
            "fedgate_credentials_issued", "Temporary credentials issued, by action.", ["action"], registry=r
        )
        self._connections = Gauge(
            "fedgate_open_connections",
            "Client connections open now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._upstream_latency = Histogram(
            "fedgate_upstream_request_duration_seconds",
            "Time to an upstream's response headers.",
            ["upstream"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._upstream_status = Counter(
            "fedgate_upstream_responses",
            "Upstream responses, by status code.",
            ["upstream", "status"],
            registry=r,
        )
        self._upstream_errors = Counter(
            "fedgate_upstream_errors",
            "Upstream requests that got no response, by error class.",
            ["upstream", "error"],
            registry=r,
        )
        self._store_latency = Histogram(
            "fedgate_store_operation_duration_seconds",
            "Redis store operations, by operation.",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._store_errors = Counter(
            "fedgate_store_errors",
            "Store operations that failed, by operation and error class.",
            ["operation", "error"],
            registry=r,
        )
        self._db_latency = Histogram(
            "fedgate_database_statement_duration_seconds",
            "IAM database statements, by backend.",
            ["backend"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._db_errors = Counter(
            "fedgate_database_errors",
            "IAM database statements that failed, by backend and error class.",
            ["backend", "error"],
            registry=r,
        )
        self._refreshes = Counter(
            "fedgate_provider_refreshes",
            "Identity-provider document loads (jwks, metadata), by outcome.",
            ["provider", "document", "outcome"],
            registry=r,
        )
        self._audit_dropped = Counter(
            "fedgate_audit_events_dropped", "Audit events lost (queue or spill file full).", registry=r
        )
        self._audit_spilled = Counter(
            "fedgate_audit_events_spilled", "Audit events written to the spill file.", registry=r
        )
        self._catalog_revision = Gauge(
            "fedgate_catalog_revision",
            "Revision of the catalog snapshot in force (the laggiest worker).",
            registry=r,
            multiprocess_mode="livemin",
        )
        self._db_revision = Gauge(
            "fedgate_database_revision",
            "The IAM database's revision as last read.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self._lag = Gauge(
            "fedgate_catalog_propagation_lag_seconds",
            "Seconds since this replica last confirmed it holds the database's revision: how late a "
            "change made elsewhere can be seen here (the worst worker).",
            registry=r,
            multiprocess_mode="livemax",
        )
        self._reloads = Counter(
            "fedgate_config_reloads", "Configuration reloads (SIGHUP), by outcome.", ["outcome"], registry=r
        )
        self._audit_seen = (0, 0)
        # Labelled children by family and label values: prometheus_client's labels() validates
        # and locks on every call, several times what the increment itself costs.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        # The request path's tallies since the last flush, by family and label values: a count, or
        # for a histogram its per-bucket counts (the last one +Inf) followed by the sum.
        self._counts: dict[tuple[Any, tuple[str, ...]], int] = {}
        self._observed: dict[tuple[Any, tuple[str, ...]], list[float]] = {}

    def _child(self, family: Any, *values: str) -> Any:
        key = (id(family), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*values)
        return child

    def _tally(self, family: Any, *values: str) -> None:
        key = (family, values)
        self._counts[key] = self._counts.get(key, 0) + 1

    def _tally_seconds(self, family: Any, seconds: float, *values: str) -> None:
        key = (family, values)
        slot = self._observed.get(key)
        if slot is None:
            slot = self._observed[key] = [0.0] * (len(_LATENCY_BUCKETS) + 2)
        # The bucket a Histogram would count it in: the first bound at or above it, else +Inf.
        slot[bisect.bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        slot[-1] += seconds

    def flush(self) -> None:
        """Add the request path's tallies to the Prometheus series (see the module docstring)."""
        counts, self._counts = self._counts, {}
        for (family, labels), count in counts.items():
            self._child(family, *labels).inc(count)
        observed, self._observed = self._observed, {}
        for (family, labels), slot in observed.items():
            # What Histogram.observe does for each observation, for all of them at once (its
            # per-bucket values and sum; tests/web/test_metrics.py holds the two equal).
            child = self._child(family, *labels)
            for bucket, seen in zip(child._buckets, slot[:-1], strict=True):
                if seen:
                    bucket.inc(seen)
            child._sum.inc(slot[-1])

    # -- requests (middleware, audit) ------------------------------------------------------------

    def finish(self, meter: RequestMeter, status: int, code: str | None) -> None:
        """The request was answered with ``status`` (and the error ``code``, if it failed)."""
        elapsed = time.perf_counter() - meter.started
        self._tally(self._requests, meter.api, meter.action, meter.outcome_code(status, code))
        self._tally_seconds(self._latency, elapsed, meter.api, meter.action, _outcome(status))

    def call_decided(
        self,
        event_name: str,
        source: str,
        error_code: str | None,
        *,
        decision: str | None = None,
        issued: bool = False,
    ) -> None:
        """The audit seam: a call was decided (``decision`` is the proxy's policy decision kind)."""
        api = source.partition(".")[0]
        if decision is not None:
            self._tally(self._decisions, api, "Allow" if decision == "allowed" else "Deny")
        elif error_code is None:
            self._tally(self._decisions, api, "Allow")
        elif error_code == "AccessDenied":
            self._tally(self._decisions, api, "Deny")
        if issued and error_code is None:
            self._tally(self._issued, event_name)

    # -- connections, upstreams, store, database, providers ---------------------------------------

    def connection_opened(self) -> None:
        """A client connection was accepted."""
        self._connections.inc()

    def connection_closed(self) -> None:
        """A client connection closed."""
        self._connections.dec()

    def upstream_answered(self, upstream: str, status: int, seconds: float) -> None:
        """An upstream sent its response headers ``seconds`` after the request started."""
        self._tally_seconds(self._upstream_latency, seconds, upstream)
        self._tally(self._upstream_status, upstream, str(status))

    def upstream_failed(self, upstream: str, error: BaseException) -> None:
        """An upstream request ended without a response."""
        self._child(self._upstream_errors, upstream, type(error).__name__).inc()

    def store_operation(self, operation: str, seconds: float, error: BaseException | None) -> None:
        """One Redis store operation took ``seconds`` and failed with ``error`` (or not)."""
        self._child(self._store_latency, operation).observe(seconds)
        if error is not None:
            self._child(self._store_errors, operation, type(error).__name__).inc()

    def database_statement(self, backend: str, seconds: float) -> None:
        """One IAM database statement completed."""
        self._child(self._db_latency, backend).observe(seconds)

    def database_error(self, backend: str, error: BaseException) -> None:
        """One IAM database statement failed."""
        self._child(self._db_errors, backend, type(error).__name__).inc()

    def provider_refreshed(self, provider: str, document: str, ok: bool) -> None:
        """An identity provider loaded (or failed to load) ``document`` (``jwks``, ``metadata``)."""
        self._child(self._refreshes, provider, document, "ok" if ok else "failed").inc()

    def reloaded(self, ok: bool) -> None:
        """A configuration reload was applied (or refused)."""
        self._child(self._reloads, "applied" if ok else "refused").inc()

    # -- sampled ----------------------------------------------------------------------------------

    def sample(
        self,
        *,
        catalog_revision: int,
        database_revision: int | None,
        lag_seconds: float | None,
        audit_spilled: int = 0,
        audit_dropped: int = 0,
    ) -> None:
        """Copy state read elsewhere (each second, and before a scrape): gauges are set, cumulative
        counts of this process advance the counters by what is new; the request path's tallies are
        flushed."""
        self.flush()
        self._catalog_revision.set(catalog_revision)
        if database_revision is not None:
            self._db_revision.set(database_revision)
        if lag_seconds is not None:
            self._lag.set(lag_seconds)
        spilled, dropped = self._audit_seen
        if audit_spilled > spilled:
            self._audit_spilled.inc(audit_spilled - spilled)
        if audit_dropped > dropped:
            self._audit_dropped.inc(audit_dropped - dropped)
        self._audit_seen = (max(spilled, audit_spilled), max(dropped, audit_dropped))

    # -- exposition -------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text exposition: this process's series, or every worker's merged."""
        if self.directory is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.directory)  # type: ignore[no-untyped-call]
        return generate_latest(merged)


def instrument_engine(metrics: Metrics, engine: Engine, backend: str) -> None:
    """Time ``engine``'s statements and count its failures, through SQLAlchemy's engine events."""

    def before(conn: Connection, *_: Any) -> None:
        conn.info.setdefault(_STARTED, []).append(time.perf_counter())

    def after(conn: Connection, *_: Any) -> None:
        started = conn.info.get(_STARTED)
        if started:
            metrics.database_statement(backend, time.perf_counter() - started.pop())

    def failed(context: ExceptionContext) -> None:
        started = context.connection.info.get(_STARTED) if context.connection is not None else None
        if started:
            started.pop()
        metrics.database_error(backend, context.original_exception)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)


_STARTED: Final = "fedgate_statement_started"


@contextlib.contextmanager
def multiprocess_directory() -> Iterator[Path]:
    """A directory for this run's worker samples, named in ``$PROMETHEUS_MULTIPROC_DIR`` for the
    processes forked inside the block, and removed (with the variable) when it ends."""
    path = Path(tempfile.mkdtemp(prefix="fedgate-metrics-"))
    previous = os.environ.get(MULTIPROCESS_ENV)
    os.environ[MULTIPROCESS_ENV] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_ENV, None)
        else:
            os.environ[MULTIPROCESS_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


def worker_exited(directory: Path, pid: int) -> None:
    """Forget the live gauges of worker ``pid`` (its open connections, its revision)."""
    mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
