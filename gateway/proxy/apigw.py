"""The API-Gateway-style mapping: every request is ``execute-api:Invoke`` on its method and path.

The resource is ``arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH`` where PATH is the
decoded path without its leading slash, as API Gateway's IAM authorization builds it; a policy
grants ``.../prod/GET/orders/*`` and the like.
"""

from __future__ import annotations

from gateway.proxy.mapping import Check, Dialect, Mapped, ProxyRequest
from gateway.proxy.paths import encode_segments

__all__ = ["ApiGatewayMapping"]


class ApiGatewayMapping:
    """``execute-api:Invoke`` on the method and path; see the module docstring."""

    dialect: Dialect = "json"
    encoded_slash = False

    def __init__(self, *, region: str, account: str, api_id: str, stage: str) -> None:
        self._prefix = f"arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/"

    def map(self, request: ProxyRequest) -> Mapped:
        path = "/".join(request.segments)
        resource = f"{self._prefix}{request.method}/{path}"
        return Mapped("Invoke", (Check("execute-api:Invoke", resource),), encode_segments(request.segments))
