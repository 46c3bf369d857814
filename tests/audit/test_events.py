"""The audit trail's built-in sink and event shape."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from gateway import hookimpl
from gateway.audit import Auditor, JsonLinesSink
from gateway.calls import CallRecord
from gateway.config import AuditSettings
from gateway.context import Transport
from gateway.errors import AccessDenied
from gateway.plugin_host import PluginHost


def _ctx() -> CallRecord:
    ctx = CallRecord(
        request_id="req-1",
        transport=Transport(
            source_ip="192.0.2.7", secure=True, user_agent="ua", referer=None, now=1_800_000_000
        ),
    )
    ctx.request_parameters = {
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "webIdentityToken": "eyJ.secret.token",
        "SAMLAssertion": "PHNhbWw+",
        "policy": '{"Version":"2012-10-17"}',
    }
    return ctx


def test_file_sink_writes_one_filtered_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    host = PluginHost()
    assert not host.has_audit_sinks()
    sink = JsonLinesSink(AuditSettings(sink="file", path=path))
    host.register(sink)
    assert host.has_audit_sinks()
    auditor = Auditor(host, account_id="123456789012", region="eu-west-1")
    auditor.emit("AssumeRoleWithWebIdentity", _ctx(), AccessDenied("Not authorized"))
    sink.close()
    (event,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert event["eventName"] == "AssumeRoleWithWebIdentity"
    assert event["eventTime"] == "2027-01-15T08:00:00Z"
    assert (event["errorCode"], event["errorMessage"]) == ("AccessDenied", "Not authorized")
    assert event["requestParameters"] == {
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "policy": '{"Version":"2012-10-17"}',
    }
    assert event["responseElements"] is None and event["awsRegion"] == "eu-west-1"
    text = path.read_text()
    assert "secret.token" not in text and "PHNhbWw" not in text


def test_a_failing_sink_does_not_silence_the_others(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        @hookimpl
        def fedgate_audit_event(self, event: Mapping[str, Any]) -> None:
            raise RuntimeError("sink down")

    path = tmp_path / "audit.jsonl"
    host = PluginHost(builtins=[Broken()])
    sink = JsonLinesSink(AuditSettings(sink="file", path=path))
    host.register(sink)
    Auditor(host, account_id="123456789012", region="us-east-1").emit("GetCallerIdentity", _ctx(), None)
    sink.close()
    assert [json.loads(line)["eventName"] for line in path.read_text().splitlines()] == ["GetCallerIdentity"]
    assert "failed" in caplog.text


async def test_store_sink_appends_to_a_shared_stream(
    aiohttp_client: Any, redis_url: str, redis_prefix: str
) -> None:
    """With sink 'store', every call lands in the store's stream (on Redis: one for all replicas)."""
    from gateway.app import create_app
    from gateway.config import parse_config
    from gateway.store import RedisStore

    host = PluginHost()
    raw = {
        "account_id": "123456789012",
        "store": {"backend": "redis", "url": redis_url, "prefix": redis_prefix},
        "audit": {"sink": "store", "stream": "audit"},
    }
    config = parse_config(raw, provider_types=host.provider_types(), sections=host.config_sections())
    client = await aiohttp_client(create_app(config, host=host))
    for _ in range(3):
        response = await client.post("/", data={"Action": "GetCallerIdentity", "Version": "2011-06-15"})
        assert response.status == 403  # unsigned: MissingAuthenticationToken
    await client.close()  # shutdown drains the queue into the stream
    reader = RedisStore.from_url(redis_url, prefix=redis_prefix)
    try:
        events = [json.loads(fields["event"]) for _, fields in await reader.read_events("audit")]
    finally:
        await reader.close()
    assert [e["eventName"] for e in events] == ["GetCallerIdentity"] * 3
    assert {e["errorCode"] for e in events} == {"MissingAuthenticationToken"}
