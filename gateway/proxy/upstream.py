"""The configured upstreams at run time: matching a request to one, and its resolved settings.

Matching is on the ``Host`` header (port ignored) and the *decoded* path segments, so a prefix
cannot be dodged with ``%2F`` or dot segments (those are refused before matching). The first
upstream in configuration order that matches wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import final
from urllib.parse import urlsplit

from gateway.errors import ConfigError, InvalidParameterValue
from gateway.proxy.apigw import ApiGatewayMapping
from gateway.proxy.config import UpstreamSettings
from gateway.proxy.headers import DEFAULT_FORWARDED, DEFAULT_FORWARDED_RESIGN
from gateway.proxy.mapping import Mapping, RouteTable
from gateway.proxy.paths import decode_path
from gateway.proxy.s3 import S3Mapping

__all__ = ["Selection", "SigningCredentials", "Upstream", "UpstreamTable", "host_matches", "shadowed"]


@final
@dataclass(frozen=True, slots=True)
class SigningCredentials:
    """The upstream's own credentials, resolved at start-up."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def host_matches(pattern: str, host: str) -> bool:
    """Whether ``host`` (lowercase, no port) matches ``pattern`` (a host or ``*.suffix``)."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


@final
class Upstream:
    """One upstream: settings, mapping, where to send, and how to authenticate there."""

    def __init__(self, settings: UpstreamSettings, *, region: str, account: str) -> None:
        self.settings = settings
        self.name = settings.name
        self.region = settings.region or region
        self.service = settings.service
        self.signing_region = settings.upstream_region or self.region
        self.signing_service = settings.upstream_service or self.service
        target = urlsplit(settings.target)
        self.base_url = f"{target.scheme}://{target.netloc}"
        self.base_path = target.path.rstrip("/")
        self.target_host = target.netloc
        self.prefix: tuple[str, ...] = tuple(s for s in settings.match.path_prefix.split("/") if s)
        self.mapping: Mapping
        if settings.mapping == "s3":
            self.mapping = S3Mapping(virtual_host_suffix=settings.virtual_host_suffix)
        elif settings.mapping == "api-gateway":
            self.mapping = ApiGatewayMapping(
                region=self.region, account=account, api_id=settings.api_id, stage=settings.stage
            )
        else:
            self.mapping = RouteTable(settings.routes, region=self.region, account=account)
        self.credentials = _resolve(settings) if settings.auth == "resign" else None
        configured = settings.forwarded_headers
        self.forwarded: tuple[str, ...] = (
            tuple(configured)
            if configured is not None
            else DEFAULT_FORWARDED_RESIGN
            if settings.auth == "resign"
            else DEFAULT_FORWARDED
        )

    @property
    def normalize_path(self) -> bool:
        """Whether clients sign the normalised path (every service but S3)."""
        return self.service != "s3"

    def matches(self, host: str, segments: tuple[str, ...]) -> bool:
        """Whether a request for ``host`` with decoded ``segments`` belongs to this upstream."""
        hosts = self.settings.match.hosts
        if hosts and not any(host_matches(p, host) for p in hosts):
            return False
        return segments[: len(self.prefix)] == self.prefix

    def relative(self, segments: tuple[str, ...]) -> tuple[str, ...]:
        """``segments`` with the matched prefix removed when ``strip_prefix`` is set."""
        return segments[len(self.prefix) :] if self.settings.strip_prefix else segments


def _resolve(settings: UpstreamSettings) -> SigningCredentials:
    creds = settings.credentials
    assert creds is not None  # the settings validator requires them for resign
    try:
        token = creds.session_token.resolve().get_secret_value() if creds.session_token else None
        return SigningCredentials(
            creds.access_key_id.resolve().get_secret_value(),
            creds.secret_access_key.resolve().get_secret_value(),
            token,
        )
    except ValueError as exc:
        raise ConfigError(f"upstreams[{settings.name}].credentials: {exc}") from None


@final
@dataclass(frozen=True, slots=True)
class Selection:
    """The upstream a request belongs to, with its decoded path segments or why the path is refused."""

    upstream: Upstream
    segments: tuple[str, ...] = ()
    error: InvalidParameterValue | None = None


def _host_covers(pattern: str, other: str) -> bool:
    """Whether every host ``other`` (a host or ``*.suffix``) matches is matched by ``pattern``."""
    if other.startswith("*."):
        return pattern.startswith("*.") and other[1:].endswith(pattern[1:])
    return host_matches(pattern, other)


def shadowed(upstreams: Sequence[UpstreamSettings]) -> list[tuple[int, int]]:
    """``(later, earlier)`` index pairs: every request ``later`` takes is taken first by ``earlier``.

    Upstreams are tried in order and the first match wins (:meth:`UpstreamTable.select`), so a later
    one that an earlier one covers (hosts at least as wide, path prefix a prefix of its own) is
    never reached.
    """
    found = []
    for j, later in enumerate(upstreams):
        mine = tuple(s for s in later.match.path_prefix.split("/") if s)
        for i, earlier in enumerate(upstreams[:j]):
            theirs = tuple(s for s in earlier.match.path_prefix.split("/") if s)
            hosts_covered = not earlier.match.hosts or (
                bool(later.match.hosts)
                and all(any(_host_covers(p, h) for p in earlier.match.hosts) for h in later.match.hosts)
            )
            if hosts_covered and mine[: len(theirs)] == theirs:
                found.append((j, i))
                break
    return found


@final
class UpstreamTable:
    """Every upstream, in configuration order."""

    def __init__(self, upstreams: Sequence[UpstreamSettings], *, region: str, account: str) -> None:
        self.upstreams = tuple(Upstream(u, region=region, account=account) for u in upstreams)
        # The candidates for a (host, service) pair, worked out once: a pure function of the two
        # and the (immutable) table. Hosts come from clients, so the memo is bounded.
        self._candidates: dict[tuple[str, str | None], tuple[Upstream, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self.upstreams)

    def select(self, host: str, raw_path: str, service: str | None = None) -> Selection | None:
        """The upstream for a request to ``host`` (lowercase, no port) and wire path ``raw_path``.

        ``None`` when no upstream takes it (the gateway's own routes then apply). A path that an
        upstream taking this host must refuse gives a selection carrying the error, so it is
        answered in that upstream's dialect rather than falling through to another route.
        ``service`` is the service the request is signed for (:func:`gateway.sigv4.signed_service`):
        when upstreams of that service take the host, only they are candidates, so one host can
        serve several services (``AWS_ENDPOINT_URL``).
        """
        candidates = self._candidates.get((host, service))
        if candidates is None:
            candidates = self._find_candidates(host, service)
            if len(self._candidates) >= _CANDIDATES_MAX:
                self._candidates.clear()
            self._candidates[host, service] = candidates
        if not candidates:
            return None
        try:
            lenient = decode_path(raw_path, encoded_slash=True)
        except InvalidParameterValue as exc:
            owner = next((u for u in candidates if u.settings.match.hosts), None)
            return Selection(owner, error=exc) if owner is not None else None
        for upstream in candidates:
            if not upstream.matches(host, lenient):
                continue
            if upstream.mapping.encoded_slash:
                return Selection(upstream, upstream.relative(lenient))
            try:
                strict = decode_path(raw_path, encoded_slash=False)
            except InvalidParameterValue as exc:
                return Selection(upstream, error=exc)
            return Selection(upstream, upstream.relative(strict))
        return None

    def _find_candidates(self, host: str, service: str | None) -> tuple[Upstream, ...]:
        candidates = [
            u
            for u in self.upstreams
            if not u.settings.match.hosts or any(host_matches(p, host) for p in u.settings.match.hosts)
        ]
        if service:
            candidates = [u for u in candidates if u.service == service] or candidates
        return tuple(candidates)


_CANDIDATES_MAX = 1024
