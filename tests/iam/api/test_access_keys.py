"""Access keys over the Query API with boto3: the secret is answered once and never audited, the
two-keys quota, status, last use, and the user's keys blocking its deletion."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway import keys
from gateway.db.records import AccessKeyUse
from tests.iam.api.conftest import Api, error_of


def test_create_list_update_delete(api: Api, admin: Any) -> None:
    admin.create_user(UserName="keyed")
    created = admin.create_access_key(UserName="keyed")["AccessKey"]
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", created["AccessKeyId"])
    assert len(created["SecretAccessKey"]) == 40
    assert (created["UserName"], created["Status"]) == ("keyed", "Active")
    listed = admin.list_access_keys(UserName="keyed")
    assert listed["AccessKeyMetadata"] == [
        {k: created[k] for k in ("UserName", "AccessKeyId", "Status", "CreateDate")}
    ]
    assert listed["IsTruncated"] is False
    admin.update_access_key(UserName="keyed", AccessKeyId=created["AccessKeyId"], Status="Inactive")
    (meta,) = admin.list_access_keys(UserName="keyed")["AccessKeyMetadata"]
    assert meta["Status"] == "Inactive"
    admin.delete_access_key(UserName="keyed", AccessKeyId=created["AccessKeyId"])
    assert admin.list_access_keys(UserName="keyed")["AccessKeyMetadata"] == []
    admin.delete_user(UserName="keyed")

    # The secret is in the response only: never in an audit event.
    secret = created["SecretAccessKey"]
    assert secret not in json.dumps(api.audit.events)
    event = api.audit.named("CreateAccessKey")[-1]
    assert event["requestParameters"] == {"userName": "keyed"}
    assert event["responseElements"]["accessKey"]["accessKeyId"] == created["AccessKeyId"]
    assert set(event["responseElements"]["accessKey"]) == {"accessKeyId", "status", "userName", "createDate"}


def test_at_most_two_keys_per_user(admin: Any) -> None:
    admin.create_user(UserName="twokeys")
    ids = [admin.create_access_key(UserName="twokeys")["AccessKey"]["AccessKeyId"] for _ in range(2)]
    with pytest.raises(ClientError) as excinfo:
        admin.create_access_key(UserName="twokeys")
    assert error_of(excinfo) == ("LimitExceeded", 409, "Cannot exceed quota for AccessKeysPerUser: 2")
    listed = admin.list_access_keys(UserName="twokeys")["AccessKeyMetadata"]
    assert sorted(k["AccessKeyId"] for k in listed) == sorted(ids)
    first = admin.list_access_keys(UserName="twokeys", MaxItems=1)
    assert first["IsTruncated"] is True and len(first["AccessKeyMetadata"]) == 1
    rest = admin.list_access_keys(UserName="twokeys", Marker=first["Marker"])
    assert len(rest["AccessKeyMetadata"]) == 1 and rest["IsTruncated"] is False

    # A user with keys cannot be deleted until they are.
    with pytest.raises(ClientError) as excinfo:
        admin.delete_user(UserName="twokeys")
    assert error_of(excinfo) == (
        "DeleteConflict",
        409,
        "Cannot delete entity, must delete access keys first.",
    )
    for key_id in ids:
        admin.delete_access_key(UserName="twokeys", AccessKeyId=key_id)
    admin.delete_user(UserName="twokeys")


def test_a_key_of_another_user_is_no_such_entity(admin: Any) -> None:
    admin.create_user(UserName="owner")
    admin.create_user(UserName="other")
    key_id = admin.create_access_key(UserName="owner")["AccessKey"]["AccessKeyId"]
    for call in (
        lambda: admin.update_access_key(UserName="other", AccessKeyId=key_id, Status="Inactive"),
        lambda: admin.delete_access_key(UserName="other", AccessKeyId=key_id),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo) == ("NoSuchEntity", 404, f"The Access Key with id {key_id} cannot be found.")
    assert admin.list_access_keys(UserName="owner")["AccessKeyMetadata"][0]["Status"] == "Active"
    with pytest.raises(ClientError) as excinfo:
        admin.create_access_key(UserName="ghost")
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as excinfo:
        admin.create_access_key()  # a role session has no user to default to
    assert error_of(excinfo)[:2] == ("ValidationError", 400)
    with pytest.raises(ClientError) as excinfo:
        admin.update_access_key(UserName="owner", AccessKeyId=key_id, Status="Sleeping")
    assert error_of(excinfo)[0] == "ValidationError"
    admin.delete_access_key(UserName="owner", AccessKeyId=key_id)
    admin.delete_user(UserName="owner")
    admin.delete_user(UserName="other")


def test_last_used(api: Api, admin: Any) -> None:
    admin.create_user(UserName="user-of-keys")
    key_id = admin.create_access_key(UserName="user-of-keys")["AccessKey"]["AccessKeyId"]
    never = admin.get_access_key_last_used(AccessKeyId=key_id)
    assert never["UserName"] == "user-of-keys"
    assert never["AccessKeyLastUsed"] == {"ServiceName": "N/A", "Region": "N/A"}
    at = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    database = api.app[keys.DATABASE].database
    api.loop.run(database.record_key_uses([AccessKeyUse(key_id, at, "s3", "eu-west-1")]))
    used = admin.get_access_key_last_used(AccessKeyId=key_id)["AccessKeyLastUsed"]
    assert used == {"LastUsedDate": at, "ServiceName": "s3", "Region": "eu-west-1"}
    with pytest.raises(ClientError) as excinfo:
        admin.get_access_key_last_used(AccessKeyId="AKIAAAAAAAAAAAAAAAAA")
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)
    # Reading a key's last use is authorized on its user: the reader may, nobody may not.
    assert api.client("reader").get_access_key_last_used(AccessKeyId=key_id)["UserName"] == "user-of-keys"
    with pytest.raises(ClientError) as excinfo:
        api.client("nobody").get_access_key_last_used(AccessKeyId=key_id)
    assert "on resource: arn:aws:iam::123456789012:user/user-of-keys" in error_of(excinfo)[2]
    admin.delete_access_key(UserName="user-of-keys", AccessKeyId=key_id)
    admin.delete_user(UserName="user-of-keys")


def test_unauthorized_create_makes_no_key(api: Api, admin: Any) -> None:
    admin.create_user(UserName="guarded")
    with pytest.raises(ClientError) as excinfo:
        api.client("reader").create_access_key(UserName="guarded")
    assert error_of(excinfo)[0] == "AccessDenied"
    assert admin.list_access_keys(UserName="guarded")["AccessKeyMetadata"] == []
    admin.delete_user(UserName="guarded")


def test_a_write_is_enforced_on_this_replica_before_it_answers(api: Api, admin: Any) -> None:
    """Read your writes: a key works as soon as CreateAccessKey answered, and is refused as soon
    as UpdateAccessKey (Inactive) or DeleteAccessKey answered, with no wait for the watcher."""
    import boto3
    from botocore.config import Config

    admin.create_user(UserName="immediate")
    key = admin.create_access_key(UserName="immediate")["AccessKey"]

    def caller() -> Any:
        return boto3.client(
            "sts",
            endpoint_url=api.url,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}),
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )

    assert caller().get_caller_identity()["Arn"].endswith(":user/immediate")
    admin.update_access_key(UserName="immediate", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as refused:
        caller().get_caller_identity()
    assert error_of(refused)[0] == "InvalidClientTokenId"
    admin.update_access_key(UserName="immediate", AccessKeyId=key["AccessKeyId"], Status="Active")
    assert caller().get_caller_identity()["Arn"].endswith(":user/immediate")
    admin.delete_access_key(UserName="immediate", AccessKeyId=key["AccessKeyId"])
    with pytest.raises(ClientError) as refused:
        caller().get_caller_identity()
    assert error_of(refused)[0] == "InvalidClientTokenId"
    admin.delete_user(UserName="immediate")
