"""Conformance: OIDC and SAML providers, and tags on them (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.db import IamDatabase
from gateway.errors import EntityAlreadyExists, NoSuchEntity
from tests.db.conftest import ACCOUNT

GHA = "token.actions.githubusercontent.com"
METADATA = '<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp"/>'


async def test_oidc_providers_keep_client_ids_and_thumbprints(db: IamDatabase) -> None:
    async with db.write() as tx:
        provider = await tx.oidc_providers.create(
            GHA, client_ids=["sts.amazonaws.com"], thumbprints=["a" * 40], tags={"env": "ci"}
        )
    assert provider.arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GHA}"
    assert (provider.client_ids, provider.thumbprints, provider.tags) == (
        ("sts.amazonaws.com",),
        ("a" * 40,),
        (("env", "ci"),),
    )
    async with db.write() as tx:
        await tx.oidc_providers.set_client_ids(GHA, ["sts.amazonaws.com", "fedgate"])
        await tx.oidc_providers.set_thumbprints(GHA, ["b" * 40, "c" * 40])
        await tx.oidc_providers.tag(GHA, {"owner": "platform"})
        await tx.oidc_providers.untag(GHA, ["env"])
        with pytest.raises(EntityAlreadyExists, match=f"Provider with url https://{GHA} already exists."):
            await tx.oidc_providers.create(GHA)
    (stored,) = (await db.load()).oidc_providers
    assert stored.client_ids == ("sts.amazonaws.com", "fedgate") and stored.thumbprints == (
        "b" * 40,
        "c" * 40,
    )
    assert stored.tags == (("owner", "platform"),)
    async with db.write() as tx:
        await tx.oidc_providers.delete(GHA)
        with pytest.raises(
            NoSuchEntity, match=f"not found for arn arn:aws:iam::{ACCOUNT}:oidc-provider/{GHA}"
        ):
            await tx.oidc_providers.require(GHA)
    async with db.write() as tx:  # its tags went with it
        assert (await tx.oidc_providers.create(GHA)).tags == ()


async def test_saml_providers_keep_their_metadata(db: IamDatabase) -> None:
    until = datetime(2030, 1, 1, tzinfo=UTC)
    async with db.write() as tx:
        provider = await tx.saml_providers.create("okta", metadata_document=METADATA, valid_until=until)
        with pytest.raises(EntityAlreadyExists):
            await tx.saml_providers.create("okta", metadata_document=METADATA)
    assert provider.arn == f"arn:aws:iam::{ACCOUNT}:saml-provider/okta"
    assert (provider.metadata_document, provider.valid_until) == (METADATA, until)
    async with db.write() as tx:
        updated = await tx.saml_providers.update("okta", metadata_document=METADATA + "<!-- v2 -->")
        await tx.saml_providers.tag("okta", {"a": "1"})
    assert updated.valid_until is None and updated.metadata_document.endswith("v2 -->")
    assert [p.tags for p in (await db.load()).saml_providers] == [(("a", "1"),)]
    async with db.write() as tx:
        await tx.saml_providers.untag("okta", ["a"])
        await tx.saml_providers.delete("okta")
        with pytest.raises(NoSuchEntity, match="SAMLProvider not found"):
            await tx.saml_providers.delete("okta")
    assert (await db.load()).saml_providers == ()


async def test_tags_of_different_entities_do_not_mix(db: IamDatabase) -> None:
    async with db.write() as tx:
        await tx.users.create("same", tags={"who": "user"})
        await tx.roles.create("same", trust_policy="{}", tags={"who": "role"})
        await tx.policies.create("same", document="{}", tags={"who": "policy"})
        await tx.instance_profiles.create("same", tags={"who": "profile"})
    snapshot = await db.load()
    assert [
        r.tags for r in (*snapshot.users, *snapshot.roles, *snapshot.policies, *snapshot.instance_profiles)
    ] == [
        (("who", "user"),),
        (("who", "role"),),
        (("who", "policy"),),
        (("who", "profile"),),
    ]
    with pytest.raises(TypeError, match="no tags"):
        async with db.write() as tx:
            await tx.groups.tag("same", {"k": "v"})


async def test_oversized_tags_are_refused(db: IamDatabase) -> None:
    with pytest.raises(ValueError, match="tag value"):
        async with db.write() as tx:
            await tx.users.create("u", tags={"k": "v" * 257})
    with pytest.raises(ValueError, match="tag key"):
        async with db.write() as tx:
            await tx.users.create("u", tags={"k" * 129: "v"})
    assert (await db.load()).users == ()
