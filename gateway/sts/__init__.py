"""The STS actions as pure domain code: parameters, the service that decides, and the XML documents."""

from __future__ import annotations

__all__: list[str] = []  # a package of modules; import them by name
