"""``fedgate simulate`` through the real console-script entry point (``gateway.cli.main``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gateway.cli import main

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Read",
            "Effect": "Allow",
            "Action": "s3:Get*",
            "Resource": "arn:aws:s3:::bucket/${aws:PrincipalTag/team}/*",
        },
        {"Sid": "NoSecrets", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::bucket/secret/*"},
    ],
}


@pytest.fixture()
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(POLICY, indent=4))
    return path


def test_allowed_exits_zero_and_explains(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "simulate",
            "--policy",
            str(policy_file),
            "--action",
            "s3:GetObject",
            "--resource",
            "arn:aws:s3:::bucket/data/x",
            "--context",
            "aws:PrincipalTag/team=data",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert 'allowed by statement 0 "Read"' in out
    assert "at line 4" in out


def test_any_denial_exits_one(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "simulate",
            "--policy",
            str(policy_file),
            "--action",
            "s3:GetObject",
            "--resource",
            "arn:aws:s3:::bucket/data/x",
            "--resource",
            "arn:aws:s3:::bucket/secret/y",
            "--context",
            "aws:PrincipalTag/team=data",
            "--json",
        ]
    )
    results = json.loads(capsys.readouterr().out)["EvaluationResults"]
    assert code == 1
    assert [r["EvalDecision"] for r in results] == ["allowed", "explicitDeny"]


def test_yaml_boundary_and_typed_context(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    boundary = tmp_path / "boundary.yaml"
    boundary.write_text(
        yaml.safe_dump(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:*",
                        "Resource": "*",
                        "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}},
                    }
                ],
            }
        )
    )
    args = [
        "simulate",
        "--policy",
        str(policy_file),
        "--boundary",
        str(boundary),
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:s3:::bucket/data/x",
        "--context",
        "aws:PrincipalTag/team=data",
        "--context-type",
        "aws:SourceIp=ipList",
    ]
    assert main([*args, "--context", "aws:SourceIp=10.1.2.3,192.0.2.1"]) == 0
    assert main([*args, "--context", "aws:SourceIp=192.0.2.1"]) == 1
    assert "boundary policy does not allow it" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad",
    [
        ["--policy", "/nonexistent.json", "--action", "s3:GetObject"],
        ["--action", "s3:GetObject"],  # no policy at all
        ["--policy", "POLICY", "--action", "GetObject"],
        ["--policy", "POLICY", "--action", "s3:GetObject", "--context", "novalue"],
        [
            "--policy",
            "POLICY",
            "--action",
            "s3:GetObject",
            "--context",
            "aws:SourceIp=x",
            "--context-type",
            "aws:SourceIp=ip",
        ],
        ["--policy", "MALFORMED", "--action", "s3:GetObject"],
        ["--policy", "POLICY", "--action", "s3:GetObject", "--role", "app"],  # --role needs -c
    ],
)
def test_bad_input_exits_two(
    bad: list[str], policy_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    malformed = tmp_path / "bad.json"
    malformed.write_text('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*"}}')
    argv = [str(policy_file) if a == "POLICY" else str(malformed) if a == "MALFORMED" else a for a in bad]
    assert main(["simulate", *argv]) == 2
    assert "fedgate simulate:" in capsys.readouterr().err


def test_role_from_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "fedgate.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "account_id": "123456789012",
                "roles": [
                    {
                        "name": "app",
                        "tags": {"team": "data"},
                        "trust_policy": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/x"},
                                    "Action": "sts:AssumeRoleWithWebIdentity",
                                }
                            ],
                        },
                        "policies": [{"name": "read", "document": POLICY}],
                    }
                ],
            }
        )
    )
    # The role's tag fills ${aws:PrincipalTag/team}.
    argv = ["simulate", "--role", "app", "-c", str(config), "--action", "s3:GetObject"]
    assert main([*argv, "--resource", "arn:aws:s3:::bucket/data/x"]) == 0
    assert main([*argv, "--resource", "arn:aws:s3:::bucket/other/x"]) == 1
    assert main(["simulate", "--role", "ghost", "-c", str(config), "--action", "s3:GetObject"]) == 2
    assert "cannot be found" in capsys.readouterr().err


def test_every_option_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--policy",
        "--boundary",
        "--session-policy",
        "--resource-policy",
        "--action",
        "--resource ",
        "--context ",
        "--context-type",
        "--principal",
        "--resource-owner",
        "--role",
        "--config",
        "--json",
    ):
        assert option in out
