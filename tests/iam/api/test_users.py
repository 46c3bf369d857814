"""IAM users over the Query API with boto3: create, get, list (paths, paging), delete, and the
authorization, audit and error behaviour every action shares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway import keys
from gateway.iam.denial import MARKER
from tests.iam.api.conftest import ACCOUNT, Api, error_of


def _names(iam: Any, **kwargs: Any) -> list[str]:
    return [u["UserName"] for u in iam.list_users(**kwargs)["Users"]]


def test_create_get_list_delete(admin: Any) -> None:
    created = admin.create_user(
        UserName="alice", Path="/engineering/", Tags=[{"Key": "team", "Value": "data"}]
    )
    user = created["User"]
    assert user["UserName"] == "alice" and user["Path"] == "/engineering/"
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/engineering/alice"
    assert user["UserId"].startswith("AIDA") and len(user["UserId"]) == 21
    assert user["Tags"] == [{"Key": "team", "Value": "data"}]
    got = admin.get_user(UserName="ALICE")["User"]  # names are case-insensitive
    assert {k: got[k] for k in ("UserName", "UserId", "Arn", "CreateDate")} == {
        k: user[k] for k in ("UserName", "UserId", "Arn", "CreateDate")
    }
    assert "alice" in _names(admin)
    admin.delete_user(UserName="alice")
    with pytest.raises(ClientError) as excinfo:
        admin.get_user(UserName="alice")
    assert error_of(excinfo) == ("NoSuchEntity", 404, "The user with name alice cannot be found.")


def test_create_twice_is_entity_already_exists(admin: Any) -> None:
    admin.create_user(UserName="dup")
    with pytest.raises(ClientError) as excinfo:
        admin.create_user(UserName="DUP")
    assert error_of(excinfo)[:2] == ("EntityAlreadyExists", 409)
    admin.delete_user(UserName="dup")


def test_list_users_by_path_prefix_and_in_pages(admin: Any) -> None:
    for n in range(5):
        admin.create_user(UserName=f"pager-{n}", Path="/pager/")
    admin.create_user(UserName="pager-elsewhere", Path="/other/")
    assert _names(admin, PathPrefix="/pager/") == [f"pager-{n}" for n in range(5)]
    first = admin.list_users(PathPrefix="/pager/", MaxItems=2)
    assert [u["UserName"] for u in first["Users"]] == ["pager-0", "pager-1"] and first["IsTruncated"] is True
    second = admin.list_users(PathPrefix="/pager/", MaxItems=2, Marker=first["Marker"])
    assert [u["UserName"] for u in second["Users"]] == ["pager-2", "pager-3"]
    last = admin.list_users(PathPrefix="/pager/", MaxItems=2, Marker=second["Marker"])
    assert [u["UserName"] for u in last["Users"]] == ["pager-4"] and last["IsTruncated"] is False
    assert "Marker" not in last
    # boto3's paginator follows the markers the same way.
    pages = admin.get_paginator("list_users").paginate(PathPrefix="/pager/", PaginationConfig={"PageSize": 3})
    assert [u["UserName"] for page in pages for u in page["Users"]] == [f"pager-{n}" for n in range(5)]
    for n in range(5):
        admin.delete_user(UserName=f"pager-{n}")
    admin.delete_user(UserName="pager-elsewhere")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"UserName": "bad name"}, "at 'userName' failed to satisfy constraint: Member must satisfy regular"),
        ({"UserName": "x" * 65}, "at 'userName' failed to satisfy constraint: Member must have length less"),
        ({"UserName": "ok", "Path": "no-slashes"}, "at 'path' failed to satisfy constraint"),
        ({"UserName": "ok", "Tags": [{"Key": "bad\x01", "Value": "v"}]}, "at 'tags.member.1.key'"),
    ],
)
def test_invalid_parameters_are_validation_errors(admin: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        admin.create_user(**kwargs)
    code, status, text = error_of(excinfo)
    assert (code, status) == ("ValidationError", 400) and message in text
    assert "ok" not in _names(admin)


def test_duplicate_tag_keys_are_invalid_input(admin: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        admin.create_user(UserName="tagged", Tags=[{"Key": "a", "Value": "1"}, {"Key": "A", "Value": "2"}])
    assert error_of(excinfo)[:2] == ("InvalidInput", 400)


def test_permissions_boundary_must_name_a_policy(admin: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        admin.create_user(UserName="bounded", PermissionsBoundary="arn:aws:iam::123456789012:nonsense/x")
    assert error_of(excinfo)[:2] == ("InvalidInput", 400)
    missing = f"arn:aws:iam::{ACCOUNT}:policy/nothing-here"
    with pytest.raises(ClientError) as excinfo:
        admin.create_user(UserName="bounded", PermissionsBoundary=missing)
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)
    assert "bounded" not in _names(admin)
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/s3-read"  # a policy the configuration declares
    user = admin.create_user(UserName="bounded", PermissionsBoundary=boundary)["User"]
    assert user["PermissionsBoundary"] == {
        "PermissionsBoundaryType": "Policy",
        "PermissionsBoundaryArn": boundary,
    }
    admin.delete_user(UserName="bounded")


def test_get_user_without_a_name_needs_user_credentials(admin: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        admin.get_user()
    assert error_of(excinfo) == (
        "ValidationError",
        400,
        "Must specify userName when calling with non-User credentials",
    )


def test_delete_missing_user_is_no_such_entity(admin: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        admin.delete_user(UserName="ghost")
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)


def test_unauthorized_caller_gets_access_denied_and_nothing_changes(api: Api, admin: Any) -> None:
    nobody = api.client("nobody")
    with pytest.raises(ClientError) as excinfo:
        nobody.create_user(UserName="intruder")
    code, status, message = error_of(excinfo)
    text, marker, blob = message.partition(" " + MARKER)  # the decodable explanation ends it
    assert (code, status, text) == (
        "AccessDenied",
        403,
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/nobody/api-test is not authorized to perform: "
        f"iam:CreateUser on resource: arn:aws:iam::{ACCOUNT}:user/intruder",
    )
    assert marker and blob
    assert "intruder" not in _names(admin)
    with pytest.raises(ClientError) as excinfo:
        nobody.list_users()
    assert error_of(excinfo)[0] == "AccessDenied"
    assert f"iam:ListUsers on resource: arn:aws:iam::{ACCOUNT}:user/" in error_of(excinfo)[2]

    admin.create_user(UserName="victim")
    reader = api.client("reader")
    assert "victim" in _names(reader)
    with pytest.raises(ClientError) as excinfo:
        reader.delete_user(UserName="victim")
    assert error_of(excinfo)[0] == "AccessDenied"
    assert admin.get_user(UserName="victim")["User"]["UserName"] == "victim"
    admin.delete_user(UserName="victim")


def test_resource_is_the_users_arn_with_its_path(api: Api, admin: Any) -> None:
    team = api.client("team")  # may manage users under /team/ only
    team.create_user(UserName="member", Path="/team/")
    assert team.get_user(UserName="member")["User"]["Path"] == "/team/"
    with pytest.raises(ClientError) as excinfo:
        team.create_user(UserName="outsider", Path="/other/")
    assert error_of(excinfo)[0] == "AccessDenied"
    admin.create_user(UserName="outsider", Path="/other/")
    with pytest.raises(ClientError) as excinfo:
        team.delete_user(UserName="outsider")
    assert f"on resource: arn:aws:iam::{ACCOUNT}:user/other/outsider" in error_of(excinfo)[2]
    team.delete_user(UserName="member")
    admin.delete_user(UserName="outsider")


def test_writes_are_audited_with_their_parameters(api: Api, admin: Any) -> None:
    admin.create_user(UserName="audited", Path="/a/", Tags=[{"Key": "k", "Value": "v"}])
    admin.delete_user(UserName="audited")
    created = api.audit.named("CreateUser")[-1]
    assert created["eventSource"] == "iam.amazonaws.com"
    assert created["requestParameters"] == {
        "userName": "audited",
        "path": "/a/",
        "tags": [{"key": "k", "value": "v"}],
    }
    assert created["resources"] == [
        {"type": "AWS::IAM::User", "ARN": f"arn:aws:iam::{ACCOUNT}:user/a/audited"}
    ]
    assert created["userIdentity"]["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/admin/api-test"
    deleted = api.audit.named("DeleteUser")[-1]
    assert deleted["requestParameters"] == {"userName": "audited"} and "errorCode" not in deleted
    assert (created["readOnly"], deleted["readOnly"]) == (False, False)
    admin.list_users(PathPrefix="/a/")
    assert api.audit.named("ListUsers")[-1]["readOnly"] is True


def test_unknown_parameters_are_refused(api: Api) -> None:
    iam = api.client("admin")

    def smuggle(request: Any, **_: Any) -> None:
        request.data["Bogus"] = "1"

    iam.meta.events.register("before-sign.iam.ListUsers", smuggle)
    with pytest.raises(ClientError) as excinfo:
        iam.list_users()
    assert error_of(excinfo) == ("ValidationError", 400, "Unknown parameter Bogus")


def test_update_user_renames_and_moves(api: Api, admin: Any) -> None:
    admin.create_user(UserName="before", Path="/old/", Tags=[{"Key": "k", "Value": "v"}])
    admin.update_user(UserName="before", NewUserName="after", NewPath="/new/")
    user = admin.get_user(UserName="after")["User"]
    assert (user["Path"], user["Arn"]) == ("/new/", f"arn:aws:iam::{ACCOUNT}:user/new/after")
    assert user["Tags"] == [{"Key": "k", "Value": "v"}]  # the entity stays, with what it holds
    with pytest.raises(ClientError) as excinfo:
        admin.get_user(UserName="before")
    assert error_of(excinfo)[0] == "NoSuchEntity"
    admin.create_user(UserName="taken")
    with pytest.raises(ClientError) as excinfo:
        admin.update_user(UserName="after", NewUserName="taken")
    assert error_of(excinfo)[:2] == ("EntityAlreadyExists", 409)
    with pytest.raises(ClientError) as excinfo:
        admin.update_user(UserName="ghost", NewUserName="ghost2")
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)
    # A rename needs the action on the new ARN too: team may not move a user out of /team/.
    team = api.client("team")
    team.create_user(UserName="mover", Path="/team/")
    with pytest.raises(ClientError) as excinfo:
        team.update_user(UserName="mover", NewPath="/elsewhere/")
    assert f"on resource: arn:aws:iam::{ACCOUNT}:user/elsewhere/mover" in error_of(excinfo)[2]
    assert team.get_user(UserName="mover")["User"]["Path"] == "/team/"
    for name in ("after", "taken", "mover"):
        admin.delete_user(UserName=name)


def test_tag_untag_list_tags(admin: Any) -> None:
    admin.create_user(UserName="tags")
    admin.tag_user(UserName="tags", Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "1"}])
    admin.tag_user(UserName="tags", Tags=[{"Key": "A", "Value": "one"}])  # overwrites, in any case
    assert admin.list_user_tags(UserName="tags")["Tags"] == [
        {"Key": "A", "Value": "one"},
        {"Key": "b", "Value": "2"},
    ]
    first = admin.list_user_tags(UserName="tags", MaxItems=1)
    assert first["Tags"] == [{"Key": "A", "Value": "one"}] and first["IsTruncated"] is True
    rest = admin.list_user_tags(UserName="tags", Marker=first["Marker"])
    assert rest["Tags"] == [{"Key": "b", "Value": "2"}] and rest["IsTruncated"] is False
    admin.untag_user(UserName="tags", TagKeys=["a"])
    assert admin.list_user_tags(UserName="tags")["Tags"] == [{"Key": "b", "Value": "2"}]
    # 50 tags at most: one more is LimitExceeded and changes nothing.
    admin.tag_user(UserName="tags", Tags=[{"Key": f"k{n}", "Value": ""} for n in range(49)])
    with pytest.raises(ClientError) as excinfo:
        admin.tag_user(UserName="tags", Tags=[{"Key": "one-too-many", "Value": "x"}])
    assert error_of(excinfo)[:2] == ("LimitExceeded", 409)
    assert len(admin.list_user_tags(UserName="tags")["Tags"]) == 50
    with pytest.raises(ClientError) as excinfo:
        admin.list_user_tags(UserName="ghost")
    assert error_of(excinfo)[0] == "NoSuchEntity"
    admin.delete_user(UserName="tags")


def test_permissions_boundary_put_and_delete(admin: Any) -> None:
    admin.create_user(UserName="boxed")
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/s3-read"
    admin.put_user_permissions_boundary(UserName="boxed", PermissionsBoundary=boundary)
    got = admin.get_user(UserName="boxed")["User"]
    assert got["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    with pytest.raises(ClientError) as excinfo:
        admin.put_user_permissions_boundary(UserName="boxed", PermissionsBoundary=boundary + "-missing")
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as excinfo:
        admin.put_user_permissions_boundary(UserName="boxed", PermissionsBoundary="arn:aws:s3:::bucket/key1")
    assert error_of(excinfo)[:2] == ("InvalidInput", 400)
    assert (
        admin.get_user(UserName="boxed")["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    )
    admin.delete_user_permissions_boundary(UserName="boxed")
    assert "PermissionsBoundary" not in admin.get_user(UserName="boxed")["User"]
    admin.delete_user(UserName="boxed")


def test_delete_user_conflicts_with_what_it_holds(api: Api, admin: Any) -> None:
    """A user is deleted only once its MFA devices and attached policies are gone (added here
    straight in the database: their actions are other families')."""
    user_id = admin.create_user(UserName="holder")["User"]["UserId"]
    database = api.app[keys.DATABASE].database
    serial = f"arn:aws:iam::{ACCOUNT}:mfa/holder"
    policy = f"arn:aws:iam::{ACCOUNT}:policy/s3-read"

    async def give() -> None:
        async with database.write() as tx:
            await tx.mfa_devices.create(serial, name="holder", path="/", seed=b"0" * 20)
            await tx.mfa_devices.enable(serial, user_id, datetime.now(UTC))
            await tx.attachments.attach("user", user_id, policy)

    async def take(step: str) -> None:
        async with database.write() as tx:
            if step == "mfa":
                await tx.mfa_devices.deactivate(serial)
                await tx.mfa_devices.delete(serial)
            else:
                await tx.attachments.detach("user", user_id, policy)

    api.loop.run(give())
    for message, step in (
        ("Cannot delete entity, must delete MFA device first.", "mfa"),
        ("Cannot delete entity, must detach all policies first.", "policy"),
    ):
        with pytest.raises(ClientError) as excinfo:
            admin.delete_user(UserName="holder")
        assert error_of(excinfo) == ("DeleteConflict", 409, message)
        assert admin.get_user(UserName="holder")["User"]["UserId"] == user_id
        api.loop.run(take(step))
    admin.delete_user(UserName="holder")
