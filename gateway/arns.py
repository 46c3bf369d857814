"""IAM ARNs: the one place they are spelled and taken apart.

Roles are ``arn:aws:iam::ACCOUNT:role{path}{name}``, users ``...:user{path}{name}``, groups
``...:group{path}{name}``, managed policies
``arn:aws:iam::ACCOUNT:policy{path}{name}``, identity providers
``arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH`` and ``arn:aws:iam::ACCOUNT:saml-provider/NAME``.
Paths start and end with ``/`` (``/`` alone by default). Pure functions, no I/O.
"""

from __future__ import annotations

import re

__all__ = [
    "group_arn",
    "oidc_provider_arn",
    "parse_role_arn",
    "parse_user_arn",
    "policy_arn",
    "role_arn",
    "saml_provider_arn",
    "user_arn",
]

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\x21-\x7e]*/)?([\w+=,.@-]{1,64})\Z")
_USER_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):user/(?:[\x21-\x7e]*/)?([\w+=,.@-]{1,64})\Z")
_MAX_ARN = 2048


def role_arn(account_id: str, path: str, name: str) -> str:
    """The ARN of the role ``name`` at ``path`` in ``account_id``."""
    return f"arn:aws:iam::{account_id}:role{path}{name}"


def user_arn(account_id: str, path: str, name: str) -> str:
    """The ARN of the IAM user ``name`` at ``path`` in ``account_id``."""
    return f"arn:aws:iam::{account_id}:user{path}{name}"


def group_arn(account_id: str, path: str, name: str) -> str:
    """The ARN of the IAM group ``name`` at ``path`` in ``account_id``."""
    return f"arn:aws:iam::{account_id}:group{path}{name}"


def policy_arn(account_id: str, path: str, name: str) -> str:
    """The ARN of the customer managed policy ``name`` at ``path`` in ``account_id``."""
    return f"arn:aws:iam::{account_id}:policy{path}{name}"


def oidc_provider_arn(account_id: str, provider_id: str) -> str:
    """The ARN of an OIDC provider; ``provider_id`` is its issuer URL without the scheme."""
    return f"arn:aws:iam::{account_id}:oidc-provider/{provider_id}"


def saml_provider_arn(account_id: str, name: str) -> str:
    """The ARN of the SAML provider ``name``."""
    return f"arn:aws:iam::{account_id}:saml-provider/{name}"


def parse_role_arn(arn: str) -> tuple[str, str]:
    """``(account_id, role_name)`` of a role ARN; ``ValueError`` if ``arn`` is not one."""
    match = _ROLE_ARN.match(arn)
    if match is None or len(arn) > _MAX_ARN:
        raise ValueError("not a role ARN (arn:aws:iam::ACCOUNT:role/[PATH/]NAME)")
    return match.group(1), match.group(2)


def parse_user_arn(arn: str) -> tuple[str, str, str]:
    """``(partition, account_id, user_name)`` of an IAM user's ARN; ``ValueError`` if ``arn`` is not one."""
    match = _USER_ARN.match(arn)
    if match is None or len(arn) > _MAX_ARN:
        raise ValueError("not a user ARN (arn:aws:iam::ACCOUNT:user/[PATH/]NAME)")
    return match.group(1), match.group(2), match.group(3)
