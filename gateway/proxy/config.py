"""Configuration models of the reverse proxy: upstreams, their mappings and auth modes.

Imported by :mod:`gateway.config` (``GatewayConfig.upstreams`` and ``GatewayConfig.proxy``); kept
here so the proxy's settings live beside the code that reads them. Secrets (the upstream's own
credentials, the identity-token signing key) are given by reference and resolved at start-up.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.net import Networks
from gateway.secretref import SecretRef

__all__ = [
    "ForwardedHeader",
    "ProxySettings",
    "RouteSettings",
    "UpstreamCredentials",
    "UpstreamMatch",
    "UpstreamSettings",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")
_HOST_RE = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\Z")
_HEADER_RE = re.compile(r"^[A-Za-z0-9-]{1,64}\Z")
_SCOPE_RE = re.compile(r"^[a-z0-9-]{1,64}\Z")
_METHODS = frozenset(("*", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
_SOURCES = ("path.", "query.", "header.")
ForwardedHeader = Literal["X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UpstreamMatch(_Model):
    """Which requests an upstream takes: by ``Host`` and/or decoded path prefix (both must match)."""

    hosts: list[str] = Field(
        default_factory=list,
        description="Host names (port ignored, case-insensitive); '*.example.com' matches any one or more "
        "labels before example.com. Empty: any host.",
    )
    path_prefix: str = Field(
        default="/",
        description="Decoded path prefix, matched on whole segments (/api takes /api and /api/x, not /apix).",
    )

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        out = []
        for host in v:
            host = host.lower()
            if not _HOST_RE.match(host) or len(host) > 253:
                raise ValueError(f"{host[:64]!r} is not a host name or *.suffix pattern")
            out.append(host)
        return out

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v.startswith("/") or "%" in v or "//" in v or "/./" in f"{v}/" or "/../" in f"{v}/":
            raise ValueError("must be a plain decoded path starting with / (no %, //, . or .. segments)")
        return v.rstrip("/") or "/"


class UpstreamCredentials(_Model):
    """The upstream's own SigV4 credentials, used to re-sign forwarded requests (``auth: resign``)."""

    access_key_id: SecretRef = Field(description="Access key id of the upstream credentials.")
    secret_access_key: SecretRef = Field(description="Secret access key of the upstream credentials.")
    session_token: SecretRef | None = Field(
        default=None, description="Session token, for temporary credentials."
    )


class RouteSettings(_Model):
    """One entry of a user-defined route table (``mapping: routes``).

    ``path`` is a template of literal segments and ``{name}`` placeholders; a last ``{name+}``
    takes the rest of the path. ``resource`` may use ``{name}`` placeholders too, plus
    ``{region}``, ``{account}`` and ``{method}``.
    """

    method: str = Field(default="*", description="HTTP method, or * for any.")
    path: str = Field(description="Path template relative to the upstream's prefix, e.g. /orders/{id}.")
    action: str = Field(description="The IAM action to authorize, e.g. orders:GetOrder.")
    resource: str = Field(
        default="*", description="Resource template, e.g. arn:aws:orders:{region}:{account}:order/{id}."
    )
    conditions: dict[str, str] = Field(
        default_factory=dict,
        description="Condition keys to their source: path.NAME, query.NAME or header.NAME.",
    )

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        if v.upper() not in _METHODS:
            raise ValueError(f"must be one of {', '.join(sorted(_METHODS))}")
        return v.upper()

    @field_validator("action")
    @classmethod
    def _action(cls, v: str) -> str:
        service, colon, name = v.partition(":")
        if not colon or not service or not name or not re.fullmatch(r"[A-Za-z0-9_.-]+", service + name):
            raise ValueError("must be service:Action")
        return v

    @field_validator("conditions")
    @classmethod
    def _conditions(cls, v: dict[str, str]) -> dict[str, str]:
        for key, source in v.items():
            if ":" not in key or not source.startswith(_SOURCES) or source.split(".", 1)[1] == "":
                raise ValueError(f"{key!r}: keys are prefix:Name and sources path.X, query.X or header.X")
        return v

    @model_validator(mode="after")
    def _template(self) -> RouteSettings:
        if not self.path.startswith("/"):
            raise ValueError("path must start with /")
        names = re.findall(r"\{([^{}]*)\}", self.path)
        for i, segment in enumerate(self.path.strip("/").split("/") if self.path != "/" else []):
            if "{" in segment and not re.fullmatch(r"\{[A-Za-z_][A-Za-z0-9_]*\+?\}", segment):
                raise ValueError(f"path segment {segment!r}: a placeholder must be a whole segment")
            if segment.endswith("+}") and i != len(self.path.strip("/").split("/")) - 1:
                raise ValueError("a greedy {name+} placeholder must be the last segment")
        known = {n.rstrip("+") for n in names} | {"region", "account", "method"}
        for name in re.findall(r"\{([^{}]*)\}", self.resource):
            if name not in known:
                raise ValueError(f"resource placeholder {{{name}}} is not a path placeholder")
        for key, source in self.conditions.items():
            kind, _, name = source.partition(".")
            if kind == "path" and name not in known:
                raise ValueError(f"conditions.{key}: {source} is not a path placeholder")
        return self


class UpstreamSettings(_Model):
    """An upstream the proxy forwards to, with how its requests are authorized and authenticated."""

    name: str = Field(description="Name used in logs and audit events (letters, digits, _.-).")
    match: UpstreamMatch = Field(description="Which requests go to this upstream.")
    target: str = Field(description="Base URL of the upstream (http or https); its path is prepended.")
    service: str = Field(description="SigV4 service name clients sign for (e.g. s3, execute-api).")
    region: str | None = Field(
        default=None, description="SigV4 region clients sign for; default: top-level region."
    )
    mapping: Literal["s3", "api-gateway", "routes"] = Field(
        description="How a request becomes an IAM action and resource."
    )
    strip_prefix: bool = Field(
        default=False, description="Remove match.path_prefix from the path before mapping and forwarding."
    )
    virtual_host_suffix: str | None = Field(
        default=None,
        description="s3: host suffix for virtual-hosted buckets (BUCKET.suffix); forwarded path-style.",
    )
    api_id: str = Field(default="api", description="api-gateway: the API id in execute-api ARNs.")
    stage: str = Field(default="prod", description="api-gateway: the stage in execute-api ARNs.")
    routes: list[RouteSettings] = Field(
        default_factory=list, description="routes: the route table; a request matching none is denied."
    )
    auth: Literal["resign", "identity", "none"] = Field(
        description="How fedgate authenticates to the upstream: resign (SigV4 with credentials), identity "
        "(a signed JWT naming the principal), none."
    )
    credentials: UpstreamCredentials | None = Field(
        default=None, description="resign: the upstream's own credentials."
    )
    upstream_service: str | None = Field(default=None, description="resign: SigV4 service; default: service.")
    upstream_region: str | None = Field(default=None, description="resign: SigV4 region; default: region.")
    identity_header: str = Field(
        default="X-Fedgate-Identity", description="identity: the header carrying the signed JWT."
    )
    connect_timeout: float = Field(
        default=5.0, gt=0, le=300, description="Seconds to connect to the upstream."
    )
    read_timeout: float = Field(
        default=60.0, gt=0, le=3600, description="Seconds to wait for each read from the upstream."
    )
    total_timeout: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="Seconds a proxied request may take in all, from connecting to the last byte of the "
        "response, so an upstream trickling within read_timeout cannot hold it; raise it for large "
        "downloads. Not applied to WebSocket relays.",
    )
    max_connections: int = Field(
        default=100,
        ge=1,
        le=10000,
        description="Pooled keep-alive connections to the upstream (idle ones close after 15 s); "
        "requests beyond them wait for one, up to connect_timeout.",
    )
    websocket: bool = Field(default=False, description="Pass WebSocket upgrades through after authorization.")
    allow_sigv2: bool = Field(
        default=False,
        description="s3: accept Signature Version 2 (the 'AWS key:signature' header and AWSAccessKeyId "
        "presigned URLs, with the session token as x-amz-security-token), still the default of some "
        "clients (aws CLI v1 s3 presign, s3cmd signurl). SigV2 signs no body and uses HMAC-SHA1. Off: "
        "such requests are refused with InvalidRequest saying how to ask the client for SigV4.",
    )
    forwarded_headers: list[ForwardedHeader] | None = Field(
        default=None,
        description="The forwarding headers fedgate sets on requests to this upstream (any client-sent "
        "ones are always stripped): X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto. Default: "
        "X-Forwarded-For and X-Forwarded-Proto with auth resign, since SigV4-verifying stores (SeaweedFS "
        "is one) check the signature against X-Forwarded-Host instead of the Host fedgate signed; all "
        "three otherwise. [] sends none.",
    )
    max_buffered_body: int = Field(
        default=10 * 1024 * 1024,
        ge=0,
        description="Largest body buffered to check a signature that covers it without x-amz-content-sha256.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("must be 1-64 letters, digits and _.-")
        return v

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("must be an http(s) URL without query or fragment")
        if "%" in parts.path or "/./" in f"{parts.path}/" or "/../" in f"{parts.path}/":
            raise ValueError("the target path must be plain (no %, . or .. segments)")
        return v.rstrip("/")

    @field_validator("service", "upstream_service", "region", "upstream_region")
    @classmethod
    def _scope(cls, v: str | None) -> str | None:
        if v is not None and not _SCOPE_RE.match(v):
            raise ValueError("must be 1-64 lowercase letters, digits and -")
        return v

    @field_validator("identity_header")
    @classmethod
    def _header(cls, v: str) -> str:
        if not _HEADER_RE.match(v):
            raise ValueError("must be a header name")
        return v

    @field_validator("virtual_host_suffix")
    @classmethod
    def _suffix(cls, v: str | None) -> str | None:
        if v is not None and (v.startswith("*") or not _HOST_RE.match(v.lower())):
            raise ValueError("must be a host name")
        return v.lower() if v is not None else None

    @model_validator(mode="after")
    def _consistent(self) -> UpstreamSettings:
        if self.auth == "resign" and self.credentials is None:
            raise ValueError("credentials are required when auth is resign")
        if self.mapping == "routes" and not self.routes:
            raise ValueError("routes must list at least one route when mapping is routes")
        if self.allow_sigv2 and self.mapping != "s3":
            raise ValueError("allow_sigv2 is for s3 mappings only")
        if self.strip_prefix and self.match.path_prefix == "/":
            raise ValueError("strip_prefix needs a match.path_prefix other than /")
        return self


class ProxySettings(_Model):
    """Settings shared by every upstream."""

    trusted_proxies: Networks = Field(
        default_factory=list,
        description="Networks (CIDR) of proxies in front of fedgate whose X-Forwarded-For is believed for "
        "aws:SourceIp and the audit trail, on every endpoint. List only proxies: a client inside a "
        "listed network could write its own X-Forwarded-For.",
    )
    identity_issuer: str = Field(default="fedgate", description="identity: the iss claim of identity tokens.")
    identity_ttl_seconds: int = Field(
        default=60, ge=5, le=3600, description="identity: lifetime of an identity token."
    )
    identity_signing_key: SecretRef | None = Field(
        default=None,
        description="identity: PEM private key (EC P-256) signing identity tokens. Omitted: a random key per "
        "process (workers of one `serve --workers` share the parent's).",
    )
