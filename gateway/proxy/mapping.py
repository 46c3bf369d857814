"""How a proxied request becomes IAM authorization checks, and the path the upstream receives.

A :class:`Mapping` turns a :class:`ProxyRequest` (decoded, transport-neutral) into a
:class:`Mapped`: the checks that must all be allowed (an S3 copy needs ``s3:PutObject`` on the
target and ``s3:GetObject`` on the source), the canonical path to forward, and any header to
rewrite canonically (a :class:`~gateway.iam.permissions.Check` is the permission engine's
question, re-exported here for mappings). Mappings are pure; a request they cannot map is refused with
:class:`~gateway.errors.AccessDenied` (fail closed), never forwarded unchecked.

Built-in mappings: :class:`gateway.proxy.s3.S3Mapping`,
:class:`gateway.proxy.apigw.ApiGatewayMapping` and :class:`RouteTable` (here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from gateway.errors import AccessDenied
from gateway.iam.permissions import Check, ContextValue
from gateway.proxy.config import RouteSettings
from gateway.proxy.paths import encode_segments
from gateway.proxy.query import QueryParam

__all__ = ["Check", "ContextValue", "Dialect", "Mapped", "Mapping", "ProxyRequest", "RouteTable"]

Dialect = Literal["s3", "json"]


@dataclass(frozen=True, slots=True)
class ProxyRequest:
    """A proxied request as mappings see it: everything decoded exactly once.

    ``segments`` is the decoded path relative to the upstream (after any prefix strip);
    ``headers`` maps lowercase names to values (repeated headers joined with ``,``).
    """

    method: str
    host: str
    segments: tuple[str, ...]
    query: tuple[QueryParam, ...] = ()
    headers: MappingABC[str, str] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``, or ``None``."""
        for p in self.query:
            if p.name == name:
                return p.value
        return None


@dataclass(frozen=True, slots=True)
class Mapped:
    """What a mapping decided: the operation name (for audit), the checks, and what to forward.

    ``delete_objects`` marks S3's multi-object delete, whose checks (one per key) come from the
    body: ``checks`` is then empty and :mod:`gateway.proxy.deletes` decides.
    """

    operation: str
    checks: tuple[Check, ...]
    path: str
    set_headers: tuple[tuple[str, str], ...] = ()
    delete_objects: bool = False


class Mapping(Protocol):
    """Maps a :class:`ProxyRequest` to a :class:`Mapped`."""

    #: Error dialect of the upstream's API.
    dialect: Dialect
    #: Whether ``%2F`` in the path reads as ``/`` (S3 keys) rather than being refused.
    encoded_slash: bool

    def map(self, request: ProxyRequest) -> Mapped:
        """Map ``request``; raise :class:`AccessDenied` (or another ServiceError) if it cannot."""
        ...


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    parts: tuple[str, ...]  # literal segments, "{name}" or a last "{name+}"
    settings: RouteSettings


class RouteTable:
    """A user-defined route table: first route whose method and path template match wins."""

    dialect: Dialect = "json"
    encoded_slash = False

    def __init__(self, routes: Sequence[RouteSettings], *, region: str, account: str) -> None:
        self._routes = tuple(
            _Route(r.method, tuple(r.path.strip("/").split("/")) if r.path != "/" else (), r) for r in routes
        )
        self._region = region
        self._account = account

    def map(self, request: ProxyRequest) -> Mapped:
        for route in self._routes:
            if route.method not in ("*", request.method):
                continue
            values = _match(route.parts, request.segments)
            if values is None:
                continue
            return self._mapped(route.settings, values, request)
        raise AccessDenied("No route of this API matches the request.")

    def _mapped(self, route: RouteSettings, values: dict[str, str], request: ProxyRequest) -> Mapped:
        fixed = {"region": self._region, "account": self._account, "method": request.method}
        resource = _PLACEHOLDER.sub(lambda m: {**fixed, **values}[m.group(1)], route.resource)
        context: dict[str, ContextValue] = {}
        for key, source in route.conditions.items():
            kind, _, name = source.partition(".")
            if kind == "path":
                value: str | None = values.get(name) if name in values else fixed.get(name)
            elif kind == "query":
                value = request.param(name)
            else:
                value = request.headers.get(name.lower())
            if value is not None:
                context[key] = value
        return Mapped(
            operation=route.action.partition(":")[2],
            checks=(Check(route.action, resource, context),),
            path=encode_segments(request.segments),
        )


def _match(parts: tuple[str, ...], segments: tuple[str, ...]) -> dict[str, str] | None:
    values: dict[str, str] = {}
    for i, part in enumerate(parts):
        if part.endswith("+}"):
            rest = segments[i:]
            if not rest or not rest[0]:
                return None
            values[part[1:-2]] = "/".join(rest)
            return values
        if i >= len(segments):
            return None
        segment = segments[i]
        if part.startswith("{"):
            if not segment:
                return None
            values[part[1:-1]] = segment
        elif part != segment:
            return None
    return values if len(segments) == len(parts) else None
