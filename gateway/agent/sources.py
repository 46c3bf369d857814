"""Where a served role's credentials come from: the :class:`CredentialSource` protocol.

A source is asked for fresh credentials at start and at every renewal, and either returns them or
raises a :class:`~gateway.agent.errors.SourceError` saying why (the agent then retries with
backoff). Sources today:

* :class:`WebIdentityTokenFile`: AssumeRoleWithWebIdentity with an OIDC token read from a file at
  every call, so a token the kubelet (or anything else) rotates on disk is picked up at the next
  renewal.
* :class:`AccessKeySource`: AssumeRole signed with SigV4 by a fedgate IAM user's long-term access
  key, which never leaves the agent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, final

from pydantic import SecretStr

from gateway.agent.credentials import Credentials
from gateway.agent.errors import TokenFileError

__all__ = [
    "AccessKeySource",
    "AssumeRoleExchange",
    "CredentialSource",
    "WebIdentityExchange",
    "WebIdentityTokenFile",
    "read_token_file",
]

#: Larger token files are refused unread (the gateway limits tokens far below this).
MAX_TOKEN_BYTES = 64 * 1024


class CredentialSource(Protocol):
    """Produces credentials for one served role."""

    def describe(self) -> str:
        """A short, secret-free description for status lines (``web identity token /path``)."""
        ...

    async def fetch(self) -> Credentials:
        """Fresh credentials, or a :class:`~gateway.agent.errors.SourceError` saying why not."""
        ...


class WebIdentityExchange(Protocol):
    """The STS call a web-identity source needs (:class:`gateway.agent.sts_client.StsClient`)."""

    async def assume_role_with_web_identity(
        self, *, role_arn: str, session_name: str, token: str, duration_seconds: int
    ) -> Credentials:
        """Exchange ``token`` for the role's credentials."""
        ...


class AssumeRoleExchange(Protocol):
    """The STS call an access-key source needs (:class:`gateway.agent.sts_client.StsClient`)."""

    async def assume_role(
        self,
        *,
        role_arn: str,
        session_name: str,
        duration_seconds: int,
        access_key_id: str,
        secret_access_key: str,
        external_id: str | None = None,
    ) -> Credentials:
        """AssumeRole signed with the long-term key ``access_key_id``."""
        ...


def read_token_file(path: Path) -> str:
    """The token in ``path``, surrounding whitespace removed. Raises :class:`TokenFileError`.

    Links are followed: Kubernetes projects service-account tokens through a symlink it swaps on
    rotation. The token itself never appears in a message.
    """
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_TOKEN_BYTES + 1)
    except FileNotFoundError:
        raise TokenFileError(f"token file {path} does not exist") from None
    except OSError as exc:
        raise TokenFileError(f"cannot read token file {path}: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > MAX_TOKEN_BYTES:
        raise TokenFileError(f"token file {path} is larger than {MAX_TOKEN_BYTES} bytes")
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise TokenFileError(f"token file {path} does not hold a token (not ASCII text)") from None
    if not token:
        raise TokenFileError(f"token file {path} is empty")
    if any(c.isspace() or not c.isprintable() for c in token):
        raise TokenFileError(f"token file {path} does not hold a single token")
    return token


@final
class WebIdentityTokenFile:
    """AssumeRoleWithWebIdentity with the token in ``path``, re-read at every :meth:`fetch`."""

    def __init__(
        self,
        *,
        path: Path,
        role_arn: str,
        session_name: str,
        duration_seconds: int,
        sts: WebIdentityExchange,
    ) -> None:
        self._path = path
        self._role_arn = role_arn
        self._session_name = session_name
        self._duration = duration_seconds
        self._sts = sts

    def describe(self) -> str:
        """``web identity token PATH``."""
        return f"web identity token {self._path}"

    async def fetch(self) -> Credentials:
        """Read the token file now and exchange it for the role's credentials."""
        token = read_token_file(self._path)
        return await self._sts.assume_role_with_web_identity(
            role_arn=self._role_arn,
            session_name=self._session_name,
            token=token,
            duration_seconds=self._duration,
        )


@final
class AccessKeySource:
    """AssumeRole signed with a long-term access key (``AKIA...``) at every :meth:`fetch`.

    The secret was read once, at start-up, from its reference; it is held as a
    :class:`~pydantic.SecretStr` so no ``repr`` or status line can show it.
    """

    def __init__(
        self,
        *,
        access_key_id: str,
        secret_access_key: SecretStr,
        role_arn: str,
        session_name: str,
        duration_seconds: int,
        sts: AssumeRoleExchange,
        external_id: str | None = None,
    ) -> None:
        self._key_id = access_key_id
        self._secret = secret_access_key
        self._role_arn = role_arn
        self._session_name = session_name
        self._duration = duration_seconds
        self._external_id = external_id
        self._sts = sts

    def describe(self) -> str:
        """``access key AKIA...`` (the id only)."""
        return f"access key {self._key_id}"

    async def fetch(self) -> Credentials:
        """Assume the role now, signed with the access key."""
        return await self._sts.assume_role(
            role_arn=self._role_arn,
            session_name=self._session_name,
            duration_seconds=self._duration,
            access_key_id=self._key_id,
            secret_access_key=self._secret.get_secret_value(),
            external_id=self._external_id,
        )
