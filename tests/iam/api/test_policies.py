"""Managed policies over the Query API with boto3: create, get, list (scope, path, attached,
paging), versions (five at most, the default undeletable), tags, delete conflicts, the
configuration's policy read-only, and every error code AWS answers with."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError

from tests.iam.api.conftest import ACCOUNT

V = "2012-10-17"
DOC = json.dumps(
    {"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
)
CONFIG_POLICY = f"arn:aws:iam::{ACCOUNT}:policy/s3-read"


def _code(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _doc(n: int) -> str:
    return json.dumps(
        {"Version": V, "Statement": [{"Effect": "Allow", "Action": f"s3:Get{'x' * n}", "Resource": "*"}]},
        separators=(",", ":"),
    )


def test_create_get_and_the_default_version(admin: Any) -> None:
    created = admin.create_policy(
        PolicyName="reader",
        Path="/team/",
        PolicyDocument=DOC,
        Description="read objects",
        Tags=[{"Key": "team", "Value": "data"}],
    )["Policy"]
    arn = f"arn:aws:iam::{ACCOUNT}:policy/team/reader"
    assert created["Arn"] == arn and created["DefaultVersionId"] == "v1"
    assert created["PolicyId"].startswith("ANPA") and created["AttachmentCount"] == 0
    assert created["Tags"] == [{"Key": "team", "Value": "data"}]
    got = admin.get_policy(PolicyArn=arn)["Policy"]
    assert got["Description"] == "read objects" and got["IsAttachable"] is True
    version = admin.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    # botocore decodes the URL-encoded document IAM returns into the JSON it holds.
    assert version["Document"] == json.loads(DOC) and version["IsDefaultVersion"] is True
    admin.delete_policy(PolicyArn=arn)
    with pytest.raises(ClientError) as excinfo:
        admin.get_policy(PolicyArn=arn)
    assert _code(excinfo) == ("NoSuchEntity", 404)


def test_documents_are_returned_url_encoded_exactly_as_given(admin: Any) -> None:
    statement = '{"Effect":"Allow","Action":"s3:Get*","Resource":"arn:aws:s3:::a+b%c"}'
    text = '{"Version":"2012-10-17","Statement":[' + statement + "]}"
    arn = admin.create_policy(PolicyName="encoded", PolicyDocument=text)["Policy"]["Arn"]
    bodies: list[bytes] = []

    def capture(response_dict: dict[str, Any], **_: Any) -> None:
        bodies.append(response_dict["body"])

    admin.meta.events.register("before-parse.iam.GetPolicyVersion", capture)
    try:
        admin.get_policy_version(PolicyArn=arn, VersionId="v1")
    finally:
        admin.meta.events.unregister("before-parse.iam.GetPolicyVersion", capture)
    wire = ElementTree.fromstring(bodies[0]).findtext(".//{*}Document")
    assert wire is not None and "%" in wire and unquote(wire) == text
    admin.delete_policy(PolicyArn=arn)


def test_versions_five_at_most_default_cannot_be_deleted(admin: Any) -> None:
    arn = admin.create_policy(PolicyName="versioned", PolicyDocument=DOC)["Policy"]["Arn"]
    for n in range(2, 6):
        made = admin.create_policy_version(PolicyArn=arn, PolicyDocument=_doc(n), SetAsDefault=n == 3)
        assert made["PolicyVersion"]["VersionId"] == f"v{n}"
    with pytest.raises(ClientError) as excinfo:
        admin.create_policy_version(PolicyArn=arn, PolicyDocument=_doc(6))
    assert _code(excinfo) == ("LimitExceeded", 409)
    versions = admin.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [v["VersionId"] for v in versions] == ["v5", "v4", "v3", "v2", "v1"]
    assert [v["VersionId"] for v in versions if v["IsDefaultVersion"]] == ["v3"]
    first = admin.list_policy_versions(PolicyArn=arn, MaxItems=2)
    assert [v["VersionId"] for v in first["Versions"]] == ["v5", "v4"] and first["IsTruncated"]
    rest = admin.list_policy_versions(PolicyArn=arn, Marker=first["Marker"])
    assert [v["VersionId"] for v in rest["Versions"]] == ["v3", "v2", "v1"] and not rest["IsTruncated"]
    with pytest.raises(ClientError) as excinfo:
        admin.delete_policy_version(PolicyArn=arn, VersionId="v3")
    assert _code(excinfo) == ("DeleteConflict", 409)
    with pytest.raises(ClientError) as excinfo:
        admin.delete_policy(PolicyArn=arn)  # versions besides the default remain
    assert _code(excinfo) == ("DeleteConflict", 409)
    admin.set_default_policy_version(PolicyArn=arn, VersionId="v5")
    assert admin.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v5"
    for version in ("v1", "v2", "v3", "v4"):
        admin.delete_policy_version(PolicyArn=arn, VersionId=version)
    # Version ids are never reused.
    assert (
        admin.create_policy_version(PolicyArn=arn, PolicyDocument=DOC)["PolicyVersion"]["VersionId"] == "v6"
    )
    with pytest.raises(ClientError) as excinfo:
        admin.get_policy_version(PolicyArn=arn, VersionId="v2")
    assert _code(excinfo) == ("NoSuchEntity", 404)
    admin.delete_policy_version(PolicyArn=arn, VersionId="v6")
    admin.delete_policy(PolicyArn=arn)


def test_bad_documents_and_sizes(admin: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        admin.create_policy(PolicyName="bad", PolicyDocument='{"Version": "2012-10-17", "Statement": [{}]}')
    assert _code(excinfo) == ("MalformedPolicyDocument", 400)
    with pytest.raises(ClientError) as excinfo:
        admin.create_policy(PolicyName="bad", PolicyDocument="not json")
    assert _code(excinfo) == ("MalformedPolicyDocument", 400)
    # 6,144 characters, white space not counted: indentation does not count against the quota.
    big = _doc(6144 - len(_doc(0)))
    assert len(big) == 6144
    padded = json.dumps(json.loads(big), indent=40)
    assert len(padded) > 6144
    arn = admin.create_policy(PolicyName="exactly-full", PolicyDocument=padded)["Policy"]["Arn"]
    with pytest.raises(ClientError) as excinfo:
        admin.create_policy(PolicyName="too-big", PolicyDocument=_doc(6145 - len(_doc(0))))
    assert _code(excinfo) == ("LimitExceeded", 409)
    with pytest.raises(ClientError) as excinfo:
        admin.create_policy_version(PolicyArn=arn, PolicyDocument=_doc(6145 - len(_doc(0))))
    assert _code(excinfo) == ("LimitExceeded", 409)
    admin.delete_policy(PolicyArn=arn)


def test_errors_of_names_and_arns(admin: Any) -> None:
    arn = admin.create_policy(PolicyName="twice", PolicyDocument=DOC)["Policy"]["Arn"]
    with pytest.raises(ClientError) as excinfo:
        admin.create_policy(PolicyName="TWICE", PolicyDocument=DOC)
    assert _code(excinfo) == ("EntityAlreadyExists", 409)
    with pytest.raises(ClientError) as excinfo:
        admin.get_policy(PolicyArn="not-an-arn-but-long-enough")
    assert _code(excinfo) == ("InvalidInput", 400)
    with pytest.raises(ClientError) as excinfo:
        admin.get_policy(PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/nothing-here")
    assert _code(excinfo) == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as excinfo:
        admin.get_policy_version(PolicyArn=arn, VersionId="one")
    assert _code(excinfo) == ("ValidationError", 400)
    with pytest.raises(ClientError) as excinfo:
        admin.get_policy(PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    assert _code(excinfo) == ("NoSuchEntity", 404)
    admin.delete_policy(PolicyArn=arn)


def test_list_policies_scope_path_attached_and_pages(admin: Any) -> None:
    arns = [
        admin.create_policy(PolicyName=f"lister-{n}", Path="/lister/", PolicyDocument=DOC)["Policy"]["Arn"]
        for n in range(3)
    ]
    names = [p["PolicyName"] for p in admin.list_policies(PathPrefix="/lister/")["Policies"]]
    assert names == ["lister-0", "lister-1", "lister-2"]
    everything = [p["Arn"] for p in admin.list_policies(Scope="Local")["Policies"]]
    assert CONFIG_POLICY in everything and set(arns) <= set(everything)
    assert admin.list_policies(Scope="AWS")["Policies"] == []
    page = admin.list_policies(PathPrefix="/lister/", MaxItems=2)
    assert len(page["Policies"]) == 2 and page["IsTruncated"]
    rest = admin.list_policies(PathPrefix="/lister/", MaxItems=2, Marker=page["Marker"])
    assert [p["PolicyName"] for p in rest["Policies"]] == ["lister-2"] and not rest["IsTruncated"]
    # The configuration's role "configured" holds s3-read: it counts as attached.
    attached = [p["Arn"] for p in admin.list_policies(OnlyAttached=True)["Policies"]]
    assert CONFIG_POLICY in attached and not set(arns) & set(attached)
    for arn in arns:
        admin.delete_policy(PolicyArn=arn)


def test_tags(admin: Any) -> None:
    arn = admin.create_policy(PolicyName="tagged", PolicyDocument=DOC)["Policy"]["Arn"]
    admin.tag_policy(PolicyArn=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    admin.tag_policy(PolicyArn=arn, Tags=[{"Key": "A", "Value": "3"}])  # keys are case-insensitive
    assert admin.list_policy_tags(PolicyArn=arn)["Tags"] == [
        {"Key": "A", "Value": "3"},
        {"Key": "b", "Value": "2"},
    ]
    admin.untag_policy(PolicyArn=arn, TagKeys=["a"])
    assert admin.list_policy_tags(PolicyArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError) as excinfo:
        admin.tag_policy(PolicyArn=arn, Tags=[{"Key": f"k{n}", "Value": ""} for n in range(50)])
    assert _code(excinfo) == ("LimitExceeded", 409)
    assert len(admin.list_policy_tags(PolicyArn=arn)["Tags"]) == 1  # nothing changed
    admin.delete_policy(PolicyArn=arn)


def test_the_configuration_policy_is_visible_and_read_only(admin: Any) -> None:
    got = admin.get_policy(PolicyArn=CONFIG_POLICY)["Policy"]
    assert got["PolicyName"] == "s3-read" and got["AttachmentCount"] == 1
    document = admin.get_policy_version(PolicyArn=CONFIG_POLICY, VersionId="v1")["PolicyVersion"]["Document"]
    assert document["Statement"][0]["Action"] == ["s3:Get*"]
    assert [v["VersionId"] for v in admin.list_policy_versions(PolicyArn=CONFIG_POLICY)["Versions"]] == ["v1"]
    calls: list[Callable[[], Any]] = [
        lambda: admin.delete_policy(PolicyArn=CONFIG_POLICY),
        lambda: admin.create_policy_version(PolicyArn=CONFIG_POLICY, PolicyDocument=DOC),
        lambda: admin.tag_policy(PolicyArn=CONFIG_POLICY, Tags=[{"Key": "a", "Value": "b"}]),
    ]
    for call in calls:
        with pytest.raises(ClientError) as excinfo:
            call()
        assert _code(excinfo)[0] == "UnmodifiableEntity"
    with pytest.raises(ClientError) as excinfo:
        admin.create_policy(PolicyName="s3-read", PolicyDocument=DOC)
    assert _code(excinfo) == ("EntityAlreadyExists", 409)


def test_unauthorized_callers_change_nothing(api: Any, admin: Any) -> None:
    reader = api.client("reader")
    with pytest.raises(ClientError) as excinfo:
        reader.create_policy(PolicyName="sneaky", PolicyDocument=DOC)
    assert _code(excinfo) == ("AccessDenied", 403)
    assert "sneaky" not in [p["PolicyName"] for p in admin.list_policies()["Policies"]]
    assert reader.get_policy(PolicyArn=CONFIG_POLICY)["Policy"]["PolicyName"] == "s3-read"
