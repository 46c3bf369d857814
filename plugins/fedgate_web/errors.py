"""The one error the sign-in pages raise: rendered as an HTML page, never as STS XML."""

from __future__ import annotations

__all__ = ["LoginError"]


class LoginError(Exception):
    """A sign-in or form step failed; ``message`` is shown to the user and holds no secret."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
