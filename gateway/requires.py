"""Libraries imported when the configuration needs them, and only then.

A server's resting memory is mostly the modules it imports (redis-py, pysaml2 and signxml,
Alembic, asyncpg... a few MiB each), so each is imported by the code that builds the feature using
it, at start-up, when the configuration asks for that feature: never on a request's path, and
never for a feature that is off. :func:`require` is that import. It makes a missing (or broken)
library what every other start-up problem is: one :class:`~gateway.errors.ConfigError` line naming
the configuration key that needs it and the package to install, where a bare ``ImportError``
would be a traceback, or worse, a failure on the first request.

Rules: the feature's builder calls :func:`require` for each third-party package before it imports
the fedgate module built on it (so that import cannot fail with the package missing); annotations
import the heavy modules under ``TYPE_CHECKING`` only.

One exception to "never on a request's path": a required dependency (always installed, so it cannot
be missing) that only a rare kind of request uses is imported by the first such request, once, in
the one function that needs it. Today that is lxml (DeleteObjects' body, in :mod:`gateway.xmlsafe`;
about 5 MiB, a 4 ms pause the first time) and awscrt (CRC32C and CRC64NVME checksums, in
:mod:`gateway.sigv4.checksums`; about 6 MiB, 26 ms the first time; the SDKs' default CRC32 is
zlib's). A proxy whose clients send neither never holds them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from gateway.errors import ConfigError

__all__ = ["require"]


def require(module: str, *, feature: str, package: str) -> ModuleType:
    """Import ``module`` for ``feature`` (a configuration key and value, e.g. ``store.backend: redis``).

    Raises :class:`~gateway.errors.ConfigError` naming ``feature`` and ``package`` (the distribution
    to install) when the import fails; the module otherwise.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module
        raise ConfigError(
            f"{feature} needs the Python package {package!r}, which cannot be imported "
            f"({type(exc).__name__}: {missing}); install it (pip install {package!r})"
        ) from None
