"""STS parameter validation follows AWS's limits, with AWS's error codes."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import InvalidParameterValue, MissingParameter, ServiceError, ValidationError
from gateway.sts.params import AssumeRoleParams, AssumeRoleWithWebIdentityParams, collect_params, form_pairs

ROLE = "arn:aws:iam::123456789012:role/app"


def _parse(**overrides: str | None) -> AssumeRoleWithWebIdentityParams:
    values: dict[str, str | None] = {
        "Action": "AssumeRoleWithWebIdentity",
        "RoleArn": ROLE,
        "RoleSessionName": "session",
        "WebIdentityToken": "a.b.c",
    }
    values.update(overrides)
    return AssumeRoleWithWebIdentityParams.parse(
        collect_params((k, v) for k, v in values.items() if v is not None)
    )


def test_defaults() -> None:
    args = _parse()
    assert (args.role_arn, args.role_session_name, args.duration_seconds) == (ROLE, "session", 3600)
    assert args.policy is None and args.policy_arns == () and not args.duration_given


def test_policy_arns_members_in_order() -> None:
    arns = {f"PolicyArns.member.{i}.arn": f"arn:aws:iam::123456789012:policy/p{i}" for i in range(1, 4)}
    args = _parse(**arns)
    assert args.policy_arns == tuple(arns.values())


@pytest.mark.parametrize(
    ("overrides", "error", "fragment"),
    [
        ({"RoleArn": None}, MissingParameter, "RoleArn"),
        ({"RoleSessionName": None}, MissingParameter, "RoleSessionName"),
        ({"WebIdentityToken": None}, MissingParameter, "WebIdentityToken"),
        ({"RoleArn": "arn:aws:iam::123:role/x"}, ValidationError, "not a valid role ARN"),
        ({"RoleArn": "arn:aws:iam::123456789012:user/someone"}, ValidationError, "not a valid role ARN"),
        ({"RoleSessionName": "a"}, ValidationError, "length between 2 and 64"),
        ({"RoleSessionName": "x" * 65}, ValidationError, "length between 2 and 64"),
        ({"RoleSessionName": "has space"}, ValidationError, "regular expression"),
        ({"RoleSessionName": "caf\u00e9!"}, ValidationError, "regular expression"),
        ({"WebIdentityToken": "abc"}, ValidationError, "length between 4 and 20000"),
        ({"WebIdentityToken": "a" * 20001}, ValidationError, "length between 4 and 20000"),
        ({"DurationSeconds": "899"}, ValidationError, "between 900 and 43200"),
        ({"DurationSeconds": "43201"}, ValidationError, "between 900 and 43200"),
        ({"DurationSeconds": "1e3"}, ValidationError, "integer"),
        ({"DurationSeconds": "-900"}, ValidationError, "integer"),
        ({"Policy": "x" * 2049}, ValidationError, "2048"),
        ({"Policy": ""}, ValidationError, "empty"),
        ({"Policy": '{"a": "\u2603"}'}, ValidationError, "characters"),
        ({"PolicyArns.member.2.arn": "arn:aws:iam::123456789012:policy/p"}, ValidationError, "without gaps"),
        ({"PolicyArns.member.1.arn": "not-an-arn-at-all-really"}, ValidationError, "not a valid policy ARN"),
        ({"PolicyArns.member.1.nope": "x"}, ValidationError, "Unknown parameter"),
    ],
)
def test_invalid_parameters(
    overrides: dict[str, str | None], error: type[ServiceError], fragment: str
) -> None:
    with pytest.raises(error) as info:
        _parse(**overrides)
    assert fragment in info.value.message


def test_more_than_ten_policy_arns() -> None:
    arns = {f"PolicyArns.member.{i}.arn": f"arn:aws:iam::123456789012:policy/p{i}" for i in range(1, 12)}
    with pytest.raises(ValidationError, match="less than or equal to 10"):
        _parse(**arns)


def test_duplicate_parameter_refused() -> None:
    with pytest.raises(InvalidParameterValue, match="more than once"):
        collect_params([("RoleArn", ROLE), ("RoleArn", "arn:aws:iam::123456789012:role/other")])


def test_too_many_parameters_refused() -> None:
    with pytest.raises(ValidationError):
        collect_params((f"P{i}", "v") for i in range(600))


def _assume_role(**overrides: str) -> AssumeRoleParams:
    values = {"Action": "AssumeRole", "RoleArn": ROLE, "RoleSessionName": "session", **overrides}
    return AssumeRoleParams.parse(collect_params(values.items()))


def test_assume_role_tags_transitive_keys_and_identifiers() -> None:
    args = _assume_role(
        **{
            "Tags.member.1.Key": "Équipe",  # tag text is any letter, number or separator
            "Tags.member.1.Value": "données 2026",
            "Tags.member.2.Key": "cost-center",
            "Tags.member.2.Value": "",
            "TransitiveTagKeys.member.1": "équipe",  # keys match ignoring case, spelled as tagged
            "SourceIdentity": "alice@example.com",
            "ExternalId": "arn:partner/build-42",
            "SerialNumber": "arn:aws:iam::123456789012:mfa/alice",
            "TokenCode": "123456",
        }
    )
    assert dict(args.tags) == {"Équipe": "données 2026", "cost-center": ""}
    assert args.transitive_tag_keys == ("Équipe",)
    assert (args.source_identity, args.external_id) == ("alice@example.com", "arn:partner/build-42")
    assert (args.serial_number, args.token_code) == ("arn:aws:iam::123456789012:mfa/alice", "123456")
    plain = _assume_role()
    assert plain.tags == {} and plain.transitive_tag_keys == () and plain.source_identity is None


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"Tags.member.1.Key": "a<b", "Tags.member.1.Value": "v"}, ValidationError),
        ({"Tags.member.1.Key": "k", "Tags.member.1.Value": "v" * 257}, ValidationError),
        ({"Tags.member.1.Key": "k"}, ValidationError),
        ({"Tags.member.2.Key": "k", "Tags.member.2.Value": "v"}, ValidationError),
        ({"Tags.member.1.Kee": "k"}, ValidationError),
        (
            {
                "Tags.member.1.Key": "k",
                "Tags.member.1.Value": "1",
                "Tags.member.2.Key": "K",
                "Tags.member.2.Value": "2",
            },
            InvalidParameterValue,
        ),
        ({"TransitiveTagKeys.member.1": "absent"}, InvalidParameterValue),
        ({"SourceIdentity": "has space"}, ValidationError),
        ({"SourceIdentity": "aws:reserved"}, ValidationError),
        ({"ExternalId": "x"}, ValidationError),
        ({"TokenCode": "12345a"}, ValidationError),
        ({"SerialNumber": "short"}, ValidationError),
    ],
)
def test_assume_role_refuses_what_aws_refuses(overrides: dict[str, str], error: type[ServiceError]) -> None:
    with pytest.raises(error):
        _assume_role(**overrides)


# Pieces that make the hard cases: escapes of valid, truncated and invalid UTF-8 next to literal
# non-ASCII characters, malformed escapes, empty fields, fields without "=".
_FORM_PIECES = [
    "a",
    "b",
    "=",
    "&",
    "+",
    "%",
    "%20",
    "%2B",
    "%C3",
    "%A9",
    "%E2%82",
    "%AC",
    "%ff",
    "%2x",
    ";",
    "é",
    "€",
    "\x00",
]
_FORM_TEXT = st.lists(st.sampled_from(_FORM_PIECES), max_size=16).map("".join) | st.text(max_size=20)


@settings(max_examples=1000)
@given(_FORM_TEXT, st.booleans(), st.integers(min_value=1, max_value=6))
def test_form_pairs_reads_what_parse_qsl_reads(text: str, strict: bool, max_fields: int) -> None:
    try:
        expected: object = parse_qsl(
            text, keep_blank_values=True, strict_parsing=strict, max_num_fields=max_fields
        )
    except ValueError:
        expected = ValueError
    try:
        got: object = form_pairs(text, strict=strict, max_fields=max_fields)
    except ValueError:
        got = ValueError
    assert got == expected
