"""The enforcing reverse proxy: SigV4-verified, policy-checked requests forwarded to upstreams.

Domain modules (no aiohttp): :mod:`.config` (settings), :mod:`.paths` (path safety),
:mod:`.query`, :mod:`.mapping` (the mapping protocol and route tables), :mod:`.s3`,
:mod:`.apigw`, :mod:`.context` (global condition keys), :mod:`.headers` (header filtering),
:mod:`.authorize` (authentication and the policy decision), :mod:`.upstream` (the upstream table),
:mod:`.identity` (identity tokens and JWKS), :mod:`.dialect` (error documents),
:mod:`.body` (streamed body checks). The aiohttp adapter is :mod:`.handler`.
"""

from __future__ import annotations
