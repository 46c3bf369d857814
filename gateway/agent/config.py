"""The agent's configuration: a YAML file and/or flags, validated once at start-up.

Every problem is reported with the key (or flag) it concerns, e.g.
``roles[0].duration_seconds: Input should be greater than or equal to 900``. The reference is
docs/agent-configuration.md, generated from these models by ``fedgate agent config-reference``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from gateway.config import format_validation_error, read_yaml
from gateway.errors import ConfigError
from gateway.net import CAFile, check_https_url
from gateway.secretref import SecretRef

__all__ = [
    "AccessKeySourceSettings",
    "AgentConfig",
    "GatewaySettings",
    "ImdsSettings",
    "ListenSettings",
    "RefreshSettings",
    "RoleSettings",
    "SourceSettings",
    "WebIdentitySourceSettings",
    "default_session_name",
    "load_agent_config",
    "parse_agent_config",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")
_ROLE_ARN_RE = re.compile(r"^arn:[a-z-]{1,20}:iam::\d{12}:role/(?:[\x21-\x7e]*/)?[\w+=,.@-]{1,64}\Z")
_SESSION_RE = re.compile(r"^[\w+=,.@-]{2,64}\Z")
_LONG_TERM_KEY_RE = re.compile(r"^AKIA[A-Z0-9]{16}\Z")
_EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}\Z")
_SOURCE_TAG_RE = re.compile(r"source\.(?:web_identity|access_key)\.")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}\Z")
_PATH_RE = re.compile(r"^/[A-Za-z0-9._~/-]{0,200}\Z")
_RESERVED_PATHS = frozenset({"/healthz", "/readyz", "/status"})
# The well-known addresses AWS gives these endpoints on IPv6 (unique-local, not link-local).
_AWS_IPV6_ENDPOINTS = frozenset({ipaddress.ip_address("fd00:ec2::23"), ipaddress.ip_address("fd00:ec2::254")})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_bind_host(host: str) -> str:
    """Loopback, or link-local when the operator binds one: credentials are served without TLS."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ValueError(
            "must be an IP address (127.0.0.1, or a link-local one such as 169.254.170.23)"
        ) from None
    if not (address.is_loopback or address.is_link_local or address in _AWS_IPV6_ENDPOINTS):
        raise ValueError(
            "must be a loopback or link-local address: credentials are served without TLS and "
            "must not be reachable from the network"
        )
    return str(address)


class ListenSettings(_Model):
    """Where the container credentials endpoint, ``/healthz``, ``/readyz`` and ``/status`` are served."""

    host: str = Field(default="127.0.0.1", description="Address to bind: loopback, or link-local.")
    port: int = Field(default=9911, ge=0, le=65535, description="TCP port (0 picks a free one).")

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        return _check_bind_host(v)


class ImdsSettings(_Model):
    """An IMDSv2 listener serving one role (``AWS_EC2_METADATA_SERVICE_ENDPOINT=http://HOST:PORT``)."""

    host: str = Field(default="127.0.0.1", description="Address to bind: loopback, or link-local.")
    port: int = Field(ge=0, le=65535, description="TCP port (0 picks a free one).")

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        return _check_bind_host(v)


class GatewaySettings(_Model):
    """The fedgate gateway the agent gets credentials from."""

    url: str = Field(
        description="The gateway's STS endpoint (https://...; plain http only to a loopback host)."
    )
    timeout_seconds: float = Field(default=10, gt=0, le=120, description="Per request to the gateway.")
    region: str = Field(
        default="us-east-1",
        description="The gateway's region (its `region` setting): the SigV4 scope of calls the "
        "agent signs with an access key.",
    )
    ca_file: CAFile | None = Field(
        default=None,
        description="PEM bundle of the only CAs trusted for the gateway's https (default: the system's).",
    )

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not _REGION_RE.match(v):
            raise ValueError("must be a region name such as us-east-1")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = check_https_url(v)
        if parts.query:
            raise ValueError("must not contain a query")
        return v


class WebIdentitySourceSettings(_Model):
    """AssumeRoleWithWebIdentity with an OIDC token read from a file at every renewal."""

    type: Literal["web_identity"] = Field(default="web_identity", description="The source kind.")
    token_file: Path = Field(
        description="File holding the OIDC token, re-read at every renewal: a projected Kubernetes "
        "service-account token, or any token file something else keeps fresh."
    )


class AccessKeySourceSettings(_Model):
    """AssumeRole signed (SigV4) with a fedgate IAM user's long-term access key.

    For workloads with no OIDC identity of their own (a VM, a build host): the key stays with the
    agent, the workload only ever sees the role's short-lived session credentials.
    """

    type: Literal["access_key"] = Field(description="The source kind.")
    access_key_id: str = Field(description="The user's access key id (AKIA followed by 16 characters).")
    secret_access_key: SecretRef = Field(
        description="The key's secret, by reference ({env: NAME} or {file: PATH}); read at start-up."
    )
    external_id: str | None = Field(
        default=None, description="ExternalId to send, when the role's trust policy asks for one."
    )

    @field_validator("access_key_id")
    @classmethod
    def _key_id(cls, v: str) -> str:
        if not _LONG_TERM_KEY_RE.match(v):
            raise ValueError("must be a long-term access key id: AKIA followed by 16 letters or digits")
        return v

    @field_validator("external_id")
    @classmethod
    def _external_id(cls, v: str | None) -> str | None:
        if v is not None and not _EXTERNAL_ID_RE.match(v):
            raise ValueError("must be 2-1224 characters of letters, digits and +=,.@:/-")
        return v


def _source_kind(value: Any) -> str:
    """``type`` of a source; a mapping without one is the original web-identity form."""
    if isinstance(value, Mapping):
        return str(value.get("type", "web_identity"))
    return str(getattr(value, "type", "web_identity"))


#: Where a served role's identity comes from, told apart by ``type``.
SourceSettings = Annotated[
    Annotated[WebIdentitySourceSettings, Tag("web_identity")]
    | Annotated[AccessKeySourceSettings, Tag("access_key")],
    Discriminator(_source_kind),
]


class RoleSettings(_Model):
    """A role the agent serves, with where its identity comes from."""

    name: str = Field(
        description="Name of this served role (1-64 of letters, digits and ._-); "
        "the container endpoint serves it at /roles/NAME unless path is set."
    )
    role_arn: str = Field(description="ARN of the gateway's role to assume.")
    session_name: str | None = Field(
        default=None,
        description="RoleSessionName (2-64 of letters, digits and +=,.@_-); default: the host name "
        "(a Kubernetes pod's name).",
    )
    duration_seconds: int = Field(default=3600, ge=900, le=43200, description="Session length asked for.")
    source: SourceSettings = Field(
        description="Where the workload's identity comes from: `type: web_identity` (a token file, "
        "the default) or `type: access_key` (a fedgate user's long-term key)."
    )
    path: str | None = Field(
        default=None, description="Path on the container endpoint (default /roles/NAME)."
    )
    imds: ImdsSettings | None = Field(default=None, description="Also serve this role as IMDSv2 here.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("must be 1-64 characters of letters, digits and ._-")
        return v

    @field_validator("role_arn")
    @classmethod
    def _arn(cls, v: str) -> str:
        if not _ROLE_ARN_RE.match(v):
            raise ValueError("must be a role ARN, arn:aws:iam::123456789012:role/NAME")
        return v

    @field_validator("session_name")
    @classmethod
    def _session(cls, v: str | None) -> str | None:
        if v is not None and not _SESSION_RE.match(v):
            raise ValueError("must be 2-64 characters of letters, digits and +=,.@_-")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and (not _PATH_RE.match(v) or "//" in v or "/." in v or v in _RESERVED_PATHS):
            raise ValueError(
                "must be an absolute path of letters, digits and ._~/- (no empty or dot segments), "
                "other than /healthz, /readyz and /status"
            )
        return v

    def served_path(self) -> str:
        """Where the container endpoint serves this role."""
        return self.path or f"/roles/{self.name}"

    def imds_role_name(self) -> str:
        """The role name IMDS lists: the last part of the role ARN, as EC2 lists its role."""
        return self.role_arn.rsplit("/", 1)[1]

    def session(self) -> str:
        """The RoleSessionName to ask for."""
        return self.session_name or default_session_name()


class RefreshSettings(_Model):
    """When credentials are renewed, retried and stop being served."""

    renew_before: float = Field(
        default=900,
        ge=1,
        description="Renew when less than this many seconds remain (plus a random jitter): "
        "botocore refreshes 15 minutes before expiry, so served credentials have more left.",
    )
    jitter: float = Field(
        default=120, ge=0, description="Up to this many seconds more, at random, so agents spread out."
    )
    expiry_margin: float = Field(
        default=60,
        ge=0,
        description="Credentials with less than this many seconds left are no longer served; the "
        "SDK gets an error instead of credentials that expire mid-request.",
    )
    retry_initial: float = Field(default=1, gt=0, description="First retry delay after a failure (seconds).")
    retry_max: float = Field(default=60, gt=0, description="Longest retry delay; delays double up to it.")

    @model_validator(mode="after")
    def _ordered(self) -> RefreshSettings:
        if self.expiry_margin >= self.renew_before:
            raise ValueError("expiry_margin must be less than renew_before (renew before giving up)")
        if self.retry_initial > self.retry_max:
            raise ValueError("retry_initial must not exceed retry_max")
        return self


class AgentConfig(_Model):
    """The whole agent configuration."""

    gateway: GatewaySettings = Field(description="The fedgate gateway to get credentials from.")
    listen: ListenSettings = Field(
        default_factory=ListenSettings,
        description="The container credentials endpoint, /healthz, /readyz and /status.",
    )
    authorization_token_file: Path | None = Field(
        default=None,
        description="Where the agent writes the random token SDKs must send in Authorization "
        "(mode 0600, new at every start): point AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE at it. "
        "Required to serve; credential-process fetching directly does without.",
    )
    refresh: RefreshSettings = Field(
        default_factory=RefreshSettings, description="When credentials are renewed, retried and dropped."
    )
    roles: list[RoleSettings] = Field(min_length=1, description="The roles served.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe log level written (JSON lines on stderr)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> AgentConfig:
        names: set[str] = set()
        paths: set[str] = set()
        listeners = {(self.listen.host, self.listen.port)} if self.listen.port else set()
        lead = self.refresh.renew_before + self.refresh.jitter
        for i, role in enumerate(self.roles):
            if role.name in names:
                raise ValueError(f"roles[{i}].name: duplicate name {role.name!r}")
            names.add(role.name)
            if role.served_path() in paths:
                raise ValueError(f"roles[{i}].path: {role.served_path()} is already served")
            paths.add(role.served_path())
            if role.imds is not None and role.imds.port:
                where = (role.imds.host, role.imds.port)
                if where in listeners:
                    raise ValueError(f"roles[{i}].imds: {where[0]} port {where[1]} is already in use")
                listeners.add(where)
            if role.duration_seconds <= lead:
                raise ValueError(
                    f"roles[{i}].duration_seconds: must exceed refresh.renew_before + refresh.jitter "
                    f"({lead:g} s), or the credentials would be renewed as soon as they arrive"
                )
        return self

    def role(self, name: str) -> RoleSettings:
        """The role named ``name``; raises ``KeyError``."""
        for role in self.roles:
            if role.name == name:
                return role
        raise KeyError(name)


def default_session_name() -> str:
    """The host name (a pod's name in Kubernetes), made a valid RoleSessionName."""
    name = re.sub(r"[^\w+=,.@-]", "-", socket.gethostname())[:64]
    return name if len(name) >= 2 else "fedgate-agent"


def parse_agent_config(raw: Mapping[str, Any], *, flags: Mapping[str, str] | None = None) -> AgentConfig:
    """Validate ``raw`` into an :class:`AgentConfig`; raises :class:`ConfigError`, one line a problem.

    ``flags`` maps key paths set from the command line (``gateway.url``) to their flag
    (``--gateway-url``), so a problem with a flag's value names the flag.
    """
    try:
        return AgentConfig.model_validate(raw)
    except pydantic.ValidationError as exc:
        # pydantic names the chosen kind in the path (source.access_key.x); the file says source.x.
        lines = [_SOURCE_TAG_RE.sub("source.", line) for line in format_validation_error(exc).splitlines()]
    if flags:
        named = []
        for line in lines:
            path, sep, message = line.partition(": ")
            flag = flags.get(path)
            named.append(f"{flag}: {message}" if sep and flag else line)
        lines = named
    raise ConfigError("\n".join(lines))


def load_agent_config(path: Path) -> dict[str, Any]:
    """The raw mapping in the YAML file at ``path`` (validated later, with any flags applied)."""
    try:
        return read_yaml(path)
    except ConfigError as exc:  # PyYAML's messages span lines; the command line wants one
        raise ConfigError(" ".join(str(exc).split())) from None
