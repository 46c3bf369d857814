"""Who signed a request: a role session or an IAM user with a long-term access key.

A :class:`Caller` is what authentication hands every later step (permissions, the audit trail,
``GetCallerIdentity``, the identity assertion sent upstream): the principal's ARN and unique id as
AWS spells them (``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`` and ``AROA...:SESSION`` for a
session, ``arn:aws:iam::ACCOUNT:user{path}{name}`` and ``AIDA...`` for a user), the access key it
signed with, and the session's claims when it is a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, final

from gateway.credentials import SessionClaims

__all__ = ["Caller", "PrincipalType"]

#: ``aws:PrincipalType`` of a caller.
PrincipalType = Literal["AssumedRole", "User"]


@final
@dataclass(frozen=True, slots=True)
class Caller:
    """A verified signer. Build with :meth:`of_session` or :meth:`of_user`.

    Attributes:
        arn: the principal's ARN (the assumed-role ARN of a session, the user's ARN).
        user_id: its unique id (``aws:userid``): ``AROA...:SESSION`` or ``AIDA...``.
        account_id: the account it belongs to.
        access_key_id: the key that signed (``ASIA...`` or ``AKIA...``).
        principal_arn: ``aws:PrincipalArn``: the role's ARN for a session, else ``arn``.
        session: the session's claims, for a role session.
        user_name: the user's name, for an IAM user.
    """

    arn: str
    user_id: str
    account_id: str
    access_key_id: str
    principal_arn: str
    session: SessionClaims | None = None
    user_name: str | None = None

    @classmethod
    def of_session(cls, claims: SessionClaims) -> Caller:
        """The caller a role session is."""
        return cls(
            arn=claims.assumed_role_arn,
            user_id=claims.assumed_role_id,
            account_id=claims.account_id,
            access_key_id=claims.access_key_id,
            principal_arn=claims.role_arn,
            session=claims,
        )

    @classmethod
    def of_user(cls, *, arn: str, user_id: str, account_id: str, name: str, access_key_id: str) -> Caller:
        """The caller an IAM user signing with ``access_key_id`` is."""
        return cls(
            arn=arn,
            user_id=user_id,
            account_id=account_id,
            access_key_id=access_key_id,
            principal_arn=arn,
            user_name=name,
        )

    @property
    def principal_type(self) -> PrincipalType:
        """``aws:PrincipalType``."""
        return "AssumedRole" if self.session is not None else "User"
