"""Attaching managed policies to users, groups and roles over the Query API with boto3: attach,
list, detach, the ten-policies quota, ListEntitiesForPolicy, the DeleteConflicts attachments cause,
and the errors of unknown principals and policies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.iam.api.conftest import ACCOUNT, Api

V = "2012-10-17"
DOC = json.dumps(
    {"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
)
TRUST = json.dumps(
    {
        "Version": V,
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
    }
)
CONFIG_POLICY = f"arn:aws:iam::{ACCOUNT}:policy/s3-read"


def _code(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_attach_list_detach_for_users_and_roles(admin: Any) -> None:
    policy = admin.create_policy(PolicyName="attachable", Path="/p/", PolicyDocument=DOC)["Policy"]["Arn"]
    admin.create_user(UserName="holder")
    admin.create_role(RoleName="holder-role", AssumeRolePolicyDocument=TRUST)
    admin.attach_user_policy(UserName="holder", PolicyArn=policy)
    admin.attach_user_policy(UserName="holder", PolicyArn=policy)  # again: nothing changes
    admin.attach_user_policy(UserName="holder", PolicyArn=CONFIG_POLICY)  # the configuration's policy
    admin.attach_role_policy(RoleName="holder-role", PolicyArn=policy)
    admin.create_group(GroupName="holders")
    admin.attach_group_policy(GroupName="holders", PolicyArn=policy)
    assert admin.list_attached_group_policies(GroupName="holders")["AttachedPolicies"] == [
        {"PolicyName": "attachable", "PolicyArn": policy}
    ]
    attached = admin.list_attached_user_policies(UserName="holder")["AttachedPolicies"]
    assert sorted(a["PolicyName"] for a in attached) == ["attachable", "s3-read"]
    assert admin.list_attached_user_policies(UserName="holder", PathPrefix="/p/")["AttachedPolicies"] == [
        {"PolicyName": "attachable", "PolicyArn": policy}
    ]
    assert admin.list_attached_role_policies(RoleName="holder-role")["AttachedPolicies"] == [
        {"PolicyName": "attachable", "PolicyArn": policy}
    ]
    assert admin.get_policy(PolicyArn=policy)["Policy"]["AttachmentCount"] == 3
    entities = admin.list_entities_for_policy(PolicyArn=policy)
    assert [u["UserName"] for u in entities["PolicyUsers"]] == ["holder"]
    assert [r["RoleName"] for r in entities["PolicyRoles"]] == ["holder-role"]
    assert [g["GroupName"] for g in entities["PolicyGroups"]] == ["holders"]
    only_roles = admin.list_entities_for_policy(PolicyArn=policy, EntityFilter="Role")
    assert only_roles["PolicyUsers"] == [] and len(only_roles["PolicyRoles"]) == 1
    configured = admin.list_entities_for_policy(PolicyArn=CONFIG_POLICY)
    assert [u["UserName"] for u in configured["PolicyUsers"]] == ["holder"]
    assert [r["RoleName"] for r in configured["PolicyRoles"]] == ["configured"]

    conflicts: list[tuple[Callable[[], Any], str]] = [
        (lambda: admin.delete_policy(PolicyArn=policy), "DeleteConflict"),
        (lambda: admin.delete_user(UserName="holder"), "DeleteConflict"),
        (lambda: admin.delete_role(RoleName="holder-role"), "DeleteConflict"),
        (lambda: admin.delete_group(GroupName="holders"), "DeleteConflict"),
    ]
    for call, code in conflicts:
        with pytest.raises(ClientError) as excinfo:
            call()
        assert _code(excinfo) == (code, 409)

    admin.detach_user_policy(UserName="holder", PolicyArn=policy)
    admin.detach_user_policy(UserName="holder", PolicyArn=CONFIG_POLICY)
    admin.detach_role_policy(RoleName="holder-role", PolicyArn=policy)
    admin.detach_group_policy(GroupName="holders", PolicyArn=policy)
    admin.delete_group(GroupName="holders")
    with pytest.raises(ClientError) as excinfo:
        admin.detach_role_policy(RoleName="holder-role", PolicyArn=policy)
    assert _code(excinfo) == ("NoSuchEntity", 404)
    admin.delete_role(RoleName="holder-role")
    admin.delete_user(UserName="holder")
    admin.delete_policy(PolicyArn=policy)


def test_unknown_principals_and_policies(admin: Any) -> None:
    policy = admin.create_policy(PolicyName="lonely", PolicyDocument=DOC)["Policy"]["Arn"]
    admin.create_user(UserName="someone")
    calls: list[Callable[[], Any]] = [
        lambda: admin.attach_user_policy(UserName="nobody-here", PolicyArn=policy),
        lambda: admin.attach_role_policy(RoleName="nobody-here", PolicyArn=policy),
        lambda: admin.attach_group_policy(GroupName="nobody-here", PolicyArn=policy),
        lambda: admin.attach_user_policy(UserName="someone", PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/none"),
        lambda: admin.list_attached_user_policies(UserName="nobody-here"),
        lambda: admin.list_entities_for_policy(PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/none"),
    ]
    for call in calls:
        with pytest.raises(ClientError) as excinfo:
            call()
        assert _code(excinfo) == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as excinfo:
        admin.attach_user_policy(UserName="someone", PolicyArn="arn:aws:s3:::not-a-policy-arn")
    assert _code(excinfo) == ("InvalidInput", 400)
    admin.delete_user(UserName="someone")
    admin.delete_policy(PolicyArn=policy)


def test_ten_policies_at_most(admin: Any) -> None:
    admin.create_role(RoleName="collector", AssumeRolePolicyDocument=TRUST)
    arns = [
        admin.create_policy(PolicyName=f"many-{n}", PolicyDocument=DOC)["Policy"]["Arn"] for n in range(11)
    ]
    for arn in arns[:10]:
        admin.attach_role_policy(RoleName="collector", PolicyArn=arn)
    with pytest.raises(ClientError) as excinfo:
        admin.attach_role_policy(RoleName="collector", PolicyArn=arns[10])
    assert _code(excinfo) == ("LimitExceeded", 409)
    page = admin.list_attached_role_policies(RoleName="collector", MaxItems=4)
    assert len(page["AttachedPolicies"]) == 4 and page["IsTruncated"]
    paginator = admin.get_paginator("list_attached_role_policies")
    seen = [
        a["PolicyArn"]
        for p in paginator.paginate(RoleName="collector", PaginationConfig={"PageSize": 3})
        for a in p["AttachedPolicies"]
    ]
    assert sorted(seen) == sorted(arns[:10])
    for arn in arns[:10]:
        admin.detach_role_policy(RoleName="collector", PolicyArn=arn)
    for arn in arns:
        admin.delete_policy(PolicyArn=arn)
    admin.delete_role(RoleName="collector")


def test_attaching_is_authorized_on_the_principal_with_the_policy_arn(api: Api, admin: Any) -> None:
    policy = admin.create_policy(PolicyName="guarded-policy", PolicyDocument=DOC)["Policy"]["Arn"]
    admin.create_user(UserName="guarded-user")
    reader = api.client("reader")
    with pytest.raises(ClientError) as excinfo:
        reader.attach_user_policy(UserName="guarded-user", PolicyArn=policy)
    assert _code(excinfo) == ("AccessDenied", 403)
    assert admin.list_attached_user_policies(UserName="guarded-user")["AttachedPolicies"] == []
    events = api.audit.named("AttachUserPolicy")
    assert events[-1]["errorCode"] == "AccessDenied"
    assert events[-1]["requestParameters"] == {"userName": "guarded-user", "policyArn": policy}
    admin.delete_user(UserName="guarded-user")
    admin.delete_policy(PolicyArn=policy)
