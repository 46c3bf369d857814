"""Conformance: users, groups and membership, roles, instance profiles (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from gateway.credentials import KeyRing
from gateway.db import IamDatabase
from gateway.errors import DeleteConflict, EntityAlreadyExists, NoSuchEntity
from tests.conftest import fresh_postgres_database
from tests.db.conftest import ACCOUNT, open_database

TRUST = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"}}]}'
)


async def test_users_are_created_with_aws_ids_and_found_by_name_in_any_case(db: IamDatabase) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    async with db.write() as tx:
        alice = await tx.users.create("Alice", path="/eng/", tags={"team": "infra"})
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", alice.id)
    assert alice.arn == f"arn:aws:iam::{ACCOUNT}:user/eng/Alice"
    assert alice.tags == (("team", "infra"),) and alice.boundary_arn is None
    assert before < alice.created_at <= datetime.now(UTC) and alice.created_at.tzinfo is UTC
    async with db.read() as tx:
        assert await tx.users.get("alice") == alice
        assert await tx.users.get("ALICE") == alice
        assert await tx.users.get_by_id(alice.id) == alice
        assert await tx.users.get("bob") is None
        with pytest.raises(NoSuchEntity, match=r"The user with name bob cannot be found\."):
            await tx.users.require("bob")


async def test_user_names_are_unique_case_insensitively(db: IamDatabase) -> None:
    async with db.write() as tx:
        await tx.users.create("alice")
    with pytest.raises(EntityAlreadyExists, match=r"User with name ALICE already exists\."):
        async with db.write() as tx:
            await tx.users.create("ALICE")


async def test_users_list_by_path_prefix_in_name_order_with_paging(db: IamDatabase) -> None:
    async with db.write() as tx:
        for name, path in (
            ("carol", "/ops/"),
            ("Bob", "/eng/"),
            ("alice", "/eng/team/"),
            ("dave", "/eng_x/"),
        ):
            await tx.users.create(name, path=path)
    async with db.read() as tx:
        assert [u.name for u in await tx.users.list()] == ["alice", "Bob", "carol", "dave"]
        assert [u.name for u in await tx.users.list("/eng/")] == ["alice", "Bob"]  # "_" is no wildcard
        assert [u.name for u in await tx.users.list(limit=2)] == ["alice", "Bob"]
        assert [u.name for u in await tx.users.list(after="bob", limit=5)] == ["carol", "dave"]
        assert await tx.users.count() == 4


async def test_lists_page_by_code_point_whatever_the_database_collation(
    postgres_admin_url: str, keyring: KeyRing
) -> None:
    """The API merges the configuration's entities, sorted in Python, with the database's, paged
    by a marker compared in SQL: one order on both. An ICU collation (as many PostgreSQL servers
    have by default) sorts "a-b" after "ab"; the lists must not."""
    names = ["ab", "a-b", "a.c", "a_c", "A+d", "a=b", "a@b", "a,b", "B", "a0"]
    expected = sorted(names, key=str.lower)
    icu = "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en' LOCALE 'C.UTF-8'"
    with fresh_postgres_database(postgres_admin_url, icu) as url:
        db = open_database(url, keyring)
        await db.start()
        try:
            async with db.write() as tx:
                for name in names:
                    await tx.users.create(name)
                group = await tx.groups.create("g")
                for user in await tx.users.list():
                    await tx.groups.add_member(group.id, user.id)
            async with db.read() as tx:
                assert [u.name for u in await tx.users.list()] == expected
                paged, after = [], None
                while page := await tx.users.list(after=after, limit=3):
                    paged += [u.name for u in page]
                    after = page[-1].name
                assert paged == expected
                assert [u.name for u in await tx.groups.members(group.id)] == expected
        finally:
            await db.close()


async def test_path_prefixes_compare_case_sensitively(db: IamDatabase) -> None:
    """A List authorized on ``user/secret/*`` must not return ``/Secret/`` (SQLite's LIKE would)."""
    async with db.write() as tx:
        await tx.users.create("hidden", path="/Secret/")
        await tx.users.create("seen", path="/secret/")
        await tx.users.create("percent", path="/secret%/")
    async with db.read() as tx:
        assert [u.name for u in await tx.users.list("/secret/")] == ["seen"]
        assert [u.name for u in await tx.users.list("/Secret/")] == ["hidden"]
        assert [u.name for u in await tx.users.list("/secret%")] == ["percent"]  # "%" is no wildcard


async def test_renaming_a_user_keeps_its_id_and_refuses_a_taken_name(db: IamDatabase) -> None:
    async with db.write() as tx:
        alice = await tx.users.create("alice")
        await tx.users.create("bob")
    async with db.write() as tx:
        renamed = await tx.users.update("alice", new_name="alicia", new_path="/new/")
    assert renamed.id == alice.id and renamed.arn == f"arn:aws:iam::{ACCOUNT}:user/new/alicia"
    with pytest.raises(EntityAlreadyExists):
        async with db.write() as tx:
            await tx.users.update("alicia", new_name="BOB")
    async with db.write() as tx:
        assert (await tx.users.update("alicia", new_name="Alicia")).name == "Alicia"  # its own name, recased
        assert (await tx.users.set_boundary("alicia", "arn:aws:iam::aws:policy/B")).boundary_arn.endswith(
            "/B"
        )
        assert (await tx.users.set_boundary("alicia", None)).boundary_arn is None


async def test_deleting_a_user_needs_its_keys_groups_and_policies_gone(db: IamDatabase) -> None:
    async with db.write() as tx:
        user = await tx.users.create("alice", tags={"a": "1"})
        group = await tx.groups.create("devs")
        key = await tx.access_keys.create(user.id, "s" * 40)
        await tx.groups.add_member(group.id, user.id)
        await tx.attachments.attach("user", user.id, f"arn:aws:iam::{ACCOUNT}:policy/p")
        await tx.inline_policies.put("user", user.id, "inline", "{}")
    steps = [
        ("must delete access keys first", lambda tx: tx.access_keys.delete(key.id)),
        ("must remove user from all groups first", lambda tx: tx.groups.remove_member(group.id, user.id)),
        (
            "must detach all policies first",
            lambda tx: tx.attachments.detach("user", user.id, f"arn:aws:iam::{ACCOUNT}:policy/p"),
        ),
        ("must delete policies first", lambda tx: tx.inline_policies.delete("user", user.id, "inline")),
    ]
    for message, fix in steps:
        with pytest.raises(DeleteConflict, match=message):
            async with db.write() as tx:
                await tx.users.delete("alice")
        async with db.write() as tx:
            await fix(tx)
    async with db.write() as tx:
        await tx.users.delete("alice")
    snapshot = await db.load()
    assert snapshot.users == () and snapshot.memberships == ()
    async with db.write() as tx:  # the tags went with it: a new alice starts bare
        assert (await tx.users.create("alice")).tags == ()


async def test_a_user_with_an_mfa_device_cannot_be_deleted(db: IamDatabase) -> None:
    serial = f"arn:aws:iam::{ACCOUNT}:mfa/alice"
    async with db.write() as tx:
        user = await tx.users.create("alice")
        await tx.mfa_devices.create(serial, name="alice", path="/", seed=b"0123456789")
        await tx.mfa_devices.enable(serial, user.id, datetime.now(UTC))
    with pytest.raises(DeleteConflict, match="must delete MFA device first"):
        async with db.write() as tx:
            await tx.users.delete("alice")


async def test_user_tags_are_unique_case_insensitively_and_removable(db: IamDatabase) -> None:
    async with db.write() as tx:
        await tx.users.create("alice", tags={"Team": "a", "env": "prod"})
        await tx.users.tag("alice", {"team": "b", "cost": "42"})
    async with db.read() as tx:
        assert (await tx.users.require("alice")).tags == (("cost", "42"), ("env", "prod"), ("team", "b"))
    async with db.write() as tx:
        await tx.users.untag("alice", ["ENV", "missing"])
    async with db.read() as tx:
        assert dict((await tx.users.require("alice")).tags) == {"cost": "42", "team": "b"}
        assert dict((await tx.users.list())[0].tags) == {"cost": "42", "team": "b"}


async def test_groups_hold_members_and_refuse_deletion_until_empty(db: IamDatabase) -> None:
    async with db.write() as tx:
        group = await tx.groups.create("Devs", path="/eng/")
        alice = await tx.users.create("alice")
        bob = await tx.users.create("bob")
        assert await tx.groups.add_member(group.id, bob.id) is True
        assert await tx.groups.add_member(group.id, alice.id) is True
        assert await tx.groups.add_member(group.id, alice.id) is False  # already a member
    assert re.fullmatch(r"AGPA[A-Z2-7]{17}", group.id)
    assert group.arn == f"arn:aws:iam::{ACCOUNT}:group/eng/Devs"
    async with db.read() as tx:
        assert [u.name for u in await tx.groups.members(group.id)] == ["alice", "bob"]
        assert [g.name for g in await tx.groups.groups_for_user(alice.id)] == ["Devs"]
        with pytest.raises(EntityAlreadyExists):
            await tx.groups.create("devs")  # refused before anything is written (a read transaction)
    with pytest.raises(DeleteConflict, match="must remove users from group first"):
        async with db.write() as tx:
            await tx.groups.delete("devs")
    async with db.write() as tx:
        assert await tx.groups.remove_member(group.id, alice.id) is True
        assert await tx.groups.remove_member(group.id, alice.id) is False
        await tx.groups.remove_member(group.id, bob.id)
        await tx.groups.delete("DEVS")
        with pytest.raises(NoSuchEntity):
            await tx.groups.add_member(group.id, alice.id)
    assert (await db.load()).groups == ()


async def test_membership_refuses_unknown_users(db: IamDatabase) -> None:
    async with db.write() as tx:
        group = await tx.groups.create("devs")
    with pytest.raises(NoSuchEntity, match="user with id AIDANOPE"):
        async with db.write() as tx:
            await tx.groups.add_member(group.id, "AIDANOPE")


async def test_roles_keep_trust_policy_duration_description_and_boundary(db: IamDatabase) -> None:
    async with db.write() as tx:
        role = await tx.roles.create(
            "Deploy",
            path="/ci/",
            trust_policy=TRUST,
            description="CI",
            max_session_duration=7200,
            tags={"k": "v"},
        )
    assert re.fullmatch(r"AROA[A-Z2-7]{17}", role.id)
    assert role.arn == f"arn:aws:iam::{ACCOUNT}:role/ci/Deploy"
    assert (role.trust_policy, role.description, role.max_session_duration) == (TRUST, "CI", 7200)
    async with db.write() as tx:
        await tx.roles.update("deploy", description="changed", max_session_duration=3600)
        await tx.roles.set_trust_policy("deploy", "{}")
        await tx.roles.set_boundary("deploy", f"arn:aws:iam::{ACCOUNT}:policy/boundary")
    async with db.read() as tx:
        updated = await tx.roles.require("DEPLOY")
    assert (updated.description, updated.max_session_duration, updated.trust_policy) == (
        "changed",
        3600,
        "{}",
    )
    assert updated.boundary_arn == f"arn:aws:iam::{ACCOUNT}:policy/boundary" and updated.tags == (("k", "v"),)
    with pytest.raises(EntityAlreadyExists, match=r"Role with name deploy already exists\."):
        async with db.write() as tx:
            await tx.roles.create("deploy", trust_policy=TRUST)
    with pytest.raises(NoSuchEntity, match=r"The role with name nope cannot be found\."):
        async with db.write() as tx:
            await tx.roles.update("nope", description="x")


async def test_a_role_in_an_instance_profile_or_with_policies_cannot_be_deleted(db: IamDatabase) -> None:
    async with db.write() as tx:
        role = await tx.roles.create("app", trust_policy=TRUST)
        profile = await tx.instance_profiles.create("app-profile", path="/p/", tags={"t": "1"})
        assert await tx.instance_profiles.add_role(profile.id, role.id) is True
        assert await tx.instance_profiles.add_role(profile.id, role.id) is False
        await tx.inline_policies.put("role", role.id, "p", "{}")
    assert re.fullmatch(r"AIPA[A-Z2-7]{17}", profile.id)
    async with db.read() as tx:
        (found,) = await tx.instance_profiles.for_role(role.id)
        assert (
            found.role_ids == (role.id,)
            and found.arn == f"arn:aws:iam::{ACCOUNT}:instance-profile/p/app-profile"
        )
        assert (await tx.instance_profiles.require("APP-PROFILE")).tags == (("t", "1"),)
    with pytest.raises(DeleteConflict, match="must remove roles from instance profile first"):
        async with db.write() as tx:
            await tx.roles.delete("app")
    with pytest.raises(DeleteConflict, match="must remove roles from instance profile first"):
        async with db.write() as tx:
            await tx.instance_profiles.delete("app-profile")
    async with db.write() as tx:
        await tx.instance_profiles.remove_role(profile.id, role.id)
        await tx.instance_profiles.delete("app-profile")
    with pytest.raises(DeleteConflict, match="must delete policies first"):
        async with db.write() as tx:
            await tx.roles.delete("app")
    async with db.write() as tx:
        await tx.inline_policies.delete("role", role.id, "p")
        await tx.roles.delete("app")
    snapshot = await db.load()
    assert snapshot.roles == () and snapshot.instance_profiles == ()
    with pytest.raises(NoSuchEntity, match=r"Instance Profile gone cannot be found\."):
        async with db.read() as tx:
            await tx.instance_profiles.require("gone")


async def test_names_past_the_column_limits_are_refused_alike(db: IamDatabase) -> None:
    with pytest.raises(ValueError, match="1-64"):
        async with db.write() as tx:
            await tx.users.create("u" * 65)
    with pytest.raises(ValueError, match="path"):
        async with db.write() as tx:
            await tx.users.create("u", path="/" + "p" * 512 + "/")
    assert (await db.load()).users == ()
