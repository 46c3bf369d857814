"""OpenTelemetry tracing: a server span per request, with its request id, seen by the SDK's exporters."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import config_from, serve_app

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (set once: OpenTelemetry allows no second), into memory."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    yield memory
    provider.shutdown()


async def test_each_request_is_a_span_with_its_request_id(exporter: InMemorySpanExporter) -> None:
    exporter.clear()
    config = config_from({"account_id": ACCOUNT, "tracing": {"enabled": True, "exporter": "global"}})
    runner, port, _ = await serve_app(config)
    try:
        async with aiohttp.ClientSession() as http:
            url = (
                f"http://127.0.0.1:{port}/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Signature=s3cr3t"
            )
            async with http.get(url) as r:
                assert r.status == 400
                request_id = r.headers["x-amzn-RequestId"]
            async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                health_id = r.headers["x-amzn-RequestId"]
    finally:
        await runner.cleanup()
    spans = {span.attributes["fedgate.request_id"]: span for span in exporter.get_finished_spans()}
    call = spans[request_id]
    assert call.kind == trace.SpanKind.SERVER
    assert call.name == "GET sts:GetCallerIdentity"
    assert call.attributes["fedgate.action"] == "GetCallerIdentity"
    assert call.attributes["http.response.status_code"] == 400
    assert call.attributes["fedgate.error_code"] == "IncompleteSignature"
    assert call.attributes["url.path"] == "/"  # never the query, where presigned URLs sign
    assert all("s3cr3t" not in str(value) for value in call.attributes.values())
    assert spans[health_id].name == "GET request"


async def test_tracing_is_off_by_default(exporter: InMemorySpanExporter) -> None:
    exporter.clear()
    runner, port, _ = await serve_app(config_from({"account_id": ACCOUNT}))
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as r:
            assert r.status == 200
    finally:
        await runner.cleanup()
    assert exporter.get_finished_spans() == ()


async def test_the_otlp_exporter_sends_the_spans_at_shutdown() -> None:
    received: list[ExportTraceServiceRequest] = []

    async def collect(request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        received.append(message)
        return web.Response(body=b"", content_type="application/x-protobuf")

    collector = web.Application()
    collector.router.add_post("/v1/traces", collect)
    collector_runner = web.AppRunner(collector, access_log=None)
    await collector_runner.setup()
    site = web.TCPSite(collector_runner, "127.0.0.1", 0)
    await site.start()
    endpoint = f"http://127.0.0.1:{collector_runner.addresses[0][1]}/v1/traces"
    try:
        config = config_from(
            {
                "account_id": ACCOUNT,
                "tracing": {"enabled": True, "endpoint": endpoint, "service_name": "fedgate-test"},
            }
        )
        runner, port, _ = await serve_app(config)
        try:
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as r:
                request_id = r.headers["x-amzn-RequestId"]
        finally:
            await runner.cleanup()  # flushes the batch
        await asyncio.sleep(0)
    finally:
        await collector_runner.cleanup()
    spans = [s for m in received for rs in m.resource_spans for ss in rs.scope_spans for s in ss.spans]
    ids = [a.value.string_value for s in spans for a in s.attributes if a.key == "fedgate.request_id"]
    assert ids == [request_id]
    service = {
        a.value.string_value for m in received for rs in m.resource_spans for a in rs.resource.attributes
        if a.key == "service.name"
    }  # fmt: skip
    assert service == {"fedgate-test"}
