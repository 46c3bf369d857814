"""The stock Terraform AWS provider against fedgate's IAM and STS endpoints: apply a configuration
of a user, access key, group and membership, managed policy with attachments to the user, group
and role, a role with a trust policy and an inline policy, and an OIDC provider; plan again and
see no changes; destroy, and find nothing left.

Terraform and the hashicorp/aws provider must be installed (the provider from a local filesystem
mirror: ``$FEDGATE_TF_PLUGINS``, default ``/opt/tf-plugins``); ``terraform init`` runs offline.
A missing one fails the test, saying how to get it. ``FEDGATE_TF_LOG=DEBUG`` writes Terraform's
log (every IAM call the provider makes) to ``terraform.log`` in the test's directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.iam.api.conftest import ACCOUNT, Api

PLUGINS = Path(os.environ.get("FEDGATE_TF_PLUGINS", "/opt/tf-plugins"))
PROVIDER = "registry.terraform.io/hashicorp/aws"
OIDC_URL = "https://token.tf.example.com/ci"

CONFIGURATION = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.0" }
  }
}

variable "endpoint" { type = string }
variable "access_key" { type = string }
variable "secret_key" { type = string }
variable "token" { type = string }

provider "aws" {
  region                      = "us-east-1"
  access_key                  = var.access_key
  secret_key                  = var.secret_key
  token                       = var.token
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  max_retries                 = 1
  endpoints {
    iam = var.endpoint
    sts = var.endpoint
  }
}

resource "aws_iam_user" "dev" {
  name = "tf-dev"
  path = "/tf/"
  tags = { team = "platform" }
}

resource "aws_iam_access_key" "dev" {
  user = aws_iam_user.dev.name
}

resource "aws_iam_group" "devs" {
  name = "tf-devs"
  path = "/tf/"
}

resource "aws_iam_group_membership" "devs" {
  name  = "tf-devs-membership"
  group = aws_iam_group.devs.name
  users = [aws_iam_user.dev.name]
}

resource "aws_iam_policy" "read" {
  name        = "tf-read"
  path        = "/tf/"
  description = "read the artifacts bucket"
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["s3:GetObject", "s3:ListBucket"], Resource = "*" }]
  })
  tags = { team = "platform" }
}

resource "aws_iam_user_policy_attachment" "dev_read" {
  user       = aws_iam_user.dev.name
  policy_arn = aws_iam_policy.read.arn
}

resource "aws_iam_group_policy_attachment" "devs_read" {
  group      = aws_iam_group.devs.name
  policy_arn = aws_iam_policy.read.arn
}

resource "aws_iam_openid_connect_provider" "ci" {
  url             = "%(oidc_url)s"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = ["%(thumbprint)s"]
  tags            = { purpose = "ci" }
}

resource "aws_iam_role" "app" {
  name                 = "tf-app"
  path                 = "/tf/"
  description          = "the CI deployer"
  max_session_duration = 7200
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = aws_iam_openid_connect_provider.ci.arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = { StringEquals = { "token.tf.example.com/ci:aud" = "sts.amazonaws.com" } }
    }]
  })
  tags = { team = "platform" }
}

resource "aws_iam_role_policy" "app_inline" {
  name = "tf-inline"
  role = aws_iam_role.app.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Deny", Action = "s3:DeleteObject", Resource = "*" }]
  })
}

resource "aws_iam_role_policy_attachment" "app_read" {
  role       = aws_iam_role.app.name
  policy_arn = aws_iam_policy.read.arn
}

output "access_key_id" { value = aws_iam_access_key.dev.id }
output "policy_arn" { value = aws_iam_policy.read.arn }
output "role_arn" { value = aws_iam_role.app.arn }
output "provider_arn" { value = aws_iam_openid_connect_provider.ci.arn }
"""


def _terraform() -> str:
    found = shutil.which("terraform")
    if found is None:
        pytest.fail(
            "terraform is not installed: install Terraform >= 1.5 "
            "(https://developer.hashicorp.com/terraform/install) and put it on PATH",
            pytrace=False,
        )
    if not (PLUGINS / PROVIDER).is_dir():
        pytest.fail(
            f"the hashicorp/aws provider is not in the filesystem mirror {PLUGINS} "
            f"({PROVIDER}/VERSION/OS_ARCH/): run `terraform providers mirror DIR` on a machine with "
            "network access and point $FEDGATE_TF_PLUGINS at it",
            pytrace=False,
        )
    return found


class Workspace:
    """A Terraform working directory whose CLI configuration installs providers from the mirror only."""

    def __init__(self, root: Path, terraform: str, variables: dict[str, str]) -> None:
        self.root = root
        self.terraform = terraform
        cli = root / "cli.tfrc"
        cli.write_text(
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path = "{PLUGINS}"\n    include = ["{PROVIDER}"]\n  }}\n'
            f'  direct {{\n    exclude = ["{PROVIDER}"]\n  }}\n'
            "}\n"
            "disable_checkpoint = true\n"
        )
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(root),
            "TF_CLI_CONFIG_FILE": str(cli),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            **{f"TF_VAR_{k}": v for k, v in variables.items()},
        }
        if os.environ.get("FEDGATE_TF_LOG"):
            self.env["TF_LOG"] = os.environ["FEDGATE_TF_LOG"]
            self.env["TF_LOG_PATH"] = str(root / "terraform.log")

    def run(self, *args: str, expect: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.terraform, *args, "-no-color"],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode not in expect:
            pytest.fail(
                f"terraform {args[0]} exited {done.returncode}:\n"
                f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}",
                pytrace=False,
            )
        return done


def _iam(api: Api) -> Any:
    creds = api.credentials("admin")
    return boto3.client(
        "iam",
        endpoint_url=api.url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


@pytest.mark.timeout(600)  # three terraform runs; each loads the provider's schema a few times
def test_apply_plan_destroy(api: Api, tmp_path: Path) -> None:
    terraform = _terraform()
    creds = api.credentials("admin")
    (tmp_path / "main.tf").write_text(
        CONFIGURATION % {"oidc_url": OIDC_URL, "thumbprint": "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"}
    )
    variables = {
        "endpoint": api.url,
        "access_key": creds["AccessKeyId"],
        "secret_key": creds["SecretAccessKey"],
        "token": creds["SessionToken"],
    }
    _journey(api, Workspace(tmp_path, terraform, variables))


def _journey(api: Api, workspace: Workspace) -> None:
    workspace.run("init", "-input=false")
    workspace.run("apply", "-auto-approve", "-input=false")
    outputs = json.loads(workspace.run("output", "-json").stdout)

    iam = _iam(api)
    assert iam.get_user(UserName="tf-dev")["User"]["Tags"] == [{"Key": "team", "Value": "platform"}]
    keys = iam.list_access_keys(UserName="tf-dev")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [outputs["access_key_id"]["value"]]
    assert [u["UserName"] for u in iam.get_group(GroupName="tf-devs")["Users"]] == ["tf-dev"]
    policy_arn = outputs["policy_arn"]["value"]
    assert policy_arn == f"arn:aws:iam::{ACCOUNT}:policy/tf/tf-read"
    assert iam.get_policy(PolicyArn=policy_arn)["Policy"]["AttachmentCount"] == 3
    role = iam.get_role(RoleName="tf-app")["Role"]
    assert role["MaxSessionDuration"] == 7200 and role["Arn"] == outputs["role_arn"]["value"]
    assert (
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Federated"]
        == outputs["provider_arn"]["value"]
    )
    assert iam.list_role_policies(RoleName="tf-app")["PolicyNames"] == ["tf-inline"]
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=outputs["provider_arn"]["value"])
    assert provider["ClientIDList"] == ["sts.amazonaws.com"]

    # Everything Terraform reads back matches what it wrote: the second plan has nothing to do.
    plan = workspace.run("plan", "-detailed-exitcode", "-input=false", expect=(0, 2))
    assert plan.returncode == 0, f"the second plan wants changes:\n{plan.stdout[-6000:]}"

    workspace.run("destroy", "-auto-approve", "-input=false")
    assert "tf-dev" not in [u["UserName"] for u in iam.list_users()["Users"]]
    assert "tf-devs" not in [g["GroupName"] for g in iam.list_groups()["Groups"]]
    assert policy_arn not in [p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]]
    assert "tf-app" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    # Only the configuration's provider (the sessions' issuer) is left.
    configured = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{api.issuer.issuer.removeprefix('http://')}"
    listed = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    assert [p["Arn"] for p in listed] == [configured]
