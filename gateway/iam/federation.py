"""Identity providers created through the IAM API, built by the plugins and kept current.

``CreateOpenIDConnectProvider`` and ``CreateSAMLProvider`` store a provider in the IAM database;
this replica turns each one into a working identity provider: the plugins say which settings it
means (``fedgate_api_provider_settings``), build it (``fedgate_create_identity_provider``), and
STS routes tokens (AssumeRoleWithWebIdentity, by issuer) and assertions (AssumeRoleWithSAML, by
the provider ARN its ``PrincipalArn`` names) to it like to a configured one (a provider the
configuration file declares for the same issuer or ARN wins). :class:`ApiProviders` follows the
database's revision: when it moves, the set is read again in one consistent read; providers whose
issuer and client ids (a SAML provider's metadata document) did not change are kept (with their
cached keys), new ones are built and started, and the ones that were deleted or changed are
closed once STS no longer routes to them. A provider that cannot be built is logged and left out
(its tokens are refused: fail closed); the others are unaffected.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, final

from gateway.db.database import IamDatabase
from gateway.db.watch import RevisionWatcher
from gateway.errors import GatewayError
from gateway.identity import IdentityProvider, ProviderContext
from gateway.plugin_host import PluginHost

__all__ = ["ApiProviders"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, order=True)
class _Key:
    """What a provider is built from: equal keys, same provider (kept across rebuilds)."""

    kind: Literal["oidc", "saml"]
    name: str  # an OIDC provider's URL without its scheme; a SAML provider's name
    client_ids: tuple[str, ...] = ()
    digest: str = ""  # of a SAML provider's metadata document


def _digest(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8", "surrogatepass")).hexdigest()


@final
class ApiProviders:
    """The API-created OIDC and SAML providers of this replica, handed to ``use`` after every change."""

    def __init__(
        self,
        host: PluginHost,
        context: ProviderContext,
        database: IamDatabase,
        use: Callable[[Sequence[IdentityProvider]], None],
    ) -> None:
        self._host = host
        self._context = context
        self._database = database
        self._use = use
        self._built: dict[_Key, IdentityProvider] = {}

    def __repr__(self) -> str:
        return f"ApiProviders({len(self._built)} providers)"

    @property
    def providers(self) -> list[IdentityProvider]:
        """The providers STS routes to now."""
        return list(self._built.values())

    async def start(self, watcher: RevisionWatcher) -> None:
        """Build the set as the database holds it now, then follow ``watcher``."""
        revision = await self.rebuild()
        watcher.subscribe("api-providers", self.refresh, revision=revision)

    async def refresh(self, revision: int) -> None:
        """Rebuild (the watcher calls this when the revision moves)."""
        await self.rebuild()

    async def rebuild(self) -> int:
        """Read the providers, build what changed, hand the set over; return the revision read."""
        async with self._database.read() as tx:
            oidc = await tx.oidc_providers.all()
            saml = await tx.saml_providers.all()
            revision = tx.revision
        documents = {r.name: r.metadata_document for r in saml}
        wanted = {_Key("oidc", r.url, tuple(r.client_ids)) for r in oidc}
        wanted |= {_Key("saml", name, digest=_digest(document)) for name, document in documents.items()}
        built = {key: p for key, p in self._built.items() if key in wanted}
        for key in sorted(wanted - built.keys()):
            provider = await self._build(key, documents.get(key.name, "") if key.kind == "saml" else "")
            if provider is not None:
                built[key] = provider
        retired = [p for key, p in self._built.items() if key not in built]
        self._built = built
        self._use(list(built.values()))
        for provider in retired:
            await provider.close()
        return revision

    async def _build(self, key: _Key, metadata: str) -> IdentityProvider | None:
        if key.kind == "oidc":
            settings = self._host.api_provider_settings("oidc", f"https://{key.name}", key.client_ids)
            usable = bool(key.client_ids)  # a provider no token can name is left out quietly
        else:
            settings = self._host.api_provider_settings("saml", name=key.name, metadata=metadata)
            usable = True
        what = f"the API-created {key.kind.upper()} provider {key.name}"
        if settings is None:
            if usable:
                log.warning("no plugin builds %s; its tokens are refused", what)
            return None
        try:
            provider = self._host.create_identity_provider(settings, self._context)
            await provider.start()
        except (GatewayError, ValueError, OSError) as exc:
            log.warning("%s cannot be used: %s", what, exc)
            return None
        return provider

    async def close(self) -> None:
        """Close every provider built."""
        built, self._built = self._built, {}
        for provider in built.values():
            await provider.close()
