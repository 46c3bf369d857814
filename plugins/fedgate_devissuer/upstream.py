"""The demo upstream: a tiny in-memory S3-style object API, so the demo's credentials reach a
proxied API with nothing else installed.

Enabled only by a ``dev_upstream`` section. It is served by fedgate itself under ``path``
(default ``/dev-upstream/s3``); ``config/demo.yaml`` declares an upstream whose ``target`` is that
URL, so a signed request to ``/demo-bucket/KEY`` is verified and decided by the proxy as for any
S3 upstream, and only an allowed one is forwarded here. It speaks enough S3 for the aws CLI and
boto3: GetObject, HeadObject, PutObject, DeleteObject and ListObjects(V2), path-style. Objects
live in memory (at most ``max_objects`` of at most ``max_object_bytes``) and die with the process.
It answers only requests the proxy forwarded: the upstream is declared ``auth: identity``, and
each request must carry the identity token this process signed (:func:`gateway.plugin.proxy_identity`);
a request sent to ``path`` directly, around the proxy and its policy decision, is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import final
from xml.sax.saxutils import escape

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.plugin import proxy_identity

__all__ = ["DemoObjects", "DevUpstreamSettings", "add_upstream_routes"]

_S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_XML = "<?xml version='1.0' encoding='UTF-8'?>"


class DevUpstreamSettings(BaseModel):
    """Settings of the ``dev_upstream`` section: the demo's in-memory object API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(default="/dev-upstream/s3", description="URL path the demo object API is served under.")
    buckets: list[str] = Field(default_factory=lambda: ["demo-bucket"], description="Buckets that exist.")
    seed: dict[str, str] = Field(
        default_factory=lambda: {"demo-bucket/hello.txt": "Hello from the fedgate demo upstream!\n"},
        description="Objects present at start, BUCKET/KEY to text.",
    )
    max_objects: int = Field(default=1000, ge=1, le=100_000, description="Most objects held.")
    max_object_bytes: int = Field(default=1 << 20, ge=1, le=64 << 20, description="Largest object accepted.")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/") or v.rstrip("/") == "" or "?" in v:
            raise ValueError("must be a path below / (e.g. /dev-upstream/s3)")
        return v.rstrip("/")


@final
@dataclass
class _Object:
    body: bytes
    content_type: str

    @property
    def etag(self) -> str:
        return '"' + hashlib.md5(self.body, usedforsecurity=False).hexdigest() + '"'


@final
class DemoObjects:
    """The objects, by bucket and key."""

    def __init__(self, settings: DevUpstreamSettings) -> None:
        self.settings = settings
        self._objects: dict[tuple[str, str], _Object] = {}
        for name, text in settings.seed.items():
            bucket, _, key = name.partition("/")
            self._objects[(bucket, key)] = _Object(text.encode(), "text/plain")

    def _error(self, status: int, code: str, message: str) -> web.Response:
        body = f"{_XML}<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        return web.Response(status=status, body=body.encode(), content_type="application/xml")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if proxy_identity(request) is None:
            return self._error(
                403,
                "AccessDenied",
                "The demo upstream answers only requests the proxy forwards (its upstream must be "
                "auth: identity); sign your request for the proxy's path instead",
            )
        bucket = request.match_info["bucket"]
        key = request.match_info.get("key", "")
        if bucket not in self.settings.buckets:
            return self._error(404, "NoSuchBucket", "The specified bucket does not exist")
        if not key:
            if request.method in ("GET", "HEAD"):
                return self._list(request, bucket)
            return self._error(405, "MethodNotAllowed", "Only listing is supported on a bucket")
        if request.method == "PUT":
            return await self._put(request, bucket, key)
        found = self._objects.get((bucket, key))
        if request.method == "DELETE":
            self._objects.pop((bucket, key), None)
            return web.Response(status=204)
        if found is None:
            return self._error(404, "NoSuchKey", "The specified key does not exist.")
        headers = {"ETag": found.etag, "Content-Type": found.content_type}
        if request.method == "HEAD":
            return web.Response(status=200, headers={**headers, "Content-Length": str(len(found.body))})
        return web.Response(status=200, body=found.body, headers=headers)

    async def _put(self, request: web.Request, bucket: str, key: str) -> web.Response:
        limit = self.settings.max_object_bytes
        if (request.content_length or 0) > limit:
            return self._error(400, "EntityTooLarge", f"The demo upstream keeps objects up to {limit} bytes")
        body = await request.content.read(limit + 1)
        if len(body) > limit:
            return self._error(400, "EntityTooLarge", f"The demo upstream keeps objects up to {limit} bytes")
        if (bucket, key) not in self._objects and len(self._objects) >= self.settings.max_objects:
            return self._error(503, "SlowDown", "The demo upstream is full")
        stored = _Object(body, request.headers.get("Content-Type", "binary/octet-stream"))
        self._objects[(bucket, key)] = stored
        return web.Response(status=200, headers={"ETag": stored.etag})

    def _list(self, request: web.Request, bucket: str) -> web.Response:
        prefix = request.query.get("prefix", "")
        v2 = request.query.get("list-type") == "2"
        keys = sorted(k for b, k in self._objects if b == bucket and k.startswith(prefix))
        contents = "".join(
            f"<Contents><Key>{escape(k)}</Key><Size>{len(self._objects[(bucket, k)].body)}</Size>"
            f"<ETag>{escape(self._objects[(bucket, k)].etag)}</ETag>"
            "<LastModified>2026-01-01T00:00:00.000Z</LastModified><StorageClass>STANDARD</StorageClass></Contents>"
            for k in keys
        )
        count = f"<KeyCount>{len(keys)}</KeyCount>" if v2 else ""
        body = (
            f"{_XML}<ListBucketResult xmlns='{_S3_NS}'><Name>{escape(bucket)}</Name>"
            f"<Prefix>{escape(prefix)}</Prefix>{count}<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
            f"{contents}</ListBucketResult>"
        )
        return web.Response(status=200, body=body.encode(), content_type="application/xml")


def add_upstream_routes(app: web.Application, settings: DevUpstreamSettings) -> None:
    """Serve the demo object API under ``settings.path``."""
    objects = DemoObjects(settings)
    for route in (
        f"{settings.path}/{{bucket}}",
        f"{settings.path}/{{bucket}}/",
        f"{settings.path}/{{bucket}}/{{key:.+}}",
    ):
        for method in ("GET", "HEAD", "PUT", "DELETE"):
            app.router.add_route(method, route, objects.handle)
