"""GetAccountAuthorizationDetails over the Query API with boto3: every kind of entity with its
policies, the configuration's included, Filter, and paging through botocore's paginator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.iam.api.conftest import ACCOUNT, Api

V = "2012-10-17"
DOC = {"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
TRUST = {
    "Version": V,
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
}


@pytest.fixture(scope="module")
def populated(admin: Any) -> dict[str, str]:
    policy = admin.create_policy(PolicyName="detail-policy", PolicyDocument=json.dumps(DOC))["Policy"]["Arn"]
    admin.create_policy_version(PolicyArn=policy, PolicyDocument=json.dumps(DOC), SetAsDefault=True)
    admin.create_user(UserName="detail-user", Tags=[{"Key": "k", "Value": "v"}])
    admin.put_user_policy(UserName="detail-user", PolicyName="own", PolicyDocument=json.dumps(DOC))
    admin.attach_user_policy(UserName="detail-user", PolicyArn=policy)
    admin.create_group(GroupName="detail-group")
    admin.add_user_to_group(GroupName="detail-group", UserName="detail-user")
    admin.attach_group_policy(GroupName="detail-group", PolicyArn=policy)
    admin.create_role(RoleName="detail-role", AssumeRolePolicyDocument=json.dumps(TRUST))
    admin.put_role_policy(RoleName="detail-role", PolicyName="inline", PolicyDocument=json.dumps(DOC))
    admin.create_instance_profile(InstanceProfileName="detail-profile")
    admin.add_role_to_instance_profile(InstanceProfileName="detail-profile", RoleName="detail-role")
    return {"policy": policy}


def test_everything_with_its_policies(admin: Any, populated: dict[str, str]) -> None:
    details = admin.get_account_authorization_details()
    users = {u["UserName"]: u for u in details["UserDetailList"]}
    user = users["detail-user"]
    assert user["UserPolicyList"] == [{"PolicyName": "own", "PolicyDocument": DOC}]
    assert user["GroupList"] == ["detail-group"] and user["Tags"] == [{"Key": "k", "Value": "v"}]
    assert user["AttachedManagedPolicies"] == [
        {"PolicyName": "detail-policy", "PolicyArn": populated["policy"]}
    ]
    group = {g["GroupName"]: g for g in details["GroupDetailList"]}["detail-group"]
    assert group["AttachedManagedPolicies"][0]["PolicyArn"] == populated["policy"]
    roles = {r["RoleName"]: r for r in details["RoleDetailList"]}
    role = roles["detail-role"]
    assert role["AssumeRolePolicyDocument"] == TRUST
    assert role["RolePolicyList"] == [{"PolicyName": "inline", "PolicyDocument": DOC}]
    assert [p["InstanceProfileName"] for p in role["InstanceProfileList"]] == ["detail-profile"]
    assert roles["configured"]["AttachedManagedPolicies"] == [
        {"PolicyName": "s3-read", "PolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/s3-read"}
    ]
    policies = {p["PolicyName"]: p for p in details["Policies"]}
    versions = policies["detail-policy"]["PolicyVersionList"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in versions] == [("v2", True), ("v1", False)]
    assert versions[0]["Document"] == DOC and policies["detail-policy"]["AttachmentCount"] == 2
    assert "s3-read" in policies


def test_filter_and_pages(admin: Any, populated: dict[str, str]) -> None:
    only_roles = admin.get_account_authorization_details(Filter=["Role"])
    assert only_roles["RoleDetailList"] and not only_roles["UserDetailList"] and not only_roles["Policies"]
    paginator = admin.get_paginator("get_account_authorization_details")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 2}))
    assert len(pages) > 2 and all(p["IsTruncated"] for p in pages[:-1])
    whole = admin.get_account_authorization_details()
    for key in ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"):
        assert [e["Arn"] for p in pages for e in p[key]] == [e["Arn"] for e in whole[key]]


def test_errors(api: Api, admin: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        admin.get_account_authorization_details(Filter=["Everything"])
    assert excinfo.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as excinfo:
        api.client("nobody").get_account_authorization_details()
    assert excinfo.value.response["Error"]["Code"] == "AccessDenied"
