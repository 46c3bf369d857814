"""An ``iam`` client that sends what it is given: botocore refuses some bad values itself (lengths,
ranges), and the tests of the gateway's own validation need them to reach it."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from tests.iam.api.conftest import Api

__all__ = ["unchecked_client"]


def unchecked_client(api: Api, role: str = "admin") -> Any:
    """A boto3 ``iam`` client of ``role`` with botocore's parameter validation off."""
    creds = api.credentials(role)
    return boto3.client(
        "iam",
        endpoint_url=api.url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
