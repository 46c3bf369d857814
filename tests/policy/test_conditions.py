"""Condition operators, table-driven from the examples in AWS's "Condition operators" page."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policy.policy_helpers import allow, cond_holds, decide, identity

NOW = "2024-06-01T12:00:00Z"
CASES: list[tuple[str, str, Any, dict[str, Any], bool]] = [
    # String operators (values case-sensitive)
    (
        "StringEquals",
        "aws:PrincipalTag/job-category",
        "iamuser-admin",
        {"aws:principaltag/job-category": "iamuser-admin"},
        True,
    ),
    (
        "StringEquals",
        "aws:PrincipalTag/job-category",
        "iamuser-admin",
        {"aws:PrincipalTag/job-category": "IAMUser-Admin"},
        False,
    ),
    (
        "StringEquals",
        "aws:PrincipalTag/job-category",
        ["a", "b"],
        {"aws:PrincipalTag/job-category": "b"},
        True,
    ),
    ("StringEquals", "aws:PrincipalTag/job-category", "a", {}, False),
    ("StringNotEquals", "aws:PrincipalTag/dept", ["a", "b"], {"aws:PrincipalTag/dept": "c"}, True),
    ("StringNotEquals", "aws:PrincipalTag/dept", ["a", "b"], {"aws:PrincipalTag/dept": "b"}, False),
    ("StringNotEquals", "aws:PrincipalTag/dept", "a", {}, True),  # negated: missing key matches
    ("StringEqualsIgnoreCase", "aws:PrincipalTag/name", "Alice", {"aws:PrincipalTag/name": "aLiCe"}, True),
    (
        "StringNotEqualsIgnoreCase",
        "aws:PrincipalTag/name",
        "Alice",
        {"aws:PrincipalTag/name": "ALICE"},
        False,
    ),
    ("StringNotEqualsIgnoreCase", "aws:PrincipalTag/name", "Alice", {"aws:PrincipalTag/name": "bob"}, True),
    (
        "StringLike",
        "s3:prefix",
        ["", "home/", "home/${aws:username}/*"],
        {"s3:prefix": "home/", "aws:username": "a"},
        True,
    ),
    ("StringLike", "s3:prefix", "home/*", {"s3:prefix": "home/a/b/c"}, True),
    ("StringLike", "s3:prefix", "home/?", {"s3:prefix": "home/ab"}, False),
    ("StringLike", "s3:prefix", "Home/*", {"s3:prefix": "home/x"}, False),
    ("StringNotLike", "s3:prefix", "home/*", {"s3:prefix": "etc/passwd"}, True),
    ("StringNotLike", "s3:prefix", "home/*", {"s3:prefix": "home/x"}, False),
    ("StringEqualsIfExists", "ec2:InstanceType", ["t1.*", "t2.micro"], {}, True),
    ("StringEqualsIfExists", "ec2:InstanceType", ["t2.micro"], {"ec2:InstanceType": "m5.large"}, False),
    # Numeric
    ("NumericLessThan", "s3:max-keys", "10", {"s3:max-keys": "9"}, True),
    ("NumericLessThan", "s3:max-keys", "10", {"s3:max-keys": "10"}, False),
    ("NumericLessThanEquals", "s3:max-keys", 10, {"s3:max-keys": "10"}, True),
    ("NumericGreaterThan", "s3:max-keys", "10", {"s3:max-keys": "10.5"}, True),
    ("NumericGreaterThanEquals", "s3:max-keys", "10", {"s3:max-keys": "9"}, False),
    ("NumericEquals", "s3:max-keys", ["5", "10"], {"s3:max-keys": "10.0"}, True),
    ("NumericNotEquals", "s3:max-keys", ["5", "10"], {"s3:max-keys": "7"}, True),
    ("NumericNotEquals", "s3:max-keys", ["5", "10"], {"s3:max-keys": "5"}, False),
    ("NumericLessThan", "s3:max-keys", "10", {}, False),
    (
        "NumericLessThan",
        "s3:max-keys",
        "10",
        {"s3:max-keys": "lots"},
        False,
    ),  # unreadable: Allow fails closed
    ("NumericLessThanIfExists", "aws:MultiFactorAuthAge", "3600", {}, True),
    # Date: ISO 8601 and epoch seconds, on either side
    ("DateGreaterThan", "aws:CurrentTime", "2020-04-01T00:00:00Z", {"aws:CurrentTime": NOW}, True),
    ("DateLessThan", "aws:CurrentTime", "2020-06-30T00:00:00Z", {"aws:CurrentTime": NOW}, False),
    ("DateLessThan", "aws:CurrentTime", "2030-01-01", {"aws:CurrentTime": NOW}, True),
    ("DateEquals", "aws:EpochTime", "1717243200", {"aws:EpochTime": "1717243200"}, True),
    ("DateEquals", "aws:CurrentTime", "1717243200", {"aws:CurrentTime": NOW}, True),
    ("DateNotEquals", "aws:CurrentTime", "1717243200", {"aws:CurrentTime": NOW}, False),
    ("DateLessThanEquals", "aws:CurrentTime", "2024-06-01T14:00:00+02:00", {"aws:CurrentTime": NOW}, True),
    ("DateGreaterThanEquals", "aws:CurrentTime", NOW, {"aws:CurrentTime": "1717243199"}, False),
    (
        "DateGreaterThan",
        "aws:TokenIssueTime",
        "2020-01-01T00:00:00Z",
        {"aws:TokenIssueTime": "garbage"},
        False,
    ),
    # Bool
    ("Bool", "aws:SecureTransport", "true", {"aws:SecureTransport": "true"}, True),
    ("Bool", "aws:SecureTransport", True, {"aws:SecureTransport": "TRUE"}, True),
    ("Bool", "aws:SecureTransport", "true", {"aws:SecureTransport": "false"}, False),
    ("Bool", "aws:SecureTransport", "true", {}, False),
    ("BoolIfExists", "aws:MultiFactorAuthPresent", "false", {}, True),
    ("Bool", "aws:MultiFactorAuthPresent", "true", {"aws:MultiFactorAuthPresent": "yes"}, False),
    # Binary
    (
        "BinaryEquals",
        "key:bin",
        "QmluYXJ5VmFsdWVJbkJhc2U2NA==",
        {"key:bin": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="},
        True,
    ),
    ("BinaryEquals", "key:bin", "QmluYXJ5VmFsdWVJbkJhc2U2NA==", {"key:bin": "QmluYXJ5"}, False),
    # IP address (IPv4 and IPv6 CIDRs)
    ("IpAddress", "aws:SourceIp", "203.0.113.0/24", {"aws:SourceIp": "203.0.113.77"}, True),
    (
        "IpAddress",
        "aws:SourceIp",
        ["203.0.113.0/24", "2001:DB8:1234:5678::/64"],
        {"aws:SourceIp": "2001:db8:1234:5678::1"},
        True,
    ),
    ("IpAddress", "aws:SourceIp", "203.0.113.0/24", {"aws:SourceIp": "198.51.100.1"}, False),
    ("IpAddress", "aws:SourceIp", "203.0.113.9", {"aws:SourceIp": "203.0.113.9"}, True),
    ("IpAddress", "aws:SourceIp", "0.0.0.0/0", {"aws:SourceIp": "::1"}, False),
    ("NotIpAddress", "aws:SourceIp", "203.0.113.0/24", {"aws:SourceIp": "198.51.100.1"}, True),
    ("NotIpAddress", "aws:SourceIp", "203.0.113.0/24", {"aws:SourceIp": "203.0.113.1"}, False),
    ("IpAddress", "aws:SourceIp", "203.0.113.0/24", {"aws:SourceIp": "not-an-ip"}, False),
    # ARN operators: each of the six segments matched separately
    (
        "ArnEquals",
        "aws:SourceArn",
        "arn:aws:sns:us-west-2:123456789012:my-topic",
        {"aws:SourceArn": "arn:aws:sns:us-west-2:123456789012:my-topic"},
        True,
    ),
    (
        "ArnLike",
        "aws:SourceArn",
        "arn:aws:sns:*:123456789012:*",
        {"aws:SourceArn": "arn:aws:sns:eu-west-1:123456789012:t:x"},
        True,
    ),
    (
        "ArnLike",
        "aws:SourceArn",
        "arn:aws:sns:*:123456789012:*",
        {"aws:SourceArn": "arn:aws:sns:eu-west-1:210987654321:t"},
        False,
    ),
    (
        "ArnLike",
        "aws:SourceArn",
        "arn:aws:sns:*:123456789012:t",  # a region '*' never swallows a ':'
        {"aws:SourceArn": "arn:aws:sns:eu-west-1:x:123456789012:t"},
        False,
    ),
    ("ArnNotLike", "aws:SourceArn", "arn:aws:s3:::bucket/*", {"aws:SourceArn": "arn:aws:s3:::other/x"}, True),
    ("ArnNotEquals", "aws:SourceArn", "arn:aws:s3:::bucket", {"aws:SourceArn": "arn:aws:s3:::bucket"}, False),
    ("ArnLike", "aws:SourceArn", "arn:aws:s3:::b/*", {"aws:SourceArn": "not-an-arn"}, False),
    # Null
    ("Null", "aws:TokenIssueTime", "true", {}, True),
    ("Null", "aws:TokenIssueTime", "true", {"aws:TokenIssueTime": NOW}, False),
    ("Null", "aws:TokenIssueTime", "false", {"aws:TokenIssueTime": NOW}, True),
    ("Null", "aws:TagKeys", "false", {"aws:TagKeys": []}, False),
    # Multi-valued keys and set operators
    (
        "ForAllValues:StringEquals",
        "aws:TagKeys",
        ["environment", "cost-center"],
        {"aws:TagKeys": ["environment"]},
        True,
    ),
    (
        "ForAllValues:StringEquals",
        "aws:TagKeys",
        ["environment", "cost-center"],
        {"aws:TagKeys": ["environment", "owner"]},
        False,
    ),
    ("ForAllValues:StringEquals", "aws:TagKeys", ["environment"], {}, True),  # true on a missing key
    ("ForAllValues:StringEquals", "aws:TagKeys", ["environment"], {"aws:TagKeys": []}, True),
    (
        "ForAnyValue:StringEquals",
        "aws:TagKeys",
        ["environment", "cost-center"],
        {"aws:TagKeys": ["owner", "cost-center"]},
        True,
    ),
    ("ForAnyValue:StringEquals", "aws:TagKeys", ["environment"], {"aws:TagKeys": ["owner"]}, False),
    ("ForAnyValue:StringEquals", "aws:TagKeys", ["environment"], {}, False),  # false on a missing key
    ("ForAnyValue:StringEquals", "aws:TagKeys", ["environment"], {"aws:TagKeys": []}, False),
    # ForAnyValue:...IfExists on a missing key: tests/policy/test_conformance.py
    ("ForAllValues:StringNotEquals", "aws:TagKeys", ["secret"], {"aws:TagKeys": ["a", "b"]}, True),
    ("ForAllValues:StringNotEquals", "aws:TagKeys", ["secret"], {"aws:TagKeys": ["a", "secret"]}, False),
    ("ForAnyValue:StringNotEquals", "aws:TagKeys", ["secret"], {"aws:TagKeys": ["secret", "a"]}, True),
    (
        "ForAnyValue:StringLike",
        "accounts.google.com:groups",
        ["eng-*"],
        {"accounts.google.com:groups": ["ops", "eng-db"]},
        True,
    ),
    (
        "ForAllValues:StringLike",
        "accounts.google.com:groups",
        ["eng-*"],
        {"accounts.google.com:groups": ["ops", "eng-db"]},
        False,
    ),
    ("ForAnyValue:StringEquals", "issuer.example.com:amr", "mfa", {"issuer.example.com:amr": "mfa"}, True),
    ("ForAnyValue:NumericGreaterThan", "k:n", "5", {"k:n": ["1", "7"]}, True),
    ("ForAllValues:IpAddress", "k:ips", "10.0.0.0/8", {"k:ips": ["10.1.1.1", "10.2.2.2"]}, True),
    # Plain operators on multi-valued keys: any value matching counts; negated means none does
    ("StringEquals", "issuer.example.com:amr", "mfa", {"issuer.example.com:amr": ["pwd", "mfa"]}, True),
    ("StringEquals", "issuer.example.com:amr", "otp", {"issuer.example.com:amr": ["pwd", "mfa"]}, False),
    ("StringNotEquals", "issuer.example.com:amr", "mfa", {"issuer.example.com:amr": ["pwd", "mfa"]}, False),
    ("StringNotEquals", "issuer.example.com:amr", "otp", {"issuer.example.com:amr": ["pwd", "mfa"]}, True),
    # Claim keys are ordinary keys, compared case-insensitively by key name
    (
        "StringEquals",
        "accounts.google.com:aud",
        "1234.apps.googleusercontent.com",
        {"ACCOUNTS.google.com:AUD": "1234.apps.googleusercontent.com"},
        True,
    ),
]


@pytest.mark.parametrize(
    ("op", "key", "values", "context", "expected"), CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)]
)
def test_operator(op: str, key: str, values: Any, context: dict[str, Any], expected: bool) -> None:
    assert cond_holds(op, key, values, context) is expected


def test_keys_and_operators_are_anded() -> None:
    p = identity(
        allow(
            {
                "StringEquals": {"aws:PrincipalTag/team": "a", "aws:RequestedRegion": "eu-west-1"},
                "Bool": {"aws:SecureTransport": "true"},
            }
        )
    )
    ctx = {"aws:PrincipalTag/team": "a", "aws:RequestedRegion": "eu-west-1", "aws:SecureTransport": "true"}
    assert decide([p], context=ctx).allowed
    for drop in ctx:
        assert not decide([p], context={k: v for k, v in ctx.items() if k != drop}).allowed, drop


def test_unreadable_context_value_makes_deny_apply() -> None:
    """Fail closed: a Deny whose condition cannot be read for this request applies."""
    p = identity(allow(), allow({"NumericGreaterThan": {"aws:MultiFactorAuthAge": "3600"}}, Effect="Deny"))
    assert decide([p], context={"aws:MultiFactorAuthAge": "60"}).allowed
    assert not decide([p], context={"aws:MultiFactorAuthAge": "4000"}).allowed
    d = decide([p], context={"aws:MultiFactorAuthAge": "sixty"})
    assert (d.allowed, d.kind) == (False, "explicitDeny")
    # ...but a clause that is plainly false still keeps the Deny from applying.
    q = identity(
        allow(),
        allow(
            {
                "NumericGreaterThan": {"aws:MultiFactorAuthAge": "3600"},
                "StringEquals": {"aws:username": "root"},
            },
            Effect="Deny",
        ),
    )
    assert decide([q], context={"aws:MultiFactorAuthAge": "sixty", "aws:username": "alice"}).allowed
