"""What the reverse proxy needs at request time, built once at start-up (:mod:`gateway.startup`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, final

import aiohttp

from gateway.credentials import CredentialService
from gateway.iam.accesskeys import AccessKeys
from gateway.iam.catalog import Catalog
from gateway.iam.denial import AuthorizationMessages
from gateway.iam.permissions import CallerViews
from gateway.metrics import Metrics
from gateway.proxy.client import UpstreamClient
from gateway.proxy.upstream import UpstreamTable
from gateway.sigv4 import SigningKeyCache

if TYPE_CHECKING:  # joserfc is imported only when an upstream has auth: identity
    from gateway.proxy.identity import IdentitySigner

__all__ = ["ProxyRuntime"]


@final
@dataclass(slots=True)
class ProxyRuntime:
    """The upstream table, the services every proxied request uses, and one client per upstream.

    ``verify_keys`` caches the SigV4 keys of client signatures (shared with the Query endpoint);
    ``signing_keys`` those of the upstreams' own credentials, for ``auth: resign``; ``messages``
    encodes the explanation every AccessDenied ends with; ``views`` what each caller's requests
    share; ``metrics`` (when enabled) counts each upstream request's latency to its response
    headers, status and failures.
    """

    table: UpstreamTable
    credentials: CredentialService
    catalog: Catalog
    verify_keys: SigningKeyCache
    clock: Callable[[], float]
    messages: AuthorizationMessages
    access_keys: AccessKeys | None = None
    signer: IdentitySigner | None = None
    metrics: Metrics | None = None
    clients: dict[str, UpstreamClient] = field(default_factory=dict)
    #: The aiohttp sessions of the upstreams with ``websocket: true``, for their upgrades.
    websockets: dict[str, aiohttp.ClientSession] = field(default_factory=dict)
    signing_keys: SigningKeyCache = field(default_factory=SigningKeyCache)
    #: Each recent caller's policy set, standing condition keys and remembered decisions.
    views: CallerViews = field(default_factory=CallerViews)
