"""Roles over the Query API with boto3 (and the aws CLI for a few): create, get, list, update,
trust policy, boundary, tags, inline policies, delete conflicts, the configuration's roles
read-only, and every error code AWS answers with."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.iam.api.conftest import ACCOUNT, Api
from tests.iam.api.unchecked import unchecked_client

V = "2012-10-17"
TRUST = json.dumps(
    {
        "Version": V,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
ALLOW = json.dumps(
    {"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
)


def _code(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_create_get_list_update_delete(admin: Any) -> None:
    role = admin.create_role(
        RoleName="deployer",
        Path="/ci/",
        AssumeRolePolicyDocument=TRUST,
        Description="deploys",
        MaxSessionDuration=7200,
        Tags=[{"Key": "team", "Value": "platform"}],
    )["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/ci/deployer"
    assert role["RoleId"].startswith("AROA") and role["MaxSessionDuration"] == 7200
    assert role["AssumeRolePolicyDocument"] == json.loads(TRUST)  # decoded by botocore
    got = admin.get_role(RoleName="DEPLOYER")["Role"]
    assert got["Description"] == "deploys" and got["Tags"] == [{"Key": "team", "Value": "platform"}]
    assert got["RoleLastUsed"] == {}
    listed = {r["RoleName"]: r for r in admin.list_roles(PathPrefix="/ci/")["Roles"]}
    assert list(listed) == ["deployer"]
    admin.update_role(RoleName="deployer", MaxSessionDuration=43200, Description="deploys more")
    assert admin.get_role(RoleName="deployer")["Role"]["MaxSessionDuration"] == 43200
    described = admin.update_role_description(RoleName="deployer", Description="d")["Role"]
    assert described["Description"] == "d"
    admin.update_assume_role_policy(RoleName="deployer", PolicyDocument=TRUST.replace("root", "user/x"))
    trust = admin.get_role(RoleName="deployer")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"]["AWS"] == f"arn:aws:iam::{ACCOUNT}:user/x"
    admin.delete_role(RoleName="deployer")
    with pytest.raises(ClientError) as excinfo:
        admin.get_role(RoleName="deployer")
    assert _code(excinfo) == ("NoSuchEntity", 404)


def test_the_configuration_roles_are_listed_and_read_only(admin: Any) -> None:
    names = [r["RoleName"] for r in admin.list_roles()["Roles"]]
    assert {"admin", "configured", "reader"} <= set(names)
    got = admin.get_role(RoleName="configured")["Role"]
    assert got["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/configured"
    attached = admin.list_attached_role_policies(RoleName="configured")["AttachedPolicies"]
    assert attached == [{"PolicyName": "s3-read", "PolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/s3-read"}]
    assert admin.list_role_policies(RoleName="admin")["PolicyNames"] == ["all"]
    inline = admin.get_role_policy(RoleName="admin", PolicyName="all")["PolicyDocument"]
    assert inline["Statement"][0]["Action"] == ["iam:*"]
    assert admin.list_instance_profiles_for_role(RoleName="configured")["InstanceProfiles"] == []
    calls: list[Callable[[], Any]] = [
        lambda: admin.delete_role(RoleName="configured"),
        lambda: admin.update_role(RoleName="configured", MaxSessionDuration=7200),
        lambda: admin.update_assume_role_policy(RoleName="configured", PolicyDocument=TRUST),
        lambda: admin.tag_role(RoleName="configured", Tags=[{"Key": "a", "Value": "b"}]),
        lambda: admin.put_role_policy(RoleName="configured", PolicyName="p", PolicyDocument=ALLOW),
        lambda: admin.attach_role_policy(
            RoleName="configured", PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/s3-read"
        ),
    ]
    for call in calls:
        with pytest.raises(ClientError) as excinfo:
            call()
        assert _code(excinfo)[0] == "UnmodifiableEntity"
    with pytest.raises(ClientError) as excinfo:
        admin.create_role(RoleName="configured", AssumeRolePolicyDocument=TRUST)
    assert _code(excinfo) == ("EntityAlreadyExists", 409)


def test_validation_errors(api: Api, admin: Any) -> None:
    unchecked = unchecked_client(api)
    for kwargs, code in (
        ({"MaxSessionDuration": 3599}, "ValidationError"),
        ({"MaxSessionDuration": 43201}, "ValidationError"),
        ({"AssumeRolePolicyDocument": ALLOW}, "MalformedPolicyDocument"),  # a Resource, no Principal
        ({"AssumeRolePolicyDocument": "{"}, "MalformedPolicyDocument"),
        ({"PermissionsBoundary": "arn:aws:iam::123456789012:user/not-a-policy"}, "InvalidInput"),
        ({"PermissionsBoundary": f"arn:aws:iam::{ACCOUNT}:policy/none-such"}, "NoSuchEntity"),
        ({"RoleName": "bad name"}, "ValidationError"),
    ):
        args: dict[str, Any] = {"RoleName": "invalid", "AssumeRolePolicyDocument": TRUST, **kwargs}
        with pytest.raises(ClientError) as excinfo:
            unchecked.create_role(**args)
        assert _code(excinfo)[0] == code, kwargs
    # A trust policy of more than 2,048 characters, white space not counted.
    principals = [f"arn:aws:iam::{ACCOUNT}:user/u{n:04d}" for n in range(60)]
    big = json.dumps(
        {
            "Version": V,
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": principals}, "Action": "sts:AssumeRole"}],
        }
    )
    with pytest.raises(ClientError) as excinfo:
        admin.create_role(RoleName="invalid", AssumeRolePolicyDocument=big)
    assert _code(excinfo) == ("LimitExceeded", 409)
    assert "invalid" not in [r["RoleName"] for r in admin.list_roles()["Roles"]]


def test_boundary_and_tags(admin: Any) -> None:
    policy = admin.create_policy(PolicyName="role-bound", PolicyDocument=ALLOW)["Policy"]["Arn"]
    admin.create_role(RoleName="bounded", AssumeRolePolicyDocument=TRUST, PermissionsBoundary=policy)
    assert admin.get_role(RoleName="bounded")["Role"]["PermissionsBoundary"] == {
        "PermissionsBoundaryType": "Policy",
        "PermissionsBoundaryArn": policy,
    }
    bounded = admin.list_entities_for_policy(PolicyArn=policy, PolicyUsageFilter="PermissionsBoundary")
    assert [r["RoleName"] for r in bounded["PolicyRoles"]] == ["bounded"]
    admin.delete_role_permissions_boundary(RoleName="bounded")
    assert "PermissionsBoundary" not in admin.get_role(RoleName="bounded")["Role"]
    admin.put_role_permissions_boundary(RoleName="bounded", PermissionsBoundary=policy)
    assert (
        admin.get_role(RoleName="bounded")["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == policy
    )
    admin.delete_role_permissions_boundary(RoleName="bounded")
    admin.tag_role(RoleName="bounded", Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    admin.untag_role(RoleName="bounded", TagKeys=["A"])
    assert admin.list_role_tags(RoleName="bounded")["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError) as excinfo:
        admin.tag_role(RoleName="bounded", Tags=[{"Key": f"k{n}", "Value": "v"} for n in range(50)])
    assert _code(excinfo) == ("LimitExceeded", 409)
    admin.delete_role(RoleName="bounded")
    admin.delete_policy(PolicyArn=policy)


def test_inline_policies_and_their_quota(admin: Any) -> None:
    admin.create_role(RoleName="inline", AssumeRolePolicyDocument=TRUST)
    admin.put_role_policy(RoleName="inline", PolicyName="read", PolicyDocument=ALLOW)
    assert admin.get_role_policy(RoleName="inline", PolicyName="read")["PolicyDocument"] == json.loads(ALLOW)
    assert admin.list_role_policies(RoleName="inline")["PolicyNames"] == ["read"]
    with pytest.raises(ClientError) as excinfo:
        admin.delete_role(RoleName="inline")
    assert _code(excinfo) == ("DeleteConflict", 409)
    with pytest.raises(ClientError) as excinfo:
        admin.put_role_policy(RoleName="inline", PolicyName="bad", PolicyDocument=TRUST)  # has a Principal
    assert _code(excinfo) == ("MalformedPolicyDocument", 400)
    # All inline policies of a role together: 10,240 characters, white space not counted.
    size = len(ALLOW)
    resources = ["arn:aws:s3:::" + "x" * 80 for _ in range(120)]
    big = json.dumps(
        {"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": resources}]}
    )
    assert len(big.replace(" ", "")) + size > 10240
    with pytest.raises(ClientError) as excinfo:
        admin.put_role_policy(RoleName="inline", PolicyName="big", PolicyDocument=big)
    assert _code(excinfo) == ("LimitExceeded", 409)
    assert admin.list_role_policies(RoleName="inline")["PolicyNames"] == ["read"]
    with pytest.raises(ClientError) as excinfo:
        admin.get_role_policy(RoleName="inline", PolicyName="none")
    assert _code(excinfo) == ("NoSuchEntity", 404)
    admin.delete_role_policy(RoleName="inline", PolicyName="read")
    with pytest.raises(ClientError) as excinfo:
        admin.delete_role_policy(RoleName="inline", PolicyName="read")
    assert _code(excinfo) == ("NoSuchEntity", 404)
    admin.delete_role(RoleName="inline")


def test_list_roles_in_pages(admin: Any) -> None:
    for n in range(3):
        admin.create_role(RoleName=f"paged-{n}", Path="/paged/", AssumeRolePolicyDocument=TRUST)
    first = admin.list_roles(PathPrefix="/paged/", MaxItems=2)
    assert [r["RoleName"] for r in first["Roles"]] == ["paged-0", "paged-1"] and first["IsTruncated"]
    rest = admin.list_roles(PathPrefix="/paged/", Marker=first["Marker"])
    assert [r["RoleName"] for r in rest["Roles"]] == ["paged-2"] and not rest["IsTruncated"]
    paginator = admin.get_paginator("list_roles")
    names = [
        r["RoleName"] for page in paginator.paginate(PaginationConfig={"PageSize": 1}) for r in page["Roles"]
    ]
    assert {"paged-0", "paged-1", "paged-2", "admin"} <= set(names) and len(names) == len(set(names))
    for n in range(3):
        admin.delete_role(RoleName=f"paged-{n}")


def test_unauthorized_callers_change_nothing(api: Api, admin: Any) -> None:
    reader = api.client("reader")
    with pytest.raises(ClientError) as excinfo:
        reader.create_role(RoleName="sneaky", AssumeRolePolicyDocument=TRUST)
    assert _code(excinfo) == ("AccessDenied", 403)
    admin.create_role(RoleName="guarded", AssumeRolePolicyDocument=TRUST)
    with pytest.raises(ClientError) as excinfo:
        reader.delete_role(RoleName="guarded")
    assert _code(excinfo) == ("AccessDenied", 403)
    assert reader.get_role(RoleName="guarded")["Role"]["RoleName"] == "guarded"
    assert "sneaky" not in [r["RoleName"] for r in admin.list_roles()["Roles"]]
    admin.delete_role(RoleName="guarded")


def _aws(api: Api, *args: str) -> subprocess.CompletedProcess[str]:
    aws = shutil.which("aws")
    if aws is None:
        pytest.fail("the aws CLI is not installed (`pip install awscli` or `make install`)", pytrace=False)
    creds = api.credentials("admin")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_MAX_ATTEMPTS": "1",
    }
    return subprocess.run(
        [aws, "iam", *args, "--endpoint-url", api.url, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_aws_cli(api: Api) -> None:
    made = _aws(api, "create-role", "--role-name", "from-cli", "--assume-role-policy-document", TRUST)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["Role"]["RoleName"] == "from-cli"
    put = _aws(
        api, "put-role-policy", "--role-name", "from-cli", "--policy-name", "p", "--policy-document", ALLOW
    )
    assert put.returncode == 0, put.stderr
    got = _aws(api, "get-role-policy", "--role-name", "from-cli", "--policy-name", "p")
    assert json.loads(got.stdout)["PolicyDocument"] == json.loads(ALLOW)
    conflict = _aws(api, "delete-role", "--role-name", "from-cli")
    assert conflict.returncode != 0 and "DeleteConflict" in conflict.stderr
    assert _aws(api, "delete-role-policy", "--role-name", "from-cli", "--policy-name", "p").returncode == 0
    assert _aws(api, "delete-role", "--role-name", "from-cli").returncode == 0
    missing = _aws(api, "get-role", "--role-name", "from-cli")
    assert missing.returncode != 0 and "NoSuchEntity" in missing.stderr
