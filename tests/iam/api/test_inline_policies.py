"""Inline policies of users and groups over the Query API with boto3: documents round-trip (IAM
answers them URL-encoded; botocore decodes them), validation by the policy engine, size quotas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.iam.api.conftest import Api, error_of

V = "2012-10-17"


def _doc(action: str = "s3:GetObject", resource: str = "*") -> str:
    return json.dumps(
        {"Version": V, "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}
    )


def _padded(size: int) -> str:
    """A valid document whose compact form is about ``size`` characters."""
    base = len(_doc(resource=""))
    return _doc(resource="arn:aws:s3:::" + "b" * max(0, size - base - 20))


@pytest.mark.parametrize(("holder", "name"), [("user", "UserName"), ("group", "GroupName")])
def test_put_get_list_delete(admin: Any, holder: str, name: str) -> None:
    owner = f"holder-{holder}"
    getattr(admin, f"create_{holder}")(**{name: owner})
    put, get = getattr(admin, f"put_{holder}_policy"), getattr(admin, f"get_{holder}_policy")
    listing, delete = getattr(admin, f"list_{holder}_policies"), getattr(admin, f"delete_{holder}_policy")
    document = json.dumps(
        {
            "Version": V,
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::a b/%20+&?"}],
        },
        indent=2,
    )
    put(**{name: owner}, PolicyName="p-two", PolicyDocument=document)
    put(**{name: owner}, PolicyName="p-one", PolicyDocument=_doc())
    got = get(**{name: owner}, PolicyName="p-two")
    assert got[name] == owner and got["PolicyName"] == "p-two"
    assert got["PolicyDocument"] == json.loads(document)  # decoded by botocore from the URL-encoding
    assert listing(**{name: owner})["PolicyNames"] == ["p-one", "p-two"]
    first = listing(**{name: owner}, MaxItems=1)
    assert first["PolicyNames"] == ["p-one"] and first["IsTruncated"] is True
    assert listing(**{name: owner}, Marker=first["Marker"])["PolicyNames"] == ["p-two"]
    put(**{name: owner}, PolicyName="p-one", PolicyDocument=_doc("s3:PutObject"))  # replaces
    assert (
        get(**{name: owner}, PolicyName="p-one")["PolicyDocument"]["Statement"][0]["Action"] == "s3:PutObject"
    )

    # The holder cannot be deleted while it has inline policies.
    with pytest.raises(ClientError) as excinfo:
        getattr(admin, f"delete_{holder}")(**{name: owner})
    assert error_of(excinfo) == ("DeleteConflict", 409, "Cannot delete entity, must delete policies first.")

    delete(**{name: owner}, PolicyName="p-one")
    delete(**{name: owner}, PolicyName="p-two")
    with pytest.raises(ClientError) as excinfo:
        delete(**{name: owner}, PolicyName="p-two")
    assert error_of(excinfo) == ("NoSuchEntity", 404, f"The {holder} policy with name p-two cannot be found.")
    with pytest.raises(ClientError) as excinfo:
        get(**{name: owner}, PolicyName="p-two")
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as excinfo:
        listing(**{name: "ghost"})
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)
    getattr(admin, f"delete_{holder}")(**{name: owner})


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        json.dumps({"Version": V, "Statement": [{"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}]}),
        json.dumps({"Version": V, "Statement": [{"Effect": "Allow", "Action": "s3:*"}]}),  # no Resource
        json.dumps(
            {
                "Version": V,
                "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    ],
)
def test_malformed_documents_are_refused(admin: Any, document: str) -> None:
    admin.create_user(UserName="malformed")
    with pytest.raises(ClientError) as excinfo:
        admin.put_user_policy(UserName="malformed", PolicyName="bad", PolicyDocument=document)
    assert error_of(excinfo)[:2] == ("MalformedPolicyDocument", 400)
    assert admin.list_user_policies(UserName="malformed")["PolicyNames"] == []
    admin.delete_user(UserName="malformed")


@pytest.mark.parametrize(
    ("holder", "name", "quota"), [("user", "UserName", 2048), ("group", "GroupName", 5120)]
)
def test_size_quota_counts_all_inline_policies(admin: Any, holder: str, name: str, quota: int) -> None:
    owner = f"quota-{holder}"
    getattr(admin, f"create_{holder}")(**{name: owner})
    put = getattr(admin, f"put_{holder}_policy")
    half = _padded(quota // 2)
    put(**{name: owner}, PolicyName="a", PolicyDocument=half)
    # Whitespace is not counted: the same document pretty-printed still fits beside the first.
    put(
        **{name: owner},
        PolicyName="b",
        PolicyDocument=json.dumps(json.loads(_padded(quota // 2 - 100)), indent=8),
    )
    with pytest.raises(ClientError) as excinfo:
        put(**{name: owner}, PolicyName="c", PolicyDocument=_padded(200))
    assert error_of(excinfo) == (
        "LimitExceeded",
        409,
        f"Maximum policy size of {quota} bytes exceeded for {holder} {owner}",
    )
    assert getattr(admin, f"list_{holder}_policies")(**{name: owner})["PolicyNames"] == ["a", "b"]
    for policy in ("a", "b"):
        getattr(admin, f"delete_{holder}_policy")(**{name: owner}, PolicyName=policy)
    getattr(admin, f"delete_{holder}")(**{name: owner})


def test_policy_writes_are_authorized_on_the_holder(api: Api, admin: Any) -> None:
    admin.create_user(UserName="held")
    with pytest.raises(ClientError) as excinfo:
        api.client("reader").put_user_policy(UserName="held", PolicyName="p", PolicyDocument=_doc())
    assert "iam:PutUserPolicy on resource: arn:aws:iam::123456789012:user/held" in error_of(excinfo)[2]
    assert admin.list_user_policies(UserName="held")["PolicyNames"] == []
    admin.put_user_policy(UserName="held", PolicyName="p", PolicyDocument=_doc())
    event = api.audit.named("PutUserPolicy")[-1]
    assert event["requestParameters"] == {"userName": "held", "policyName": "p", "policyDocument": _doc()}
    admin.delete_user_policy(UserName="held", PolicyName="p")
    admin.delete_user(UserName="held")
