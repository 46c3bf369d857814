"""IAM ARNs are spelled in one place and read back by one parser."""

from __future__ import annotations

import pytest

from gateway.arns import oidc_provider_arn, parse_role_arn, policy_arn, role_arn, saml_provider_arn

ACCOUNT = "123456789012"


def test_arns_are_spelled_as_iam_spells_them() -> None:
    assert role_arn(ACCOUNT, "/", "deploy") == f"arn:aws:iam::{ACCOUNT}:role/deploy"
    assert role_arn(ACCOUNT, "/team/a/", "deploy") == f"arn:aws:iam::{ACCOUNT}:role/team/a/deploy"
    assert policy_arn(ACCOUNT, "/", "read") == f"arn:aws:iam::{ACCOUNT}:policy/read"
    assert policy_arn(ACCOUNT, "/x/", "read") == f"arn:aws:iam::{ACCOUNT}:policy/x/read"
    oidc = oidc_provider_arn(ACCOUNT, "idp.example/p")
    assert oidc == f"arn:aws:iam::{ACCOUNT}:oidc-provider/idp.example/p"
    assert saml_provider_arn(ACCOUNT, "corp") == f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"


@pytest.mark.parametrize("path", ["/", "/team/", "/a/b/c/"])
def test_a_role_arn_reads_back_as_its_account_and_name(path: str) -> None:
    assert parse_role_arn(role_arn(ACCOUNT, path, "deploy")) == (ACCOUNT, "deploy")


@pytest.mark.parametrize(
    "arn",
    [
        "",
        f"arn:aws:iam::{ACCOUNT}:policy/deploy",
        f"arn:aws:iam::{ACCOUNT}:role/",
        "arn:aws:iam::12345:role/deploy",
        f"arn:aws:iam::{ACCOUNT}:role/" + "x" * 65,
        f"arn:aws:iam::{ACCOUNT}:role/" + "p/" * 1100 + "deploy",
    ],
)
def test_anything_else_is_not_a_role_arn(arn: str) -> None:
    with pytest.raises(ValueError, match="not a role ARN"):
        parse_role_arn(arn)
