"""Temporary credentials as the agent holds them, and the JSON shapes each SDK reads them in.

* the container credentials endpoint (ECS, EKS Pod Identity): ``AccessKeyId``, ``SecretAccessKey``,
  ``Token``, ``Expiration`` (plus ``AccountId`` and ``RoleArn``, which newer SDKs read);
* IMDS: the same with ``Code: Success``, ``LastUpdated`` and ``Type: AWS-HMAC``, or ``Code`` and
  ``Message`` only when there is nothing to give, as EC2 answers when a role cannot be assumed;
* ``credential_process``: version 1, with the same shape ``fedgate credential-process`` prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, final

from gateway.login_cli import credential_process_json
from gateway.sts.xml import iso8601

__all__ = [
    "Credentials",
    "container_document",
    "imds_document",
    "imds_error_document",
    "process_document",
]

_ACCOUNT_IN_ARN = re.compile(r"^arn:[\w-]+:(?:iam|sts)::(\d{12}):")


@final
@dataclass(frozen=True, slots=True)
class Credentials:
    """One set of temporary credentials; the secret parts never appear in ``repr``."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime
    #: The ARN of the session (``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``), when known.
    arn: str | None = None

    def __post_init__(self) -> None:
        if self.expiration.tzinfo is None:
            raise ValueError("expiration must carry a time zone")

    def expires_at(self) -> float:
        """The expiry as a POSIX timestamp."""
        return self.expiration.timestamp()

    def account_id(self) -> str | None:
        """The account in :attr:`arn`, if any."""
        match = _ACCOUNT_IN_ARN.match(self.arn or "")
        return match.group(1) if match else None

    def as_sts(self) -> dict[str, str]:
        """The four STS names (``SessionToken``, not ``Token``)."""
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": iso8601(self.expiration),
        }


def container_document(creds: Credentials, role_arn: str) -> dict[str, Any]:
    """What the container credentials endpoint answers (botocore and the JS SDK parse it)."""
    document: dict[str, Any] = {
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
        "Token": creds.session_token,
        "Expiration": iso8601(creds.expiration),
        "RoleArn": role_arn,
    }
    account = creds.account_id()
    if account is not None:
        document["AccountId"] = account
    return document


def imds_document(creds: Credentials, last_updated: datetime) -> dict[str, Any]:
    """IMDS's ``/latest/meta-data/iam/security-credentials/ROLE`` answer."""
    return {
        "Code": "Success",
        "LastUpdated": iso8601(last_updated),
        "Type": "AWS-HMAC",
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
        "Token": creds.session_token,
        "Expiration": iso8601(creds.expiration),
    }


def imds_error_document(code: str, message: str, last_updated: datetime | None = None) -> dict[str, Any]:
    """IMDS's answer when the role's credentials cannot be had: 200 with ``Code`` and ``Message``.

    botocore then moves on ("no credentials") and the JS SDK reports an invalid response, exactly as
    on EC2 when the instance's role cannot be assumed.
    """
    return {
        "Code": code,
        "Message": message,
        "LastUpdated": iso8601(last_updated or datetime.now(UTC)),
    }


def process_document(creds: Credentials) -> dict[str, Any]:
    """``credential_process`` output (version 1)."""
    return credential_process_json(creds.as_sts())
