"""Where a served role's credentials come from: the :class:`CredentialSource` protocol.

A source is asked for fresh credentials at start and at every renewal, and either returns them or
raises a :class:`~gateway.agent.errors.SourceError` saying why (the agent then retries with
backoff). Sources today:

* :class:`WebIdentityTokenFile`: AssumeRoleWithWebIdentity with an OIDC token read from a file at
  every call, so a token the kubelet (or anything else) rotates on disk is picked up at the next
  renewal.

A source for a fedgate user's long-term access key (AssumeRole signed with SigV4) is one more class
with the same ``fetch``, once the gateway has IAM users and AssumeRole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, final

from gateway.agent.credentials import Credentials
from gateway.agent.errors import TokenFileError

__all__ = ["CredentialSource", "WebIdentityExchange", "WebIdentityTokenFile", "read_token_file"]

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
