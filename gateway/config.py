"""Configuration: frozen, validated pydantic models and :func:`parse_config`.

The whole file is validated once at start-up. Any unknown key or bad value is refused with a
:class:`~gateway.errors.ConfigError` whose message names the offending path, for example
``roles[2].trust_policy.Statement[0].Effect: must be "Allow" or "Deny"``. Secrets are given by
reference (``{env: NAME}`` or ``{file: PATH}``), resolved at load time, held as ``SecretStr`` and
never logged.

Identity providers and some top-level sections belong to plugins: each plugin brings the model for
its own settings through the ``fedgate_add_provider_types`` and ``fedgate_add_config_sections``
hooks; :func:`gateway.startup.load` loads the plugins and then calls :func:`parse_config`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.arns import role_arn
from gateway.configpath import CONFIG_DIR, ConfigPath, relative_to_config
from gateway.errors import ConfigError, MalformedPolicyDocument
from gateway.opsconfig import AccessLogSettings, MetricsSettings, TlsSettings, TracingSettings
from gateway.proxy.config import ProxySettings, UpstreamSettings
from gateway.secretref import SecretRef

__all__ = [
    "AccessKeySettings",
    "AccessLogSettings",
    "AuditSettings",
    "ClusterSettings",
    "DatabaseSettings",
    "GatewayConfig",
    "GroupSettings",
    "InlinePolicy",
    "KeyRingSettings",
    "KeySettings",
    "ListenSettings",
    "ManagedPolicy",
    "MetricsSettings",
    "ProviderSettings",
    "ProxySettings",
    "RoleSettings",
    "SecretRef",
    "SentinelSettings",
    "StoreSettings",
    "TlsSettings",
    "TracingSettings",
    "UpstreamSettings",
    "UserSettings",
    "format_validation_error",
    "parse_config",
    "read_yaml",
]

_ACCOUNT_RE = re.compile(r"^\d{12}\Z")
_ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}\Z")
_PATH_RE = re.compile(r"^/([\x21-\x7e]*/)?\Z")
_POLICY_NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}\Z")
_POLICY_MARK = "\x00policy\x00"
_ACCESS_KEY_ID_RE = re.compile(r"^AKIA[A-Z0-9]{16}\Z")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListenSettings(_Model):
    """Where ``fedgate serve`` listens, and how long it waits for clients."""

    host: str = Field(default="127.0.0.1", description="Address to bind.")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port (0 picks a free one).")
    header_timeout: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description="Seconds a client may take to send a request line and headers, from their first byte; "
        "a slower one (slow loris) is disconnected.",
    )
    body_read_timeout: float = Field(
        default=20.0,
        gt=0,
        le=3600,
        description="Seconds each read of a request body may wait for the client's next bytes; a client "
        "that stalls longer is answered RequestTimeout and disconnected.",
    )
    body_timeout: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="Seconds, in all, the reads of one request body may wait for the client (time spent "
        "waiting on an upstream does not count); raise it for large uploads over slow links.",
    )
    keepalive_timeout: float = Field(
        default=75.0,
        gt=0,
        le=3600,
        description="Seconds an idle keep-alive connection stays open; keep it above the idle timeout of "
        "any load balancer in front.",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Open client connections per process (each worker has its own); one more is answered "
        "503 with Retry-After and closed, so idle or slow clients cannot use up the file descriptors.",
    )
    tls: TlsSettings | None = Field(
        default=None, description="Serve HTTPS with this certificate and key. Omitted: plain HTTP."
    )
    event_loop: Literal["asyncio", "uvloop"] = Field(
        default="asyncio",
        description="The event loop `fedgate serve` runs on: asyncio's own, or uvloop (pip install "
        "'fedgate[uvloop]'). Measured on the proxy, uvloop saved no CPU per request and made the p99 at "
        "128 concurrent clients several times worse, so asyncio is the default.",
    )


def _host_port(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if (
        not sep
        or not host
        or not port.isdigit()
        or not 0 < int(port) < 65536
        or any(c in host for c in "/@ ")
    ):
        raise ValueError("expected HOST:PORT, e.g. 10.0.0.5:26379")
    return text


HostPort = Annotated[str, AfterValidator(_host_port)]


class SentinelSettings(_Model):
    """Redis Sentinel: the store is the primary the sentinels name, found again after a failover."""

    addresses: list[HostPort] = Field(
        min_length=1, description="Sentinels as HOST:PORT; any one that answers names the primary."
    )
    service: str = Field(
        min_length=1,
        description="The name the sentinels monitor the primary under (`sentinel monitor NAME ...`).",
    )
    db: int = Field(default=0, ge=0, le=15, description="Database number on the primary.")
    username: str | None = Field(default=None, description="ACL user on the primary and replicas.")
    password: SecretRef | None = Field(
        default=None, description="Password of the primary and replicas (their requirepass), by reference."
    )
    sentinel_password: SecretRef | None = Field(
        default=None, description="Password of the sentinels themselves, if they require one, by reference."
    )


class ClusterSettings(_Model):
    """Redis Cluster: every key of one deployment lives in one hash slot (see ``store.prefix``)."""

    nodes: list[HostPort] = Field(
        min_length=1, description="Startup nodes as HOST:PORT; the client learns the others from them."
    )
    username: str | None = Field(default=None, description="ACL user on the cluster's nodes.")
    password: SecretRef | None = Field(
        default=None, description="Password of the cluster's nodes (their requirepass), by reference."
    )


class StoreSettings(_Model):
    """Where shared state lives: ``memory`` (one process, the default) or ``redis``: one server
    (``url``), a primary found through Redis Sentinel (``sentinel``) or a Redis Cluster (``cluster``)."""

    backend: Literal["memory", "redis"] = Field(default="memory", description="Store backend.")
    url: str | SecretRef | None = Field(
        default=None,
        description="Redis URL (redis://, rediss://, unix://) of one server. Defaults to $REDIS_URL, then "
        "redis://127.0.0.1:6379/0, unless sentinel or cluster is given.",
    )
    sentinel: SentinelSettings | None = Field(
        default=None, description="Find the primary through Redis Sentinel instead of a fixed url."
    )
    cluster: ClusterSettings | None = Field(default=None, description="Use a Redis Cluster instead of a url.")
    prefix: str = Field(
        default="fedgate:",
        min_length=1,
        max_length=128,
        description="Prefix of every Redis key, as a hash tag: a key is {PREFIX}:NAME (a trailing colon is "
        "dropped), so every key of one deployment is in one Redis Cluster slot.",
    )
    operation_timeout: float = Field(
        default=0.25,
        gt=0,
        le=30,
        description="Deadline of one Redis operation, in seconds; a request that needs a store which "
        "does not answer in time is refused with 503 ServiceUnavailable.",
    )
    max_connections: int = Field(
        default=16,
        ge=1,
        le=10_000,
        description="Redis connections per process; operations beyond them wait for a free one "
        "(within operation_timeout).",
    )
    breaker_failures: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Consecutive failed Redis operations after which the circuit breaker opens: "
        "operations then fail at once, without waiting for the server.",
    )
    breaker_cooldown: float = Field(
        default=1.0,
        gt=0,
        le=300,
        description="Seconds an open circuit breaker waits before letting one operation through to "
        "test the server again (it closes when that succeeds).",
    )

    @field_validator("prefix")
    @classmethod
    def _prefix_is_a_hash_tag(cls, prefix: str) -> str:
        if "{" in prefix or "}" in prefix or not prefix.strip(":"):
            raise ValueError("must not contain { or } (fedgate makes it the hash tag) and not be only colons")
        return prefix

    @model_validator(mode="after")
    def _one_topology(self) -> StoreSettings:
        given = [name for name in ("url", "sentinel", "cluster") if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of url, sentinel or cluster, not {' and '.join(given)}")
        if self.backend == "memory" and given:
            raise ValueError(f"{given[0]} needs backend: redis")
        return self

    def redis_url(self) -> str:
        """The Redis URL to connect to, resolved from the setting, ``$REDIS_URL`` or the default."""
        if isinstance(self.url, SecretRef):
            return self.url.resolve().get_secret_value()
        return self.url or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


class DatabaseSettings(_Model):
    """The IAM database: durable IAM entities and session revocations, shared by every replica."""

    url: str | SecretRef | None = Field(
        default=None,
        description="sqlite:///PATH (a file; a relative PATH is relative to the configuration file) or "
        "postgresql://USER[:PASSWORD]@HOST[:PORT]/DB for replicas; by value or by reference. Omitted: an "
        "in-memory SQLite database that dies with the process (one process only).",
    )
    migrate_on_start: bool = Field(
        default=True,
        description="Apply pending schema migrations at start-up; when false, start-up refuses a schema "
        "that is not current (run `fedgate db upgrade`).",
    )
    pool_size: int = Field(default=5, ge=1, le=100, description="PostgreSQL connections kept per process.")
    max_overflow: int = Field(
        default=5, ge=0, le=100, description="PostgreSQL connections opened beyond pool_size under load."
    )
    connect_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="How long to wait for a connection before giving up."
    )
    statement_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="How long one statement (or a SQLite lock) may take."
    )
    poll_interval_seconds: float = Field(
        default=0.5,
        ge=0.05,
        le=60,
        description="How often each replica checks the database's revision (the safety net beside "
        "PostgreSQL's notifications; the only signal on SQLite).",
    )
    max_staleness_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="How long a replica may go without confirming its revocation state against the "
        "database before it refuses signed requests with ServiceUnavailable (fail closed).",
    )
    listen: bool = Field(
        default=True, description="PostgreSQL: learn of changes at once through LISTEN/NOTIFY."
    )

    @model_validator(mode="after")
    def _staleness_above_interval(self) -> DatabaseSettings:
        if self.max_staleness_seconds < 2 * self.poll_interval_seconds:
            raise ValueError(
                "max_staleness_seconds must be at least twice poll_interval_seconds, or one slow poll "
                "would refuse every signed request"
            )
        return self

    @field_validator("url")
    @classmethod
    def _sqlite_relative_to_config(
        cls, v: str | SecretRef | None, info: ValidationInfo
    ) -> str | SecretRef | None:
        # sqlite:///PATH with a relative PATH names a file beside the configuration (an absolute
        # one is sqlite:////PATH); the in-memory forms are left alone.
        if isinstance(v, str) and v.startswith("sqlite") and ":///" in v:
            head, _, rest = v.partition(":///")
            path, sep, query = rest.partition("?")
            if path and path != ":memory:" and not path.startswith("/"):
                joined = relative_to_config(path, info)
                if joined is not path:
                    return f"{head}:///{joined}{sep}{query}"
        return v

    def resolved_url(self) -> str | None:
        """The URL to connect to (``None``: in memory). Raises ``ValueError`` naming the reference."""
        if isinstance(self.url, SecretRef):
            return self.url.resolve().get_secret_value()
        return self.url


class KeySettings(_Model):
    """One session-token sealing key."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,16}$", description="Key id written into each token.")
    secret: SecretRef = Field(description="At least 32 bytes of key material (any text; it is hashed).")


class KeyRingSettings(_Model):
    """Keys that seal session tokens. Tokens are sealed with ``active``; any listed key opens one."""

    active: str = Field(description="Id of the key new tokens are sealed with.")
    keys: list[KeySettings] = Field(min_length=1, description="All keys accepted for unsealing.")

    @model_validator(mode="after")
    def _active_listed(self) -> KeyRingSettings:
        ids = [k.id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise ValueError("key ids must be unique")
        if self.active not in ids:
            raise ValueError(f"active key {self.active!r} is not among keys")
        return self


class AuditSettings(_Model):
    """Where the built-in audit sink writes events."""

    sink: Literal["stdout", "file", "store", "none"] = Field(
        default="stdout",
        description="stdout or file (JSON lines), store (a stream in the store, e.g. a Redis stream "
        "all replicas append to), or none.",
    )
    path: ConfigPath | None = Field(
        default=None, description="File to append to when sink is file (relative to the configuration file)."
    )
    stream: str = Field(
        default="audit", min_length=1, max_length=64, description="Stream name when sink is store."
    )
    max_events: int = Field(
        default=100_000, ge=100, le=10_000_000, description="About how many events the stream keeps."
    )
    batch_size: int = Field(
        default=500,
        ge=1,
        le=2_000,
        description="store: most events appended in one round trip (one store operation, so within "
        "store.operation_timeout: 500 take a few milliseconds).",
    )
    queue_size: int = Field(
        default=20_000,
        ge=100,
        le=1_000_000,
        description="store: events held in memory for the store. When it falls behind, the newest "
        "beyond half of this are spilled to spill_path (while it is down, all but the batch being "
        "retried); the rest absorbs arrivals during one append attempt. Events arriving at a full "
        "queue are dropped (counted).",
    )
    spill_path: ConfigPath = Field(
        default=Path("fedgate-audit-spill.jsonl"),
        validate_default=True,
        description="store: JSON-lines file (mode 0600, relative to the configuration file) for events "
        "the store could not take: outage, overload, shutdown. Re-appended to the stream, then "
        "emptied, once the store answers again; workers of one serve may share it.",
    )
    spill_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=4096,
        le=1 << 40,
        description="store: size limit of spill_path. When it is full, newer events are dropped "
        "(counted, logged) and the file keeps the oldest.",
    )
    append_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="store: longest wait for one batch append, whatever the store (on Redis, "
        "store.operation_timeout is shorter and comes first); a slower one counts as failed.",
    )
    retry_max_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="store: after a failed append, retries back off from 0.05 s, doubling up to this.",
    )
    shutdown_timeout_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="store: at shutdown, longest time spent appending what is queued (in total, not "
        "per event); the rest is spilled to spill_path.",
    )

    @model_validator(mode="after")
    def _path_for_file(self) -> AuditSettings:
        if self.sink == "file" and self.path is None:
            raise ValueError("path is required when sink is file")
        return self


class ProviderSettings(_Model):
    """Base of every identity-provider model; plugins subclass it for their ``type``."""

    type: str = Field(description="Provider kind, e.g. oidc; selects the plugin that validates the rest.")


class ManagedPolicy(_Model):
    """A named permission policy (``arn:aws:iam::ACCOUNT:policy/NAME``)."""

    name: str = Field(description="Policy name, unique in the account.")
    path: str = Field(default="/", description="IAM path of the policy.")
    description: str = Field(default="", max_length=1000, description="Free text, up to 1000 characters.")
    document: dict[str, Any] = Field(description="The IAM JSON policy document.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _POLICY_NAME_RE.match(v):
            raise ValueError("must be 1-128 characters of letters, digits and +=,.@_-")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return _check_iam_path(v)

    @field_validator("document")
    @classmethod
    def _document(cls, v: dict[str, Any]) -> dict[str, Any]:
        _check_policy(v, "identity")
        return v


class InlinePolicy(_Model):
    """A permission policy embedded in a role."""

    name: str = Field(description="Policy name, unique within the role.")
    document: dict[str, Any] = Field(description="The IAM JSON policy document.")

    @field_validator("document")
    @classmethod
    def _document(cls, v: dict[str, Any]) -> dict[str, Any]:
        _check_policy(v, "identity")
        return v


def _check_tags(v: dict[str, str]) -> dict[str, str]:
    if len(v) > 50:
        raise ValueError("at most 50 tags")
    for key, value in v.items():
        if not 1 <= len(key) <= 128 or len(value) > 256:
            raise ValueError(f"tag {key[:128]!r}: keys are 1-128 and values 0-256 characters")
    return v


class RoleSettings(_Model):
    """A role callers can assume."""

    name: str = Field(description="Role name (1-64 of letters, digits and +=,.@_-).")
    path: str = Field(default="/", description="IAM path; the ARN is arn:aws:iam::ACCOUNT:role{path}{name}.")
    description: str = Field(
        default="",
        max_length=1000,
        description="Free text, up to 1000 characters; the role chooser shows it.",
    )
    trust_policy: dict[str, Any] = Field(description="Who may assume the role (AWS JSON trust policy).")
    policies: list[InlinePolicy] = Field(default_factory=list, description="Inline permission policies.")
    managed_policies: list[str] = Field(
        default_factory=list, description="Names of top-level policies attached to the role."
    )
    max_session_duration: int = Field(
        default=3600, ge=3600, le=43200, description="Longest session in seconds (3600-43200)."
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="Role tags (aws:PrincipalTag when no session tag overrides)."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _ROLE_NAME_RE.match(v):
            raise ValueError("must be 1-64 characters of letters, digits and +=,.@_-")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return _check_iam_path(v)

    @field_validator("trust_policy")
    @classmethod
    def _trust(cls, v: dict[str, Any]) -> dict[str, Any]:
        _check_policy(v, "trust")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_tags(v)


class AccessKeySettings(_Model):
    """A long-term access key of a configured user; its secret comes by reference."""

    id: str = Field(description="The access key id: AKIA and 16 capital letters or digits.")
    secret: SecretRef = Field(description="The secret access key (16-128 characters), by reference.")
    status: Literal["Active", "Inactive"] = Field(
        default="Active", description="Inactive keys are refused (InvalidClientTokenId)."
    )

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ACCESS_KEY_ID_RE.match(v):
            raise ValueError("must be AKIA and 16 capital letters or digits")
        return v


class GroupSettings(_Model):
    """An IAM group: its policies apply to every user in it."""

    name: str = Field(description="Group name (1-128 of letters, digits and +=,.@_-).")
    path: str = Field(default="/", description="IAM path; the ARN is arn:aws:iam::ACCOUNT:group{path}{name}.")
    policies: list[InlinePolicy] = Field(default_factory=list, description="Inline permission policies.")
    managed_policies: list[str] = Field(
        default_factory=list, description="Names of top-level policies attached to the group."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _POLICY_NAME_RE.match(v):
            raise ValueError("must be 1-128 characters of letters, digits and +=,.@_-")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return _check_iam_path(v)


class UserSettings(_Model):
    """An IAM user that signs requests with long-term access keys (the bootstrap administrator)."""

    name: str = Field(description="User name (1-64 of letters, digits and +=,.@_-).")
    path: str = Field(default="/", description="IAM path; the ARN is arn:aws:iam::ACCOUNT:user{path}{name}.")
    groups: list[str] = Field(default_factory=list, description="Names of top-level groups the user is in.")
    policies: list[InlinePolicy] = Field(default_factory=list, description="Inline permission policies.")
    managed_policies: list[str] = Field(
        default_factory=list, description="Names of top-level policies attached to the user."
    )
    permissions_boundary: str | None = Field(
        default=None, description="Name of the top-level policy bounding the user's permissions."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="User tags (aws:PrincipalTag).")
    access_keys: list[AccessKeySettings] = Field(
        default_factory=list, max_length=2, description="At most two long-term access keys."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _ROLE_NAME_RE.match(v):
            raise ValueError("must be 1-64 characters of letters, digits and +=,.@_-")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return _check_iam_path(v)

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_tags(v)


class GatewayConfig(_Model):
    """The whole configuration file."""

    account_id: str = Field(description="The 12-digit account id that owns roles and providers.")
    region: str = Field(default="us-east-1", description="Region the gateway answers for (SigV4 scope).")
    listen: ListenSettings = Field(default_factory=ListenSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe log level written to stderr (JSON lines)."
    )
    store: StoreSettings = Field(default_factory=StoreSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    keyring: KeyRingSettings | None = Field(
        default=None,
        description="Session-token keys. Omitted: one random key per process (tokens die with it).",
    )
    clock_skew_seconds: int = Field(default=60, ge=0, le=300, description="Leeway for token times.")
    providers: list[ProviderSettings] = Field(default_factory=list, description="Identity providers.")
    policies: list[ManagedPolicy] = Field(default_factory=list, description="Managed permission policies.")
    roles: list[RoleSettings] = Field(default_factory=list, description="Roles that can be assumed.")
    groups: list[GroupSettings] = Field(
        default_factory=list, description="IAM groups (read-only through the IAM API)."
    )
    users: list[UserSettings] = Field(
        default_factory=list,
        description="IAM users with long-term access keys (read-only through the IAM API): the "
        "bootstrap administrator, or service users kept in git.",
    )
    audit: AuditSettings = Field(
        default_factory=AuditSettings, description="The audit trail: one event per decided request."
    )
    proxy: ProxySettings = Field(default_factory=ProxySettings, description="Reverse-proxy settings.")
    upstreams: list[UpstreamSettings] = Field(
        default_factory=list, description="Upstreams the reverse proxy forwards signed requests to."
    )
    metrics: MetricsSettings = Field(
        default_factory=MetricsSettings, description="GET /metrics (Prometheus text format)."
    )
    tracing: TracingSettings = Field(default_factory=TracingSettings, description="OpenTelemetry tracing.")
    access_log: AccessLogSettings = Field(
        default_factory=AccessLogSettings, description="The HTTP access log (JSON lines)."
    )
    disabled_plugins: list[str] = Field(default_factory=list, description="Plugin names not to load.")
    sections: dict[str, BaseModel] = Field(default_factory=dict, description="Plugin-owned sections.")

    @field_validator("account_id")
    @classmethod
    def _account(cls, v: str) -> str:
        if not _ACCOUNT_RE.match(v):
            raise ValueError("must be exactly 12 digits (quote it in YAML)")
        return v

    @model_validator(mode="after")
    def _unique_names(self) -> GatewayConfig:
        for what, names in (
            ("roles", [r.name for r in self.roles]),
            ("policies", [p.name for p in self.policies]),
            ("groups", [g.name for g in self.groups]),
            ("users", [u.name for u in self.users]),
            ("upstreams", [u.name for u in self.upstreams]),
        ):
            seen: set[str] = set()
            for i, name in enumerate(names):
                if name.lower() in seen:
                    raise ValueError(f"{what}[{i}].name: duplicate name {name!r}")
                seen.add(name.lower())
        known = {p.name for p in self.policies}
        for i, role in enumerate(self.roles):
            for j, ref in enumerate(role.managed_policies):
                if ref not in known:
                    raise ValueError(f"roles[{i}].managed_policies[{j}]: no policy named {ref!r}")
        for i, group in enumerate(self.groups):
            for j, ref in enumerate(group.managed_policies):
                if ref not in known:
                    raise ValueError(f"groups[{i}].managed_policies[{j}]: no policy named {ref!r}")
        groups = {g.name for g in self.groups}
        key_ids: set[str] = set()
        for i, user in enumerate(self.users):
            for j, ref in enumerate(user.managed_policies):
                if ref not in known:
                    raise ValueError(f"users[{i}].managed_policies[{j}]: no policy named {ref!r}")
            boundary = user.permissions_boundary
            if boundary is not None and boundary not in known:
                raise ValueError(f"users[{i}].permissions_boundary: no policy named {boundary!r}")
            for j, ref in enumerate(user.groups):
                if ref not in groups:
                    raise ValueError(f"users[{i}].groups[{j}]: no group named {ref!r}")
            for j, key in enumerate(user.access_keys):
                if key.id in key_ids:
                    raise ValueError(f"users[{i}].access_keys[{j}].id: {key.id} is given twice")
                key_ids.add(key.id)
        return self

    def role_arn(self, role: RoleSettings) -> str:
        """The ARN of ``role`` in this account."""
        return role_arn(self.account_id, role.path, role.name)


def _check_iam_path(path: str) -> str:
    if not _PATH_RE.match(path) or len(path) > 512:
        raise ValueError("must start and end with /")
    return path


def _check_policy(document: dict[str, Any], kind: str) -> None:
    from gateway.policy import parse_policy  # the engine validates; config only reports

    try:
        parse_policy(document, kind=kind)  # type: ignore[arg-type]
    except MalformedPolicyDocument as exc:
        # The marker tells format_validation_error to continue the key path into the document.
        raise ValueError(_POLICY_MARK + exc.message) from None


def format_validation_error(exc: pydantic.ValidationError, prefix: str = "") -> str:
    """Render pydantic's errors as ``path.to[2].key: message`` lines."""
    lines = []
    for err in exc.errors(include_url=False):
        path = prefix
        for part in err["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                path += f".{part}" if path else str(part)
        msg = str(err["msg"]).removeprefix("Value error, ")
        if msg.startswith(_POLICY_MARK):
            # The policy engine names the path inside the document ("Statement[0].Effect: ...");
            # whole-document problems start with "Policy:".
            inner = msg.removeprefix(_POLICY_MARK)
            lines.append(f"{path}: {inner[8:]}" if inner.startswith("Policy: ") else f"{path}.{inner}")
        elif msg.startswith(("roles[", "policies[", "groups[", "users[")):
            lines.append(msg)
        else:
            lines.append(f"{path}: {msg}" if path else msg)
    return "\n".join(lines)


def parse_config(
    raw: Mapping[str, Any],
    *,
    provider_types: Mapping[str, type[ProviderSettings]],
    sections: Mapping[str, type[BaseModel]],
    config_dir: Path | None = None,
) -> GatewayConfig:
    """Validate ``raw`` (a parsed YAML mapping) into a :class:`GatewayConfig`.

    ``provider_types`` and ``sections`` come from the plugins. Relative file paths (and a relative
    ``sqlite:///`` database) resolve against ``config_dir``, the configuration file's directory
    (:mod:`gateway.configpath`); without it they stay as written. Raises :class:`ConfigError`
    listing every problem found, each naming its path.
    """
    context = {CONFIG_DIR: config_dir} if config_dir is not None else None
    if not isinstance(raw, Mapping):
        raise ConfigError("the configuration must be a mapping at the top level")
    core = dict(raw)
    errors: list[str] = []
    section_values: dict[str, BaseModel] = {}
    for key, model in sections.items():
        if key in GatewayConfig.model_fields:
            raise ConfigError(f"plugin section {key!r} shadows a core configuration key")
        if key in core:
            try:
                section_values[key] = model.model_validate(core.pop(key), context=context)
            except pydantic.ValidationError as exc:
                errors.append(format_validation_error(exc, key))
    if "sections" in core:
        errors.append("sections: not a configuration key (plugin sections are top-level keys)")
        core.pop("sections")

    providers: list[ProviderSettings] = []
    raw_providers = core.pop("providers", [])
    if not isinstance(raw_providers, Sequence) or isinstance(raw_providers, str):
        errors.append("providers: must be a list")
        raw_providers = []
    for i, item in enumerate(raw_providers):
        where = f"providers[{i}]"
        if not isinstance(item, Mapping):
            errors.append(f"{where}: must be a mapping")
            continue
        kind = item.get("type")
        provider_model = provider_types.get(kind) if isinstance(kind, str) else None
        if provider_model is None:
            known = ", ".join(sorted(provider_types)) or "none (no provider plugin loaded)"
            errors.append(f"{where}.type: unknown provider type {kind!r}; known types: {known}")
            continue
        try:
            providers.append(provider_model.model_validate(item, context=context))
        except pydantic.ValidationError as exc:
            errors.append(format_validation_error(exc, where))

    try:
        config = GatewayConfig.model_validate(core, context=context)
    except pydantic.ValidationError as exc:
        errors.append(format_validation_error(exc))
        config = None
    if errors or config is None:
        raise ConfigError("\n".join(errors))
    return config.model_copy(update={"providers": providers, "sections": section_values})


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping safely (no custom tags, no aliases expansion beyond PyYAML's safe set)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}; check the path given to --config") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the configuration as UTF-8 YAML") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data
