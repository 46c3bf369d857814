"""Conformance: managed policies and versions, attachments, inline policies (both backends)."""

from __future__ import annotations

import json
import re

import pytest

from gateway.db import IamDatabase
from gateway.errors import DeleteConflict, EntityAlreadyExists, NoSuchEntity
from tests.db.conftest import ACCOUNT

# Stored as submitted: whitespace and key order survive.
DOC_1 = (
    '{"Version": "2012-10-17",\n '
    '"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}'
)
DOC_2 = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
)
YAML_POLICY = f"arn:aws:iam::{ACCOUNT}:policy/declared-in-yaml"


async def test_a_policy_starts_with_v1_as_its_default_version(db: IamDatabase) -> None:
    async with db.write() as tx:
        policy = await tx.policies.create(
            "Read", path="/team/", document=DOC_1, description="read", tags={"a": "b"}
        )
    assert re.fullmatch(r"ANPA[A-Z2-7]{17}", policy.id)
    assert policy.arn == f"arn:aws:iam::{ACCOUNT}:policy/team/Read"
    assert (policy.default_version, policy.description, policy.tags) == ("v1", "read", (("a", "b"),))
    async with db.read() as tx:
        (v1,) = await tx.policies.versions(policy.id)
        assert (v1.version_id, v1.document, v1.is_default) == ("v1", DOC_1, True)
        assert await tx.policies.get_by_arn(policy.arn) == policy
        assert await tx.policies.get_by_arn(f"arn:aws:iam::{ACCOUNT}:policy/other/Read") is None
        with pytest.raises(NoSuchEntity, match="does not exist or is not attachable"):
            await tx.policies.require_arn(YAML_POLICY)
    with pytest.raises(EntityAlreadyExists, match="A policy called read already exists"):
        async with db.write() as tx:
            await tx.policies.create("read", document=DOC_1)


async def test_versions_are_numbered_without_reuse_and_the_default_moves(db: IamDatabase) -> None:
    async with db.write() as tx:
        policy = await tx.policies.create("p", document=DOC_1)
        v2 = await tx.policies.create_version(policy.id, DOC_2)
        v3 = await tx.policies.create_version(policy.id, DOC_1, set_default=True)
    assert (v2.version_id, v2.is_default, v3.version_id, v3.is_default) == ("v2", False, "v3", True)
    async with db.write() as tx:
        await tx.policies.delete_version(policy.id, "v2")
        v4 = await tx.policies.create_version(policy.id, DOC_2)
        assert v4.version_id == "v4"  # v2 is not handed out again
        assert await tx.policies.count_versions(policy.id) == 3
        await tx.policies.set_default_version(policy.id, "v4")
        with pytest.raises(DeleteConflict, match="Cannot delete the default version"):
            await tx.policies.delete_version(policy.id, "v4")
    async with db.read() as tx:
        assert [v.version_id for v in await tx.policies.versions(policy.id)] == ["v4", "v3", "v1"]
        assert (await tx.policies.default_version(policy.id)).document == DOC_2
        assert (await tx.policies.require("p")).default_version == "v4"
        with pytest.raises(NoSuchEntity):
            await tx.policies.set_default_version(policy.id, "v9")
    snapshot = await db.load()
    assert [(v.version_id, v.is_default) for v in snapshot.policy_versions] == [
        ("v1", False),
        ("v3", False),
        ("v4", True),
    ]


async def test_a_policy_is_deleted_only_when_detached_and_down_to_its_default(db: IamDatabase) -> None:
    async with db.write() as tx:
        policy = await tx.policies.create("p", document=DOC_1)
        await tx.policies.create_version(policy.id, DOC_2)
        role = await tx.roles.create("r", trust_policy="{}")
        await tx.attachments.attach("role", role.id, policy.arn)
    with pytest.raises(DeleteConflict, match="attached to entities"):
        async with db.write() as tx:
            await tx.policies.delete(policy.arn)
    async with db.write() as tx:
        await tx.attachments.detach("role", role.id, policy.arn)
    with pytest.raises(DeleteConflict, match="more than one version"):
        async with db.write() as tx:
            await tx.policies.delete(policy.arn)
    async with db.write() as tx:
        await tx.policies.delete_version(policy.id, "v2")
        await tx.policies.delete(policy.arn)
    snapshot = await db.load()
    assert snapshot.policies == () and snapshot.policy_versions == ()


async def test_attachments_name_policies_by_arn_including_the_yamls(db: IamDatabase) -> None:
    async with db.write() as tx:
        user = await tx.users.create("alice")
        group = await tx.groups.create("devs")
        policy = await tx.policies.create("p", document=DOC_1)
        assert await tx.attachments.attach("user", user.id, YAML_POLICY) is True
        assert await tx.attachments.attach("user", user.id, policy.arn) is True
        assert await tx.attachments.attach("user", user.id, policy.arn) is False
        await tx.attachments.attach("group", group.id, policy.arn)
    async with db.read() as tx:
        assert [a.policy_arn for a in await tx.attachments.for_principal("user", user.id)] == sorted(
            [YAML_POLICY, policy.arn]
        )
        entities = await tx.attachments.for_policy(policy.arn)
    assert [(a.principal_type, a.principal_id) for a in entities] == [("group", group.id), ("user", user.id)]
    async with db.write() as tx:
        assert await tx.attachments.detach("user", user.id, YAML_POLICY) is True
        assert await tx.attachments.detach("user", user.id, YAML_POLICY) is False
    assert len((await db.load()).attachments) == 2


async def test_inline_policies_are_put_replaced_and_deleted(db: IamDatabase) -> None:
    async with db.write() as tx:
        role = await tx.roles.create("r", trust_policy="{}")
        assert await tx.inline_policies.put("role", role.id, "b", DOC_1) is True
        assert await tx.inline_policies.put("role", role.id, "a", DOC_1) is True
        assert await tx.inline_policies.put("role", role.id, "b", DOC_2) is False  # replaced
    async with db.read() as tx:
        assert [p.name for p in await tx.inline_policies.for_principal("role", role.id)] == ["a", "b"]
        found = await tx.inline_policies.get("role", role.id, "b")
        assert found is not None and found.document == DOC_2
        assert await tx.inline_policies.get("user", role.id, "b") is None  # another principal type
    async with db.write() as tx:
        assert await tx.inline_policies.delete("role", role.id, "a") is True
        assert await tx.inline_policies.delete("role", role.id, "a") is False
    assert [p.name for p in (await db.load()).inline_policies] == ["b"]
