"""Secrets given by reference in the configuration: ``{env: NAME}`` or ``{file: PATH}``.

Its own module (not :mod:`gateway.config`) because every settings model that holds a secret, the
proxy's and plugins' included, needs it without importing the whole configuration.
"""

from __future__ import annotations

import os
import secrets

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from gateway.configpath import ConfigPath

__all__ = ["SecretRef"]


class SecretRef(BaseModel):
    """A secret given by reference: exactly one of ``env`` or ``file``.

    ``value`` is accepted for tests and throwaway demos only; it puts the secret in the file.
    ``{file: PATH, create: true}`` makes the file, with a random secret, the first time it is
    read and it does not exist: a key that outlives restarts on one host without anyone writing
    one (the demo's). Replicas must share theirs, so they give it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = Field(default=None, description="Name of an environment variable holding the secret.")
    file: ConfigPath | None = Field(
        default=None,
        description="Path of a file holding the secret (trailing newline stripped; relative to the "
        "configuration file).",
    )
    value: SecretStr | None = Field(
        default=None, description="The secret inline (discouraged outside tests)."
    )
    create: bool = Field(
        default=False,
        description="With file: when the file does not exist, create it (mode 0600, its directory "
        "0700) holding 48 random bytes, URL-safe base64, and use that. For a single host; replicas "
        "sharing a secret must be given it.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        given = [n for n in ("env", "file", "value") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of env, file or value")
        if self.create and self.file is None:
            raise ValueError("create: true needs file (the file to create)")
        return self

    def resolve(self) -> SecretStr:
        """Read the secret now. Raises ``ValueError`` naming the reference, never the secret."""
        if self.env is not None:
            raw = os.environ.get(self.env)
            if raw is None:
                raise ValueError(
                    f"environment variable {self.env} is not set: export it, or give {{file: PATH}} instead"
                )
            return SecretStr(raw)
        if self.file is not None:
            if self.create and not self.file.exists():
                from gateway.privatefile import create_private

                try:
                    create_private(self.file, secrets.token_urlsafe(48))
                except OSError as exc:
                    raise ValueError(
                        f"cannot create secret file {self.file}: {exc.strerror}; make its directory "
                        "writable by fedgate, or create the file yourself"
                    ) from None
            try:
                return SecretStr(self.file.read_text(encoding="utf-8").rstrip("\r\n"))
            except OSError as exc:
                raise ValueError(
                    f"cannot read secret file {self.file}: {exc.strerror}; create it (readable by fedgate) "
                    "or correct the path"
                ) from None
            except UnicodeDecodeError:
                raise ValueError(f"secret file {self.file} is not UTF-8 text") from None
        assert self.value is not None
        return self.value
