"""fedgate: a federation and token gateway.

Public API: :func:`create_app`, :data:`hookimpl` and the error tree in :mod:`gateway.errors`.
"""

from __future__ import annotations

from gateway import errors
from gateway.hookspecs import hookimpl

__all__ = ["create_app", "errors", "hookimpl"]


def __getattr__(name: str) -> object:
    # create_app pulls in aiohttp; import it lazily so domain code stays light.
    if name == "create_app":
        from gateway.app import create_app

        return create_app
    raise AttributeError(name)
