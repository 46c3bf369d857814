"""The enforcing reverse proxy: SigV4-verified, policy-checked requests forwarded to upstreams.

Domain modules (no aiohttp): :mod:`.config` (settings), :mod:`.paths` (path safety),
:mod:`.query`, :mod:`.mapping` (the mapping protocol and route tables), :mod:`.s3` (with S3's
signature condition keys), :mod:`.apigw`, :mod:`.headers` (header filtering),
:mod:`.authorize` (authentication and the policy decision), :mod:`.upstream` (the upstream table),
:mod:`.identity` (identity tokens and JWKS), :mod:`.body` (streamed body checks). The aiohttp
adapter is :mod:`.handler`. What the proxy shares with every front door lives outside it: request
facts and ``aws:*`` keys in :mod:`gateway.context`, error dialects in :mod:`gateway.dialects`, the
aiohttp request adapter in :mod:`gateway.web.request`.
"""

from __future__ import annotations

__all__: list[str] = []  # a package of modules; import them by name
