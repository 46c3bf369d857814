"""OIDC and SAML identity providers registered through the API.

An OIDC provider is keyed by its URL without the scheme (``token.actions.githubusercontent.com``),
exactly as its ARN spells it (``arn:aws:iam::ACCOUNT:oidc-provider/URL``); a SAML provider by its
name (``arn:aws:iam::ACCOUNT:saml-provider/NAME``). The federation plugins read them from the
catalog's snapshot; the quotas (100 client ids, 5 thumbprints) are the API's.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, final

from sqlalchemy import Row, delete, insert, select, update

from gateway.db import schema
from gateway.db.records import OidcProviderRecord, SamlProviderRecord, Tags
from gateway.db.repos.base import Repo, check_length
from gateway.errors import EntityAlreadyExists, NoSuchEntity

__all__ = ["OidcProviderRepo", "SamlProviderRepo"]


@final
class OidcProviderRepo(Repo):
    """OpenID Connect providers."""

    __slots__ = ()

    def _arn(self, url: str) -> str:
        return f"arn:aws:iam::{self._ctx.account_id}:oidc-provider/{url}"

    def _record(self, row: Row[Any], tags: Tags) -> OidcProviderRecord:
        return OidcProviderRecord(
            url=row.url,
            arn=self._arn(row.url),
            client_ids=tuple(row.client_ids),
            thumbprints=tuple(row.thumbprints),
            created_at=row.created_at,
            tags=tags,
        )

    async def create(
        self,
        url: str,
        *,
        client_ids: Sequence[str] = (),
        thumbprints: Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
    ) -> OidcProviderRecord:
        """Register a provider by its scheme-less URL."""
        check_length(url, 512, "an OIDC provider URL")
        if await self.get(url) is not None:
            raise EntityAlreadyExists(f"Provider with url https://{url} already exists.")
        await self._write(
            insert(schema.oidc_providers).values(
                url=url, client_ids=list(client_ids), thumbprints=list(thumbprints), created_at=self.now()
            )
        )
        if tags:
            await self._set_tags("oidc-provider", url, tags)
        return await self.require(url)

    async def get(self, url: str) -> OidcProviderRecord | None:
        """One provider, or ``None``."""
        p = schema.oidc_providers
        row = await self._row(select(p).where(p.c.url == url))
        return None if row is None else self._record(row, await self._tags("oidc-provider", url))

    async def require(self, url: str) -> OidcProviderRecord:
        """One provider; raises :class:`~gateway.errors.NoSuchEntity` naming its ARN."""
        record = await self.get(url)
        if record is None:
            raise NoSuchEntity(f"OpenIDConnect Provider not found for arn {self._arn(url)}")
        return record

    async def all(self) -> builtins.list[OidcProviderRecord]:
        """Every provider, by URL."""
        p = schema.oidc_providers
        tags = await self._tags_of_type("oidc-provider")
        return [self._record(r, tags.get(r.url, ())) for r in await self._rows(select(p).order_by(p.c.url))]

    async def set_client_ids(self, url: str, client_ids: Sequence[str]) -> OidcProviderRecord:
        """Replace the client ids (Add/RemoveClientID... read, change and write them here)."""
        await self.require(url)
        p = schema.oidc_providers
        await self._write(update(p).where(p.c.url == url).values(client_ids=list(client_ids)))
        return await self.require(url)

    async def set_thumbprints(self, url: str, thumbprints: Sequence[str]) -> OidcProviderRecord:
        """Replace the thumbprints (UpdateOpenIDConnectProviderThumbprint)."""
        await self.require(url)
        p = schema.oidc_providers
        await self._write(update(p).where(p.c.url == url).values(thumbprints=list(thumbprints)))
        return await self.require(url)

    async def delete(self, url: str) -> None:
        """Delete a provider and its tags."""
        await self.require(url)
        await self._untag("oidc-provider", url, None)
        p = schema.oidc_providers
        await self._write(delete(p).where(p.c.url == url))

    async def tag(self, url: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite the provider's tags."""
        await self.require(url)
        await self._set_tags("oidc-provider", url, tags)

    async def untag(self, url: str, keys: Sequence[str]) -> None:
        """Remove tags from the provider."""
        await self.require(url)
        await self._untag("oidc-provider", url, keys)


@final
class SamlProviderRepo(Repo):
    """SAML providers and their IdP metadata documents."""

    __slots__ = ()

    def _arn(self, name: str) -> str:
        return f"arn:aws:iam::{self._ctx.account_id}:saml-provider/{name}"

    def _record(self, row: Row[Any], tags: Tags) -> SamlProviderRecord:
        return SamlProviderRecord(
            name=row.name,
            arn=self._arn(row.name),
            metadata_document=row.metadata_document,
            valid_until=row.valid_until,
            created_at=row.created_at,
            tags=tags,
        )

    async def create(
        self,
        name: str,
        *,
        metadata_document: str,
        valid_until: datetime | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> SamlProviderRecord:
        """Register a provider from its IdP's metadata."""
        check_length(name, 128, "a SAML provider name")
        if await self.get(name) is not None:
            raise EntityAlreadyExists(f"SAMLProvider {name} already exists.")
        await self._write(
            insert(schema.saml_providers).values(
                name=name, metadata_document=metadata_document, valid_until=valid_until, created_at=self.now()
            )
        )
        if tags:
            await self._set_tags("saml-provider", name, tags)
        return await self.require(name)

    async def get(self, name: str) -> SamlProviderRecord | None:
        """One provider, or ``None``."""
        p = schema.saml_providers
        row = await self._row(select(p).where(p.c.name == name))
        return None if row is None else self._record(row, await self._tags("saml-provider", name))

    async def require(self, name: str) -> SamlProviderRecord:
        """One provider; raises :class:`~gateway.errors.NoSuchEntity` naming its ARN."""
        record = await self.get(name)
        if record is None:
            raise NoSuchEntity(f"SAMLProvider not found for arn {self._arn(name)}")
        return record

    async def all(self) -> builtins.list[SamlProviderRecord]:
        """Every provider, by name."""
        p = schema.saml_providers
        tags = await self._tags_of_type("saml-provider")
        return [self._record(r, tags.get(r.name, ())) for r in await self._rows(select(p).order_by(p.c.name))]

    async def update(
        self, name: str, *, metadata_document: str, valid_until: datetime | None = None
    ) -> SamlProviderRecord:
        """Replace the metadata document (UpdateSAMLProvider)."""
        await self.require(name)
        p = schema.saml_providers
        await self._write(
            update(p)
            .where(p.c.name == name)
            .values(metadata_document=metadata_document, valid_until=valid_until)
        )
        return await self.require(name)

    async def delete(self, name: str) -> None:
        """Delete a provider and its tags."""
        await self.require(name)
        await self._untag("saml-provider", name, None)
        p = schema.saml_providers
        await self._write(delete(p).where(p.c.name == name))

    async def tag(self, name: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite the provider's tags."""
        await self.require(name)
        await self._set_tags("saml-provider", name, tags)

    async def untag(self, name: str, keys: Sequence[str]) -> None:
        """Remove tags from the provider."""
        await self.require(name)
        await self._untag("saml-provider", name, keys)
