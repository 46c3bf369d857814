"""What the MFA journeys share: a gateway configuration with MFA-protected roles, IAM users made
through the API with an enabled virtual MFA device, and an authenticator app that never shows a
code the device has already had accepted.

Roles (trust policies, as AWS documents MFA protection):

* ``mfa-required``: trusted by the account when ``aws:MultiFactorAuthPresent`` is true and the
  ``sts:ExternalId`` is :data:`EXTERNAL_ID`;
* ``mfa-recent``: trusted by the account, and by ``mfa-required``'s sessions, when
  ``aws:MultiFactorAuthAge`` is below an hour;
* ``no-mfa``: trusted by the account, no condition.

All three may call ``iam:ListUsers`` and ``s3:GetObject`` only when ``aws:MultiFactorAuthPresent``
is true, so an IAM or a proxied call shows what the session carries, and may decode authorization
messages.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway.iam import totp

__all__ = [
    "ACCOUNT",
    "ADMIN_KEY",
    "ADMIN_SECRET",
    "ADMIN_USER",
    "EXTERNAL_ID",
    "MFA_RECENT",
    "MFA_REQUIRED",
    "MFA_ROLES",
    "NO_MFA",
    "Authenticator",
    "MfaUser",
    "Replica",
    "error_of",
    "gateway_config",
    "mfa_user",
    "new_user",
    "wrong",
]

ACCOUNT = "123456789012"
ARN = f"arn:aws:iam::{ACCOUNT}"
ADMIN_KEY = "AKIAMFAADMINEXAMPLE1"
ADMIN_SECRET = "mfa-admin-secret-" + "a" * 23
V = "2012-10-17"
EXTERNAL_ID = "ext-mfa-7"
MFA_REQUIRED, MFA_RECENT, NO_MFA = f"{ARN}:role/mfa-required", f"{ARN}:role/mfa-recent", f"{ARN}:role/no-mfa"


@dataclass(frozen=True)
class Replica:
    """A running gateway, and boto3 clients for it (no retries: each call is one request)."""

    url: str

    def client(
        self, service: str, key: str = ADMIN_KEY, secret: str = ADMIN_SECRET, token: str | None = None
    ) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=Config(retries={"max_attempts": 1}),
        )


def _allow(actions: list[str], resource: str = "*", **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def _trust(principals: list[str], **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": principals},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return {"Version": V, "Statement": [statement]}


_MFA_ONLY = {
    "name": "mfa-only",
    "document": {
        "Version": V,
        "Statement": [
            _allow(["iam:ListUsers", "s3:GetObject"], Bool={"aws:MultiFactorAuthPresent": "true"}),
            _allow(["sts:DecodeAuthorizationMessage"]),
        ],
    },
}
_ROOT = f"{ARN}:root"

#: The roles of the module docstring, as a configuration file declares them.
MFA_ROLES: list[dict[str, Any]] = [
    {
        "name": "mfa-required",
        "trust_policy": _trust(
            [_ROOT],
            Bool={"aws:MultiFactorAuthPresent": "true"},
            StringEquals={"sts:ExternalId": EXTERNAL_ID},
        ),
        "policies": [_MFA_ONLY],
    },
    {
        "name": "mfa-recent",
        "trust_policy": _trust([_ROOT, MFA_REQUIRED], NumericLessThan={"aws:MultiFactorAuthAge": "3600"}),
        "policies": [_MFA_ONLY],
    },
    {"name": "no-mfa", "trust_policy": _trust([_ROOT]), "policies": [_MFA_ONLY]},
]

#: A user declared in the configuration file, with a long-term key, who may do anything.
ADMIN_USER: dict[str, Any] = {
    "name": "mfa-admin",
    "policies": [{"name": "all", "document": {"Version": V, "Statement": [_allow(["*"])]}}],
    "access_keys": [{"id": ADMIN_KEY, "secret": {"value": ADMIN_SECRET}}],
}


def gateway_config(database_url: str, redis_url: str, prefix: str) -> dict[str, Any]:
    """Replicas' configuration: one store, one database, one key ring; :data:`ADMIN_USER` and
    :data:`MFA_ROLES`."""
    return {
        "account_id": ACCOUNT,
        "audit": {"sink": "none"},
        "store": {"backend": "redis", "url": redis_url, "prefix": prefix},
        "database": {"url": database_url, "poll_interval_seconds": 1},
        "keyring": {"active": "k", "keys": [{"id": "k", "secret": {"value": "k" * 32}}]},
        "users": [ADMIN_USER],
        "roles": MFA_ROLES,
    }


@dataclass
class Authenticator:
    """An authenticator app holding a device's seed (its Base32 text).

    A device accepts each time step's code once, and one step early or late; the app remembers
    which steps' codes it gave out, so every code it shows is one the device can still accept.
    """

    seed: str
    shown: set[int] = field(default_factory=set)

    def _code(self, step: int) -> str:
        self.shown.add(step)
        return totp.code_at(base64.b32decode(self.seed), step)

    def two_consecutive(self) -> tuple[str, str]:
        """The codes of the previous and the current step, as ``EnableMFADevice`` takes them."""
        now = totp.step_of(time.time())
        return self._code(now - 1), self._code(now)

    def code(self) -> str:
        """A code not shown before: the next step's first (still accepted if the clock moves on
        before the gateway checks it), then the current one's."""
        now = totp.step_of(time.time())
        for step in (now + 1, now):
            if step not in self.shown:
                return self._code(step)
        pytest.fail("this device's codes of this time step are spent: give the test another device")


def wrong(code: str) -> str:
    """A code that is not ``code``."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


@dataclass(frozen=True)
class MfaUser:
    """An IAM user made through the API: its long-term key and its enabled virtual MFA device."""

    name: str
    arn: str
    key: str
    secret: str = field(repr=False)
    serial: str
    app: Authenticator


def new_user(iam: Any, name: str) -> tuple[str, str, str]:
    """Create user ``name`` through the API with a long-term access key and a policy letting it
    assume the account's roles and set up its own MFA devices; ``(arn, key id, secret)``."""
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    policy = {
        "Version": V,
        "Statement": [
            _allow(["sts:AssumeRole"], f"{ARN}:role/*"),
            _allow(["iam:CreateVirtualMFADevice"], f"{ARN}:mfa/*"),
            _allow(["iam:EnableMFADevice", "iam:ListMFADevices"], arn),
        ],
    }
    iam.put_user_policy(UserName=name, PolicyName="self-service", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, key["AccessKeyId"], key["SecretAccessKey"]


def mfa_user(iam: Any, name: str) -> MfaUser:
    """A user (:func:`new_user`) whose virtual MFA device ``NAME-phone`` is created and enabled
    through the API."""
    arn, key, secret = new_user(iam, name)
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{name}-phone")["VirtualMFADevice"]
    app = Authenticator(device["Base32StringSeed"].decode("ascii"))
    one, two = app.two_consecutive()
    iam.enable_mfa_device(
        UserName=name, SerialNumber=device["SerialNumber"], AuthenticationCode1=one, AuthenticationCode2=two
    )
    return MfaUser(name, arn, key, secret, device["SerialNumber"], app)


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    """``(code, message)`` of the error a client raised."""
    error = excinfo.value.response["Error"]
    return str(error["Code"]), str(error["Message"])
