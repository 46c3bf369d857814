"""boto3's ``iam.simulate_custom_policy``/``simulate_principal_policy`` against a live fedgate.

The first tests encode the examples of the AWS documentation (the CLI reference of
``simulate-custom-policy`` and the IAM User Guide's policy-evaluation-logic pages), each with the
decision AWS documents for it stated explicitly.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.iam.conftest import ACCOUNT, IamFactory

# The AWS CLI reference's examples of simulate-custom-policy (awscli/examples/iam/), verbatim.
DYNAMODB_AFTER_DATE = (
    '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*",'
    '"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}'
)

# A multi-line document; statement positions depend on this exact layout.
LIST_ALL_MY_BUCKETS = """{
    "Version": "2012-10-17",
    "Statement": {
        "Effect": "Allow",
        "Action": "s3:ListAllMyBuckets",
        "Resource": "*"
    }
}"""

LIST_BUCKET_PREFIX = """{
    "Version": "2012-10-17",
    "Statement": {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::teambucket",
        "Condition": {
            "StringLike": {
                "s3:prefix": "production"
            }
        }
    }
}"""


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=4)


def _ctx(name: str, *values: str, type: str = "string") -> dict[str, Any]:
    return {"ContextKeyName": name, "ContextKeyValues": list(values), "ContextKeyType": type}


def _decisions(response: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"]) for r in response["EvaluationResults"]
    ]


def test_cli_reference_example_1_allowed(iam_client: IamFactory) -> None:
    # Documented output: "allowed", MatchedStatements [{SourcePolicyId "PolicyInputList.1",
    # StartPosition {Line 1, Column 38}, EndPosition {Line 1, Column 167}}], MissingContextValues [].
    out = iam_client().simulate_custom_policy(
        PolicyInputList=[DYNAMODB_AFTER_DATE],
        ActionNames=["dynamodb:CreateBackup"],
        ContextEntries=[_ctx("aws:CurrentTime", "2019-04-25T11:00:00Z", type="date")],
    )
    (result,) = out["EvaluationResults"]
    assert result["EvalActionName"] == "dynamodb:CreateBackup"
    assert result["EvalResourceName"] == "*"
    assert result["EvalDecision"] == "allowed"
    assert result["MatchedStatements"] == [
        {
            "SourcePolicyId": "PolicyInputList.1",
            "StartPosition": {"Line": 1, "Column": 38},
            "EndPosition": {"Line": 1, "Column": 167},
        }
    ]
    assert result["MissingContextValues"] == []
    assert "EvalDecisionDetails" not in result  # same account, resource "*": not returned
    assert out["IsTruncated"] is False


def test_cli_reference_example_2_prohibited(iam_client: IamFactory) -> None:
    # Documented output: a date before the condition's -> "implicitDeny", MatchedStatements [],
    # MissingContextValues [].
    out = iam_client().simulate_custom_policy(
        PolicyInputList=[DYNAMODB_AFTER_DATE],
        ActionNames=["dynamodb:CreateBackup"],
        ContextEntries=[_ctx("aws:CurrentTime", "2014-04-25T11:00:00Z", type="date")],
    )
    assert out["EvaluationResults"] == [
        {
            "EvalActionName": "dynamodb:CreateBackup",
            "EvalResourceName": "*",
            "EvalDecision": "implicitDeny",
            "MatchedStatements": [],
            "MissingContextValues": [],
        }
    ]


def test_multiline_positions_and_unmatched_action(iam_client: IamFactory) -> None:
    # Positions in indented text follow the same convention (just after the braces); an action
    # no statement names is "implicitDeny" with nothing matched.
    out = iam_client().simulate_custom_policy(
        PolicyInputList=[LIST_ALL_MY_BUCKETS], ActionNames=["s3:ListAllMyBuckets", "iam:CreateUser"]
    )
    first, second = out["EvaluationResults"]
    assert first["EvalDecision"] == "allowed"
    assert first["MatchedStatements"] == [
        {
            "SourcePolicyId": "PolicyInputList.1",
            "StartPosition": {"Line": 3, "Column": 19},
            "EndPosition": {"Line": 7, "Column": 6},
        }
    ]
    assert (second["EvalActionName"], second["EvalDecision"]) == ("iam:CreateUser", "implicitDeny")
    assert second["MatchedStatements"] == []


def test_doc_example_list_bucket_with_prefix_condition(iam_client: IamFactory) -> None:
    # The CLI guide's s3:prefix example: with s3:prefix = "production" ListBucket on teambucket
    # is "allowed"; the statement runs from just after its "{" (line 3) to just after its "}".
    iam = iam_client()
    out = iam.simulate_custom_policy(
        PolicyInputList=[LIST_BUCKET_PREFIX],
        ActionNames=["s3:ListBucket"],
        ResourceArns=["arn:aws:s3:::teambucket"],
        ContextEntries=[_ctx("s3:prefix", "production")],
    )
    (result,) = out["EvaluationResults"]
    assert result["EvalDecision"] == "allowed"
    assert result["EvalResourceName"] == "arn:aws:s3:::teambucket"
    stmt = result["MatchedStatements"][0]
    assert (stmt["StartPosition"], stmt["EndPosition"]) == (
        {"Line": 3, "Column": 19},
        {"Line": 12, "Column": 6},
    )
    assert result["EvalDecisionDetails"] == {}  # same account with a named resource: present, empty
    (specific,) = result["ResourceSpecificResults"]
    assert specific["EvalResourceName"] == "arn:aws:s3:::teambucket"
    assert specific["EvalResourceDecision"] == "allowed"

    # Another prefix, or none at all: "implicitDeny"; without it the key is reported missing.
    other = iam.simulate_custom_policy(
        PolicyInputList=[LIST_BUCKET_PREFIX],
        ActionNames=["s3:ListBucket"],
        ResourceArns=["arn:aws:s3:::teambucket"],
        ContextEntries=[_ctx("s3:prefix", "development")],
    )
    assert other["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"
    missing = iam.simulate_custom_policy(
        PolicyInputList=[LIST_BUCKET_PREFIX],
        ActionNames=["s3:ListBucket"],
        ResourceArns=["arn:aws:s3:::teambucket"],
    )
    (result,) = missing["EvaluationResults"]
    assert result["EvalDecision"] == "implicitDeny"
    assert result["MissingContextValues"] == ["s3:prefix"]


def test_doc_example_ec2_source_ip(iam_client: IamFactory) -> None:
    # The User Guide's "Denies access to AWS based on the source IP" policy beside an allow:
    # from 203.0.113.5 the call is "allowed"; from 198.51.100.7 it is an "explicitDeny".
    allow = _doc({"Effect": "Allow", "Action": "ec2:*", "Resource": "*"})
    deny = _doc(
        {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {
                "NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]},
                "Bool": {"aws:ViaAWSService": "false"},
            },
        }
    )
    iam = iam_client()
    results = {}
    for ip in ("203.0.113.5", "198.51.100.7"):
        out = iam.simulate_custom_policy(
            PolicyInputList=[allow, deny],
            ActionNames=["ec2:RunInstances"],
            ContextEntries=[
                _ctx("aws:SourceIp", ip, type="ip"),
                _ctx("aws:ViaAWSService", "false", type="boolean"),
            ],
        )
        results[ip] = out["EvaluationResults"][0]
    assert results["203.0.113.5"]["EvalDecision"] == "allowed"
    assert results["203.0.113.5"]["MatchedStatements"][0]["SourcePolicyId"] == "PolicyInputList.1"
    assert results["198.51.100.7"]["EvalDecision"] == "explicitDeny"
    assert results["198.51.100.7"]["MatchedStatements"][0]["SourcePolicyId"] == "PolicyInputList.2"


def test_doc_example_ip_address_allow(iam_client: IamFactory) -> None:
    # An allow limited by IpAddress: inside the range "allowed", outside "implicitDeny".
    policy = _doc(
        {
            "Effect": "Allow",
            "Action": "ec2:DescribeInstances",
            "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        }
    )
    iam = iam_client()
    inside = iam.simulate_custom_policy(
        PolicyInputList=[policy],
        ActionNames=["ec2:DescribeInstances"],
        ContextEntries=[_ctx("aws:SourceIp", "203.0.113.200", type="ip")],
    )
    outside = iam.simulate_custom_policy(
        PolicyInputList=[policy],
        ActionNames=["ec2:DescribeInstances"],
        ContextEntries=[_ctx("aws:SourceIp", "203.0.114.1", type="ip")],
    )
    assert inside["EvaluationResults"][0]["EvalDecision"] == "allowed"
    assert outside["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"


def test_doc_example_explicit_deny_overrides_allow(iam_client: IamFactory) -> None:
    # Evaluation logic: an explicit deny in any policy overrides any allow.
    policy = _doc(
        {"Sid": "AllowAll", "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Sid": "NoBucketDeletes", "Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"},
    )
    out = iam_client().simulate_custom_policy(
        PolicyInputList=[policy], ActionNames=["s3:DeleteBucket", "s3:GetObject"]
    )
    assert _decisions(out) == [("s3:DeleteBucket", "*", "explicitDeny"), ("s3:GetObject", "*", "allowed")]
    deny = out["EvaluationResults"][0]["MatchedStatements"]
    assert len(deny) == 1 and deny[0]["StartPosition"]["Line"] == 10  # the second statement


def test_doc_example_permissions_boundary(iam_client: IamFactory) -> None:
    # The User Guide's boundary example: the identity policy allows iam:CreateUser, the boundary
    # allows only s3:*, cloudwatch:* and ec2:*. Effective: the intersection.
    identity = _doc({"Effect": "Allow", "Action": ["iam:CreateUser", "s3:*"], "Resource": "*"})
    boundary = _doc({"Effect": "Allow", "Action": ["s3:*", "cloudwatch:*", "ec2:*"], "Resource": "*"})
    out = iam_client().simulate_custom_policy(
        PolicyInputList=[identity],
        PermissionsBoundaryPolicyInputList=[boundary],
        ActionNames=["iam:CreateUser", "s3:GetObject", "cloudwatch:GetMetricData"],
    )
    create, get, metrics = out["EvaluationResults"]
    # iam:CreateUser: allowed by identity, not by the boundary -> implicitDeny.
    assert create["EvalDecision"] == "implicitDeny"
    assert create["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}
    # s3:GetObject: allowed by both -> allowed, both statements matched.
    assert get["EvalDecision"] == "allowed"
    assert get["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": True}
    assert [m["SourcePolicyId"] for m in get["MatchedStatements"]] == [
        "PolicyInputList.1",
        "PermissionsBoundaryPolicyInputList.1",
    ]
    # cloudwatch: the boundary allows it but no identity policy does -> implicitDeny.
    assert metrics["EvalDecision"] == "implicitDeny"
    assert metrics["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": True}


CARLOS = f"arn:aws:iam::{ACCOUNT}:user/carlos"
CARLOS_IDENTITY = _doc(
    {
        "Sid": "AllowS3ListRead",
        "Effect": "Allow",
        "Action": ["s3:GetBucketLocation", "s3:GetObjectVersion", "s3:ListAllMyBuckets"],
        "Resource": "*",
    },
    {
        "Sid": "AllowS3Self",
        "Effect": "Allow",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::carlos-bucket", "arn:aws:s3:::carlos-bucket/*"],
    },
    {"Sid": "DenyS3Logs", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::*log*"},
)
SHARED_BUCKET_POLICY = _doc(
    {
        "Sid": "CarlosReads",
        "Effect": "Allow",
        "Principal": {"AWS": CARLOS},
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::shared-bucket/*",
    }
)


@pytest.mark.parametrize(
    ("action", "resource", "expected"),
    [
        ("s3:GetObject", "arn:aws:s3:::carlos-bucket/notes.txt", "allowed"),  # AllowS3Self
        ("s3:ListAllMyBuckets", "*", "allowed"),  # AllowS3ListRead
        ("s3:PutObject", "arn:aws:s3:::carlos-logs/today", "explicitDeny"),  # DenyS3Logs
        ("s3:GetObject", "arn:aws:s3:::other-bucket/x", "implicitDeny"),  # nothing allows it
        # Same account: a resource policy naming the user allows on its own.
        ("s3:GetObject", "arn:aws:s3:::shared-bucket/report.csv", "allowed"),
    ],
)
def test_doc_example_identity_and_resource_policies(
    iam_client: IamFactory, action: str, resource: str, expected: str
) -> None:
    out = iam_client().simulate_custom_policy(
        PolicyInputList=[CARLOS_IDENTITY],
        ResourcePolicy=SHARED_BUCKET_POLICY,
        CallerArn=CARLOS,
        ActionNames=[action],
        ResourceArns=[resource],
    )
    assert _decisions(out) == [(action, resource, expected)]


def test_doc_example_cross_account_needs_both(iam_client: IamFactory) -> None:
    # Across accounts the identity policy and the resource policy must both allow.
    out = iam_client().simulate_custom_policy(
        PolicyInputList=[CARLOS_IDENTITY],
        ResourcePolicy=SHARED_BUCKET_POLICY,
        ResourceOwner="arn:aws:iam::999999999999:root",
        CallerArn=CARLOS,
        ActionNames=["s3:GetObject"],
        ResourceArns=["arn:aws:s3:::shared-bucket/report.csv", "arn:aws:s3:::carlos-bucket/x"],
    )
    shared, own = out["EvaluationResults"]
    assert shared["EvalDecision"] == "implicitDeny"
    assert shared["EvalDecisionDetails"] == {"IAM Policy": "implicitDeny", "Resource Policy": "allowed"}
    assert own["EvalDecision"] == "implicitDeny"
    assert own["EvalDecisionDetails"] == {"IAM Policy": "allowed", "Resource Policy": "implicitDeny"}


def test_cli_reference_principal_examples(iam_client: IamFactory) -> None:
    # simulate-principal-policy examples: codecommit:ListRepositories is "allowed" by the policy
    # "Grant-Access-To-CodeCommit-ListRepo"; dynamodb:CreateBackup at 2018-04-25 (before the
    # policy's date) is "implicitDeny" with nothing matched and nothing missing.
    iam = iam_client()
    source = f"arn:aws:iam::{ACCOUNT}:role/alejandro"
    out = iam.simulate_principal_policy(PolicySourceArn=source, ActionNames=["codecommit:ListRepositories"])
    (result,) = out["EvaluationResults"]
    assert result["EvalDecision"] == "allowed"
    assert [m["SourcePolicyId"] for m in result["MatchedStatements"]] == [
        "Grant-Access-To-CodeCommit-ListRepo"
    ]
    assert result["MissingContextValues"] == []
    out = iam.simulate_principal_policy(
        PolicySourceArn=source,
        ActionNames=["dynamodb:CreateBackup"],
        ContextEntries=[_ctx("aws:CurrentTime", "2018-04-25T11:00:00Z", type="date")],
    )
    (result,) = out["EvaluationResults"]
    assert (result["EvalDecision"], result["MatchedStatements"], result["MissingContextValues"]) == (
        "implicitDeny",
        [],
        [],
    )


def test_principal_policy_uses_the_roles_policies(iam_client: IamFactory) -> None:
    out = iam_client().simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/target",
        ActionNames=["s3:GetObject", "s3:DeleteObject", "ec2:RunInstances"],
    )
    get, delete, run = out["EvaluationResults"]
    assert get["EvalDecision"] == "allowed"
    assert get["MatchedStatements"][0]["SourcePolicyId"] == f"arn:aws:iam::{ACCOUNT}:policy/s3-read"
    assert get["MatchedStatements"][0]["SourcePolicyType"] == "user-managed"
    assert delete["EvalDecision"] == "explicitDeny"
    assert delete["MatchedStatements"][0]["SourcePolicyId"] == "no-deletes"
    assert delete["MatchedStatements"][0]["SourcePolicyType"] == "role"
    assert run["EvalDecision"] == "implicitDeny"


def test_principal_policy_with_extra_input_policy(iam_client: IamFactory) -> None:
    extra = _doc({"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*"})
    out = iam_client().simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/target",
        PolicyInputList=[extra],
        ActionNames=["ec2:RunInstances"],
    )
    (result,) = out["EvaluationResults"]
    assert result["EvalDecision"] == "allowed"
    assert result["MatchedStatements"][0]["SourcePolicyId"] == "PolicyInputList.1"


def test_pagination(iam_client: IamFactory) -> None:
    iam = iam_client()
    args: dict[str, Any] = {
        "PolicyInputList": [LIST_ALL_MY_BUCKETS],
        "ActionNames": ["s3:ListAllMyBuckets", "s3:GetObject", "iam:CreateUser"],
        "MaxItems": 2,
    }
    first = iam.simulate_custom_policy(**args)
    assert first["IsTruncated"] is True and len(first["EvaluationResults"]) == 2
    rest = iam.simulate_custom_policy(**args, Marker=first["Marker"])
    assert rest["IsTruncated"] is False
    assert [r["EvalActionName"] for r in rest["EvaluationResults"]] == ["iam:CreateUser"]
    paged = iam.get_paginator("simulate_custom_policy").paginate(
        PolicyInputList=[LIST_ALL_MY_BUCKETS],
        ActionNames=args["ActionNames"],
        PaginationConfig={"PageSize": 1},
    )
    assert [r["EvalActionName"] for page in paged for r in page["EvaluationResults"]] == args["ActionNames"]


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_malformed_policy_is_refused(iam_client: IamFactory) -> None:
    iam = iam_client()
    bad = [
        '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*"}}',  # no Resource
        '{"Version": "2012-10-17", "Statement": {"Effect": "Permit", "Action": "s3:*", "Resource": "*"}}',
        '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", '
        '"Condition": {"StringLikeX": {"s3:prefix": "a"}}}}',
        "not json",
        # Nested past the interpreter's recursion limit, closed and unclosed: refused, never a 500.
        '{"Version": "2012-10-17", "Statement": ' + "[" * 20_000 + "]" * 20_000 + "}",
        '{"Version": "2012-10-17", "Statement": ' + '{"a":' * 20_000,
    ]
    for doc in bad:
        with pytest.raises(ClientError) as exc:
            iam.simulate_custom_policy(PolicyInputList=[doc], ActionNames=["s3:GetObject"])
        assert _error(exc) == ("MalformedPolicyDocument", 400), doc
    with pytest.raises(ClientError) as exc:
        iam.simulate_custom_policy(
            PolicyInputList=[LIST_ALL_MY_BUCKETS],
            ResourcePolicy=LIST_ALL_MY_BUCKETS,  # no Principal
            CallerArn=CARLOS,
            ActionNames=["s3:GetObject"],
        )
    assert _error(exc) == ("MalformedPolicyDocument", 400)


def test_bad_context_value_is_refused(iam_client: IamFactory) -> None:
    with pytest.raises(ClientError) as exc:
        iam_client().simulate_custom_policy(
            PolicyInputList=[LIST_ALL_MY_BUCKETS],
            ActionNames=["s3:GetObject"],
            ContextEntries=[_ctx("aws:SourceIp", "not-an-ip", type="ip")],
        )
    assert _error(exc) == ("ValidationError", 400)


def test_unknown_role_is_no_such_entity(iam_client: IamFactory) -> None:
    with pytest.raises(ClientError) as exc:
        iam_client().simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/ghost", ActionNames=["s3:GetObject"]
        )
    assert _error(exc) == ("NoSuchEntity", 404)
    assert exc.value.response["Error"]["Type"] == "Sender"


def test_caller_without_permission_is_denied(iam_client: IamFactory) -> None:
    with pytest.raises(ClientError) as exc:
        iam_client("nobody").simulate_custom_policy(
            PolicyInputList=[LIST_ALL_MY_BUCKETS], ActionNames=["s3:GetObject"]
        )
    assert _error(exc) == ("AccessDenied", 403)
    assert "iam:SimulateCustomPolicy" in exc.value.response["Error"]["Message"]


def test_explicit_deny_on_a_principal(iam_client: IamFactory) -> None:
    with pytest.raises(ClientError) as exc:
        iam_client().simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/secret", ActionNames=["s3:GetObject"]
        )
    assert _error(exc) == ("AccessDenied", 403)
    assert "explicit deny" in exc.value.response["Error"]["Message"]


def test_session_policy_limits_the_caller(iam_client: IamFactory) -> None:
    # The role allows simulation, but the session policy does not: intersection -> AccessDenied.
    session = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    )
    with pytest.raises(ClientError) as exc:
        iam_client(Policy=session).simulate_custom_policy(
            PolicyInputList=[LIST_ALL_MY_BUCKETS], ActionNames=["s3:GetObject"]
        )
    assert _error(exc) == ("AccessDenied", 403)


def test_unsigned_call_is_refused(iam_url: str) -> None:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    iam = boto3.client(
        "iam", endpoint_url=iam_url, region_name="us-east-1", config=Config(signature_version=UNSIGNED)
    )
    with pytest.raises(ClientError) as exc:
        iam.simulate_custom_policy(PolicyInputList=[LIST_ALL_MY_BUCKETS], ActionNames=["s3:GetObject"])
    assert _error(exc) == ("MissingAuthenticationToken", 403)
