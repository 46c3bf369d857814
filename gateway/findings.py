"""What ``fedgate check-config`` reports: findings, in the manner of IAM Access Analyzer's
ValidatePolicy (an issue code, a severity, where, and what to do).

An **error** is something that cannot work as written (a misspelt action, a trust policy no request
can satisfy, a provider ARN that names no provider): check-config fails on it. A **warning** is
something that works but probably not as meant (an upstream no request reaches, an ARN naming a
role the configuration does not declare, which may still exist in the IAM database).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Finding", "Severity"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding: ``path`` is the configuration key path it is about (``roles[0].trust_policy...``)."""

    severity: Severity
    code: str
    path: str
    message: str

    def line(self) -> str:
        """The one line check-config prints for it."""
        return f"{self.severity}: {self.path}: {self.message} [{self.code}]"

    def as_dict(self) -> dict[str, str]:
        """The finding as ``--format json`` prints it."""
        return {"severity": self.severity, "code": self.code, "path": self.path, "message": self.message}
