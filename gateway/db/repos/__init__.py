"""Typed repositories over the IAM tables, one per concern, all bound to one transaction."""

from __future__ import annotations

__all__: list[str] = []  # a package of modules; import them by name
