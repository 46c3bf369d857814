"""Instance profiles over the Query API with boto3: create, get, list, add and remove a role (one
at most), the DeleteConflicts they cause for the role and the profile, and their errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.iam.api.conftest import ACCOUNT

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
    }
)


def _code(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_profiles_and_their_role(admin: Any) -> None:
    made = admin.create_instance_profile(InstanceProfileName="web", Path="/apps/")["InstanceProfile"]
    assert made["Arn"] == f"arn:aws:iam::{ACCOUNT}:instance-profile/apps/web" and made["Roles"] == []
    assert made["InstanceProfileId"].startswith("AIPA")
    admin.create_role(RoleName="web-role", AssumeRolePolicyDocument=TRUST)
    admin.create_role(RoleName="other-role", AssumeRolePolicyDocument=TRUST)
    admin.add_role_to_instance_profile(InstanceProfileName="web", RoleName="web-role")
    got = admin.get_instance_profile(InstanceProfileName="web")["InstanceProfile"]
    assert [r["RoleName"] for r in got["Roles"]] == ["web-role"]
    assert [
        p["InstanceProfileName"]
        for p in admin.list_instance_profiles(PathPrefix="/apps/")["InstanceProfiles"]
    ] == ["web"]
    listed = admin.list_instance_profiles_for_role(RoleName="web-role")["InstanceProfiles"]
    assert [p["InstanceProfileName"] for p in listed] == ["web"]
    refused: list[tuple[Callable[[], Any], str]] = [
        (
            lambda: admin.add_role_to_instance_profile(InstanceProfileName="web", RoleName="other-role"),
            "LimitExceeded",
        ),
        (
            lambda: admin.add_role_to_instance_profile(InstanceProfileName="web", RoleName="web-role"),
            "EntityAlreadyExists",
        ),
        (
            lambda: admin.add_role_to_instance_profile(InstanceProfileName="web", RoleName="configured"),
            "UnmodifiableEntity",
        ),
        (lambda: admin.delete_role(RoleName="web-role"), "DeleteConflict"),
        (lambda: admin.delete_instance_profile(InstanceProfileName="web"), "DeleteConflict"),
        (lambda: admin.create_instance_profile(InstanceProfileName="WEB"), "EntityAlreadyExists"),
        (lambda: admin.get_instance_profile(InstanceProfileName="none"), "NoSuchEntity"),
        (
            lambda: admin.remove_role_from_instance_profile(InstanceProfileName="web", RoleName="other-role"),
            "NoSuchEntity",
        ),
    ]
    for call, code in refused:
        with pytest.raises(ClientError) as excinfo:
            call()
        assert _code(excinfo)[0] == code
    admin.remove_role_from_instance_profile(InstanceProfileName="web", RoleName="web-role")
    assert admin.list_instance_profiles_for_role(RoleName="web-role")["InstanceProfiles"] == []
    admin.delete_instance_profile(InstanceProfileName="web")
    admin.delete_role(RoleName="web-role")
    admin.delete_role(RoleName="other-role")
