"""Secrets given by reference in the configuration: ``{env: NAME}`` or ``{file: PATH}``.

Its own module (not :mod:`gateway.config`) because every settings model that holds a secret, the
proxy's and plugins' included, needs it without importing the whole configuration.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from gateway.configpath import ConfigPath

__all__ = ["SecretRef"]


class SecretRef(BaseModel):
    """A secret given by reference: exactly one of ``env`` or ``file``.

    ``value`` is accepted for tests and throwaway demos only; it puts the secret in the file.
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

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        given = [n for n in ("env", "file", "value") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of env, file or value")
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
