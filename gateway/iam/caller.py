"""Who signed a request: a role session or an IAM user with a long-term access key.

A :class:`Caller` is what authentication hands every later step (permissions, the audit trail,
``GetCallerIdentity``, the identity assertion sent upstream): the principal's ARN and unique id as
AWS spells them (``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`` and ``AROA...:SESSION`` for a
session, ``arn:aws:iam::ACCOUNT:user{path}{name}`` and ``AIDA...`` for a user), the access key it
signed with, and the session's claims when it is a session.

A session is a role session, an IAM user's own session (``GetSessionToken``: the caller *is* the
user, with a session) or a federated user (``GetFederationToken``:
``arn:aws:sts::ACCOUNT:federated-user/NAME``, ``ACCOUNT:NAME``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, final

from gateway.credentials import SessionClaims
from gateway.credentials.claims import FEDERATED_USER, ROLE_SESSION, USER_SESSION
from gateway.errors import AccessDenied, InvalidClientTokenId

__all__ = ["Caller", "PrincipalType", "check_api_call"]

# What AWS lets the user kinds of session call of its own APIs (whatever their policies say).
_USER_SESSION_STS = frozenset({"AssumeRole", "GetCallerIdentity"})
_FEDERATED_USER_STS = frozenset({"GetCallerIdentity"})

#: ``aws:PrincipalType`` of a caller.
PrincipalType = Literal["AssumedRole", "User", "FederatedUser"]


@final
@dataclass(frozen=True, slots=True)
class Caller:
    """A verified signer. Build with :meth:`of_session` or :meth:`of_user`.

    Attributes:
        arn: the principal's ARN (the assumed-role ARN of a session, the user's ARN).
        user_id: its unique id (``aws:userid``): ``AROA...:SESSION`` or ``AIDA...``.
        account_id: the account it belongs to.
        access_key_id: the key that signed (``ASIA...`` or ``AKIA...``).
        principal_arn: ``aws:PrincipalArn``: the role's ARN for a role session, else ``arn``.
        session: the session's claims, for a session of any kind.
        user_name: the user's name, for an IAM user (signing with its key or its own session).
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
        """The caller a session is: a role session, a user's own session, a federated user."""
        if claims.principal == ROLE_SESSION:
            return cls(
                arn=claims.assumed_role_arn,
                user_id=claims.assumed_role_id,
                account_id=claims.account_id,
                access_key_id=claims.access_key_id,
                principal_arn=claims.role_arn,
                session=claims,
            )
        arn = claims.principal_arn
        return cls(
            arn=arn,
            user_id=claims.principal_id,
            account_id=claims.account_id,
            access_key_id=claims.access_key_id,
            principal_arn=arn,
            session=claims,
            user_name=claims.session_name if claims.principal == USER_SESSION else None,
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
    def role_session(self) -> SessionClaims | None:
        """The session's claims when the caller is a role session (``None`` for a user signing
        with its key or its own session, and for a federated user)."""
        session = self.session
        return session if session is not None and session.principal == ROLE_SESSION else None

    @property
    def long_term(self) -> bool:
        """Whether the caller signed with a long-term access key (an IAM user, no session)."""
        return self.session is None

    @property
    def principal_type(self) -> PrincipalType:
        """``aws:PrincipalType``."""
        if self.session is None or self.session.principal == USER_SESSION:
            return "User"
        return "FederatedUser" if self.session.principal == FEDERATED_USER else "AssumedRole"


def check_api_call(caller: Caller, service: str, action: str) -> None:
    """Refuse what AWS never lets a user's own session or a federated user call of STS and IAM,
    whatever their policies allow.

    A user's own session (``GetSessionToken``) calls IAM only if it was created with MFA, and of
    STS only ``AssumeRole`` and ``GetCallerIdentity``; a federated user (``GetFederationToken``)
    calls no IAM action and, of STS, only ``GetCallerIdentity``. IAM answers
    ``InvalidClientTokenId`` as AWS does (the token is not valid for IAM), STS ``AccessDenied``.
    Role sessions and long-term keys are not restricted here.
    """
    session = caller.session
    if session is None or session.principal == ROLE_SESSION:
        return
    federated = session.principal == FEDERATED_USER
    if service == "iam" and (federated or not session.mfa_authenticated):
        raise InvalidClientTokenId("The security token included in the request is invalid")
    if service == "sts" and action not in (_FEDERATED_USER_STS if federated else _USER_SESSION_STS):
        kind = "federated user" if federated else "GetSessionToken"
        raise AccessDenied(f"Cannot call {action[:64]} with {kind} session credentials")
