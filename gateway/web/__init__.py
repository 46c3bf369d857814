"""HTTP adapters: the Query-protocol endpoint (STS and IAM actions), probes and the error middleware."""

from __future__ import annotations

__all__: list[str] = []  # a package of modules; import them by name
