"""The simulator's pure parts: statement positions, Query parameters, context entries, results."""

from __future__ import annotations

import json

import pytest

from gateway.errors import MalformedPolicyDocument, MissingParameter, NoSuchEntity, ValidationError
from gateway.iam import ContextEntry, Simulation, SimulationParams, SourcePolicy, build_context, simulate
from gateway.iam.positions import Position, statement_spans


def test_positions_single_line_matches_the_cli_reference() -> None:
    text = (
        '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*",'
        '"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}'
    )
    (span,) = statement_spans(text)
    assert (span.start, span.end) == (Position(1, 38), Position(1, 167))


def test_positions_of_a_statement_list_with_tricky_strings() -> None:
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "A", "Effect": "Allow", "Action": "s3:*", "Resource": 'arn:aws:s3:::b/{x}"[y]'},
            {"Sid": "B", "Effect": "Deny", "Action": "s3:Delete*", "Resource": "*"},
        ],
    }
    text = json.dumps(doc, indent=2)
    a, b = statement_spans(text)
    lines = text.splitlines()
    assert lines[a.start.line - 1][a.start.column - 2] == "{"
    assert lines[a.end.line - 1][a.end.column - 2] == "}"
    assert lines[b.start.line - 1][b.start.column - 2] == "{"
    assert b.start.line > a.end.line


def test_positions_unknown_for_odd_text() -> None:
    assert statement_spans("[]") == ()
    assert statement_spans('{"Statement": "x"}') == ()
    assert statement_spans('{"Statement": {"a": "unterminated') == ()


def _values(**extra: str) -> dict[str, str]:
    base = {
        "Action": "SimulateCustomPolicy",
        "Version": "2010-05-08",
        "PolicyInputList.member.1": (
            '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}'
        ),
        "ActionNames.member.1": "s3:GetObject",
    }
    base.update(extra)
    return base


def test_params_parse_lists_and_context_entries() -> None:
    params = SimulationParams.parse(
        _values(
            **{
                "ActionNames.member.2": "s3:PutObject",
                "ResourceArns.member.1": "arn:aws:s3:::b/k",
                "ContextEntries.member.1.ContextKeyName": "aws:SourceIp",
                "ContextEntries.member.1.ContextKeyType": "ipList",
                "ContextEntries.member.1.ContextKeyValues.member.1": "10.0.0.1",
                "ContextEntries.member.1.ContextKeyValues.member.2": "10.0.0.2",
                "MaxItems": "5",
            }
        ),
        principal=False,
    )
    assert params.action_names == ("s3:GetObject", "s3:PutObject")
    assert params.resource_arns == ("arn:aws:s3:::b/k",)
    assert params.context == (ContextEntry("aws:SourceIp", ("10.0.0.1", "10.0.0.2"), "ipList"),)
    assert params.max_items == 5


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"ActionNames.member.3": "s3:X"}, ValidationError),  # a gap in the numbering
        ({"ActionNames.member.1": "s3"}, ValidationError),
        ({"PolicyExclusionList.member.1.PolicyType": "inline"}, ValidationError),  # not simulated
        ({"Bogus": "1"}, ValidationError),
        ({"ResourcePolicy": "{}"}, ValidationError),  # needs CallerArn
        ({"MaxItems": "0"}, ValidationError),
        ({"ContextEntries.member.1.ContextKeyName": "aws:SourceIp"}, ValidationError),  # no value
        (
            {
                "ContextEntries.member.1.ContextKeyName": "aws:MultiFactorAuthAge",
                "ContextEntries.member.1.ContextKeyType": "numeric",
                "ContextEntries.member.1.ContextKeyValues.member.1": "soon",
            },
            ValidationError,
        ),
    ],
)
def test_params_refuse_bad_input(extra: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        SimulationParams.parse(_values(**extra), principal=False)


def test_params_require_policies_and_actions() -> None:
    values = _values()
    del values["PolicyInputList.member.1"]
    with pytest.raises(MissingParameter):
        SimulationParams.parse(values, principal=False)
    with pytest.raises(MissingParameter):
        SimulationParams.parse(_values(), principal=True)  # PolicySourceArn


def test_context_keys_are_case_insensitive_and_unique() -> None:
    with pytest.raises(ValidationError):
        build_context(
            [
                ContextEntry("aws:SourceIp", ("1.2.3.4",), "ip"),
                ContextEntry("AWS:sourceip", ("1.2.3.5",), "ip"),
            ]
        )
    with pytest.raises(ValidationError):
        ContextEntry("aws:SecureTransport", ("yes",), "boolean")
    with pytest.raises(ValidationError):
        ContextEntry("aws:SourceIp", ("1.2.3.4", "1.2.3.5"), "ip")  # scalar type, two values


def test_malformed_policy_and_unknown_role() -> None:
    with pytest.raises(MalformedPolicyDocument):
        SourcePolicy.parse(
            '{"Statement": {"Effect": "Allow", "Action": "s3:*"}}', id="x", type=None, kind="identity"
        )
    values = _values(Action="SimulatePrincipalPolicy", PolicySourceArn="arn:aws:iam::123456789012:role/ghost")
    from gateway.iam.catalog import build_snapshot
    from gateway.iam.records import CatalogRecords

    catalog = build_snapshot(CatalogRecords(account_id="123456789012"))
    with pytest.raises(NoSuchEntity):
        simulate(SimulationParams.parse(values, principal=True), catalog)


def test_missing_context_values_name_condition_keys_and_variables() -> None:
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::b/${aws:PrincipalTag/team}/*",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            },
            {
                "Effect": "Allow",
                "Action": "ec2:*",  # another action: its keys are not relevant
                "Resource": "*",
                "Condition": {"StringEquals": {"ec2:Region": "eu-west-1"}},
            },
        ],
    }
    sim = Simulation(identity=[SourcePolicy.parse(json.dumps(doc), id="p", type=None, kind="identity")])
    (result,) = sim.run(["s3:GetObject"], ["arn:aws:s3:::b/data/x"], {})
    assert result.eval_decision == "implicitDeny"
    assert result.missing_context == ("aws:MultiFactorAuthPresent", "aws:PrincipalTag/team")
    (result,) = sim.run(
        ["s3:GetObject"],
        ["arn:aws:s3:::b/data/x"],
        {"aws:PrincipalTag/team": "data", "aws:MultiFactorAuthPresent": "true"},
    )
    assert (result.eval_decision, result.missing_context) == ("allowed", ())
    assert "allowed by statement 0" in result.decision.explain()
