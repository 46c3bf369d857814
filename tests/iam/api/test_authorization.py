"""Every write of the users, access keys, groups and inline policies families, called by a caller
whose policies allow only reads: AccessDenied in AWS's words, and the database not written at all
(its revision, bumped by any write, stays where it was)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway import keys
from gateway.iam.api import access_keys, groups, inline, users
from gateway.iam.denial import MARKER
from tests.iam.api.conftest import ACCOUNT, Api, error_of

DOC = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}'
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/s3-read"
USER = f"arn:aws:iam::{ACCOUNT}:user/authz/target"
GROUP = f"arn:aws:iam::{ACCOUNT}:group/authz-group"

# action -> (boto3 method, arguments, the resource AccessDenied names)
WRITES: dict[str, tuple[str, dict[str, Any], str]] = {
    "CreateUser": (
        "create_user",
        {"UserName": "new-one", "Path": "/authz/"},
        f"arn:aws:iam::{ACCOUNT}:user/authz/new-one",
    ),
    "UpdateUser": ("update_user", {"UserName": "target", "NewUserName": "renamed"}, USER),
    "DeleteUser": ("delete_user", {"UserName": "target"}, USER),
    "TagUser": ("tag_user", {"UserName": "target", "Tags": [{"Key": "k", "Value": "v"}]}, USER),
    "UntagUser": ("untag_user", {"UserName": "target", "TagKeys": ["team"]}, USER),
    "PutUserPermissionsBoundary": (
        "put_user_permissions_boundary",
        {"UserName": "target", "PermissionsBoundary": BOUNDARY},
        USER,
    ),
    "DeleteUserPermissionsBoundary": ("delete_user_permissions_boundary", {"UserName": "target"}, USER),
    "CreateAccessKey": ("create_access_key", {"UserName": "target"}, USER),
    "UpdateAccessKey": (
        "update_access_key",
        {"UserName": "target", "AccessKeyId": "KEY", "Status": "Inactive"},
        USER,
    ),
    "DeleteAccessKey": ("delete_access_key", {"UserName": "target", "AccessKeyId": "KEY"}, USER),
    "CreateGroup": ("create_group", {"GroupName": "new-group"}, f"arn:aws:iam::{ACCOUNT}:group/new-group"),
    "UpdateGroup": ("update_group", {"GroupName": "authz-group", "NewGroupName": "renamed-group"}, GROUP),
    "DeleteGroup": ("delete_group", {"GroupName": "authz-group"}, GROUP),
    "AddUserToGroup": ("add_user_to_group", {"GroupName": "authz-group", "UserName": "target"}, GROUP),
    "RemoveUserFromGroup": (
        "remove_user_from_group",
        {"GroupName": "authz-group", "UserName": "target"},
        GROUP,
    ),
    "PutUserPolicy": (
        "put_user_policy",
        {"UserName": "target", "PolicyName": "p", "PolicyDocument": DOC},
        USER,
    ),
    "DeleteUserPolicy": ("delete_user_policy", {"UserName": "target", "PolicyName": "held"}, USER),
    "PutGroupPolicy": (
        "put_group_policy",
        {"GroupName": "authz-group", "PolicyName": "p", "PolicyDocument": DOC},
        GROUP,
    ),
    "DeleteGroupPolicy": ("delete_group_policy", {"GroupName": "authz-group", "PolicyName": "held"}, GROUP),
}


def test_every_write_of_these_families_is_covered() -> None:
    families = (users, access_keys, groups, inline)
    assert {a.name for f in families for a in f.ACTIONS if a.writes} == set(WRITES)


@pytest.fixture(scope="module")
def key_id(api: Api, admin: Any) -> Iterator[str]:
    """A user with a key, a tag, a boundary, a group and policies: something for every write."""
    admin.create_user(UserName="target", Path="/authz/", Tags=[{"Key": "team", "Value": "x"}])
    admin.put_user_permissions_boundary(UserName="target", PermissionsBoundary=BOUNDARY)
    key = admin.create_access_key(UserName="target")["AccessKey"]["AccessKeyId"]
    admin.create_group(GroupName="authz-group")
    admin.add_user_to_group(GroupName="authz-group", UserName="target")
    admin.put_user_policy(UserName="target", PolicyName="held", PolicyDocument=DOC)
    admin.put_group_policy(GroupName="authz-group", PolicyName="held", PolicyDocument=DOC)
    yield key
    admin.delete_group_policy(GroupName="authz-group", PolicyName="held")
    admin.delete_user_policy(UserName="target", PolicyName="held")
    admin.remove_user_from_group(GroupName="authz-group", UserName="target")
    admin.delete_group(GroupName="authz-group")
    admin.delete_access_key(UserName="target", AccessKeyId=key)
    admin.delete_user(UserName="target")


@pytest.fixture(scope="module")
def reader(api: Api) -> Any:
    return api.client("reader")


def _revision(api: Api) -> int:
    return api.loop.run(api.app[keys.DATABASE].database.revision())


@pytest.mark.parametrize("action", sorted(WRITES))
def test_a_reader_cannot_write(api: Api, key_id: str, reader: Any, action: str) -> None:
    method, kwargs, resource = WRITES[action]
    kwargs = {k: key_id if v == "KEY" else v for k, v in kwargs.items()}
    before = _revision(api)
    with pytest.raises(ClientError) as excinfo:
        getattr(reader, method)(**kwargs)
    code, status, message = error_of(excinfo)
    text, marker, blob = message.partition(" " + MARKER)  # the decodable explanation ends it
    assert (code, status, text) == (
        "AccessDenied",
        403,
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/reader/api-test is not authorized to perform: "
        f"iam:{action} on resource: {resource}",
    )
    assert marker and blob
    assert _revision(api) == before
    event = api.audit.named(action)[-1]
    assert event["errorCode"] == "AccessDenied" and event["readOnly"] is False
