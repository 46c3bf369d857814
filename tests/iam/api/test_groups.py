"""Groups and membership over the Query API with boto3."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway.iam.denial import MARKER
from tests.iam.api.conftest import ACCOUNT, Api, error_of


def test_create_get_list_update_delete(admin: Any) -> None:
    group = admin.create_group(GroupName="devs", Path="/eng/")["Group"]
    assert group["Arn"] == f"arn:aws:iam::{ACCOUNT}:group/eng/devs" and group["GroupId"].startswith("AGPA")
    got = admin.get_group(GroupName="devs")
    assert got["Group"] == group and got["Users"] == [] and got["IsTruncated"] is False
    with pytest.raises(ClientError) as excinfo:
        admin.create_group(GroupName="DEVS")
    assert error_of(excinfo)[:2] == ("EntityAlreadyExists", 409)
    admin.create_group(GroupName="ops", Path="/ops/")
    assert [g["GroupName"] for g in admin.list_groups(PathPrefix="/eng/")["Groups"]] == ["devs"]
    page = admin.list_groups(MaxItems=1)
    assert page["IsTruncated"] is True and [g["GroupName"] for g in page["Groups"]] == ["devs"]
    rest = admin.list_groups(Marker=page["Marker"])
    assert [g["GroupName"] for g in rest["Groups"]] == ["ops"]
    admin.update_group(GroupName="devs", NewGroupName="developers", NewPath="/dev/")
    assert (
        admin.get_group(GroupName="developers")["Group"]["Arn"]
        == f"arn:aws:iam::{ACCOUNT}:group/dev/developers"
    )
    with pytest.raises(ClientError) as excinfo:
        admin.update_group(GroupName="developers", NewGroupName="ops")
    assert error_of(excinfo)[:2] == ("EntityAlreadyExists", 409)
    admin.delete_group(GroupName="developers")
    admin.delete_group(GroupName="ops")
    with pytest.raises(ClientError) as excinfo:
        admin.get_group(GroupName="developers")
    assert error_of(excinfo) == ("NoSuchEntity", 404, "The group with name developers cannot be found.")
    with pytest.raises(ClientError) as excinfo:
        admin.delete_group(GroupName="developers")
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as excinfo:
        admin.create_group(GroupName="g" * 129)
    assert error_of(excinfo)[0] == "ValidationError" and "'groupName'" in error_of(excinfo)[2]


def test_membership(admin: Any) -> None:
    admin.create_group(GroupName="team")
    for name in ("m-b", "m-a", "m-c"):
        admin.create_user(UserName=name)
        admin.add_user_to_group(GroupName="team", UserName=name)
    admin.add_user_to_group(GroupName="team", UserName="m-a")  # again: no change, no error
    got = admin.get_group(GroupName="team")
    assert [u["UserName"] for u in got["Users"]] == ["m-a", "m-b", "m-c"]
    first = admin.get_group(GroupName="team", MaxItems=2)
    assert [u["UserName"] for u in first["Users"]] == ["m-a", "m-b"] and first["IsTruncated"] is True
    rest = admin.get_group(GroupName="team", Marker=first["Marker"])
    assert [u["UserName"] for u in rest["Users"]] == ["m-c"]
    assert [g["GroupName"] for g in admin.list_groups_for_user(UserName="m-a")["Groups"]] == ["team"]

    # Neither the group nor a member can be deleted while they are linked.
    with pytest.raises(ClientError) as excinfo:
        admin.delete_group(GroupName="team")
    assert error_of(excinfo) == (
        "DeleteConflict",
        409,
        "Cannot delete entity, must remove users from group first.",
    )
    with pytest.raises(ClientError) as excinfo:
        admin.delete_user(UserName="m-a")
    assert error_of(excinfo) == (
        "DeleteConflict",
        409,
        "Cannot delete entity, must remove user from all groups first.",
    )

    admin.remove_user_from_group(GroupName="team", UserName="m-a")
    with pytest.raises(ClientError) as excinfo:
        admin.remove_user_from_group(GroupName="team", UserName="m-a")
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as excinfo:
        admin.add_user_to_group(GroupName="team", UserName="ghost")
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as excinfo:
        admin.add_user_to_group(GroupName="no-group", UserName="m-a")
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)
    assert admin.list_groups_for_user(UserName="m-a")["Groups"] == []
    for name in ("m-b", "m-c"):
        admin.remove_user_from_group(GroupName="team", UserName=name)
    for name in ("m-a", "m-b", "m-c"):
        admin.delete_user(UserName=name)
    admin.delete_group(GroupName="team")


def test_at_most_ten_groups_per_user(admin: Any) -> None:
    admin.create_user(UserName="joiner")
    names = [f"club-{n:02}" for n in range(11)]
    for name in names:
        admin.create_group(GroupName=name)
    for name in names[:10]:
        admin.add_user_to_group(GroupName=name, UserName="joiner")
    with pytest.raises(ClientError) as excinfo:
        admin.add_user_to_group(GroupName=names[10], UserName="joiner")
    assert error_of(excinfo) == ("LimitExceeded", 409, "Cannot exceed quota for GroupsPerUser: 10")
    assert admin.get_group(GroupName=names[10])["Users"] == []
    page = admin.list_groups_for_user(UserName="joiner", MaxItems=4)
    assert [g["GroupName"] for g in page["Groups"]] == names[:4] and page["IsTruncated"] is True
    pages = admin.get_paginator("list_groups_for_user").paginate(
        UserName="joiner", PaginationConfig={"PageSize": 3}
    )
    assert [g["GroupName"] for p in pages for g in p["Groups"]] == names[:10]
    for name in names[:10]:
        admin.remove_user_from_group(GroupName=name, UserName="joiner")
    for name in names:
        admin.delete_group(GroupName=name)
    admin.delete_user(UserName="joiner")


def test_membership_is_authorized_on_the_group(api: Api, admin: Any) -> None:
    admin.create_group(GroupName="closed")
    team = api.client("team")  # may manage /team/ users, not groups
    team.create_user(UserName="hopeful", Path="/team/")
    with pytest.raises(ClientError) as excinfo:
        team.add_user_to_group(GroupName="closed", UserName="hopeful")
    text = error_of(excinfo)[2].partition(" " + MARKER)[0]  # before the decodable explanation
    assert text.endswith(f"iam:AddUserToGroup on resource: arn:aws:iam::{ACCOUNT}:group/closed")
    assert admin.get_group(GroupName="closed")["Users"] == []
    event = api.audit.named("AddUserToGroup")[-1]
    assert event["errorCode"] == "AccessDenied"
    assert event["requestParameters"] == {"groupName": "closed", "userName": "hopeful"}
    team.delete_user(UserName="hopeful")
    admin.delete_group(GroupName="closed")
