"""File paths in the configuration resolve against the configuration file's own directory.

A relative path in ``fedgate.yaml`` (a secret ``{file: ...}``, ``dev_issuer.key_file``, a
provider's ``ca_file``, ``audit.path``, a ``sqlite:///`` database) names the same file whatever
directory a command runs in, so ``fedgate dev-token`` run elsewhere uses the key the gateway serves.
:func:`gateway.startup.load` passes the directory as pydantic's validation context; a model
validated without one (a test's dict) keeps paths as written.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo

__all__ = ["CONFIG_DIR", "ConfigPath", "relative_to_config"]

#: The validation-context key holding the configuration file's directory.
CONFIG_DIR = "config_dir"


def relative_to_config(value: Any, info: ValidationInfo) -> Any:
    """``value`` joined to the configuration's directory when it is a relative path."""
    base = info.context.get(CONFIG_DIR) if isinstance(info.context, dict) else None
    if base is not None and isinstance(value, str | PurePath) and str(value):
        path = Path(value)
        if not path.is_absolute():
            return Path(base) / path
    return value


#: A configuration field naming a file: relative paths resolve against the configuration file.
ConfigPath = Annotated[Path, BeforeValidator(relative_to_config)]
