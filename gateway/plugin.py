"""The marker plugins use to implement fedgate hooks: ``@hookimpl``."""

from __future__ import annotations

import pluggy

from gateway.hookspecs import PROJECT

__all__ = ["hookimpl"]

hookimpl = pluggy.HookimplMarker(PROJECT)
