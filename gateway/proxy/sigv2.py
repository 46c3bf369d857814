"""SigV2-signed S3 requests at the proxy: open the session the key names, then verify.

The verification itself is :mod:`gateway.sigv4.sigv2` (pure); this adapter finds the secret in
the sealed session token (``x-amz-security-token``, as S3 takes it with temporary credentials) and
states the outcome as the SigV4 path does, so mapping, policy and forwarding need not care. The
body is not covered by a SigV2 signature (only a ``Content-MD5``, which the upstream checks), so
it is forwarded as ``UNSIGNED-PAYLOAD``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.authn import Authenticated
from gateway.credentials import CredentialService
from gateway.errors import InvalidClientTokenId, InvalidRequest
from gateway.iam.caller import Caller
from gateway.proxy.s3 import PLAIN_PARAMETERS
from gateway.sigv4 import UNSIGNED_PAYLOAD, HttpRequest, SignatureInfo, Verified
from gateway.sigv4.canonical import parse_query
from gateway.sigv4.sigv2 import covered_by_signature, parse_sigv2, verify_sigv2

__all__ = ["SIGV2_REFUSED", "authenticate_v2", "refused"]

#: What a client is told where SigV2 is off: SigV4 is required, and how to ask for it.
SIGV2_REFUSED = (
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256 "
    '(boto3: Config(signature_version="s3v4"); aws CLI: aws configure set default.s3.signature_version '
    "s3v4; s3cmd: signature_v2 = False)."
)


def refused() -> InvalidRequest:
    """The error for a SigV2 request to an upstream that does not allow it."""
    return InvalidRequest(SIGV2_REFUSED)


async def authenticate_v2(
    request: HttpRequest,
    credentials: CredentialService,
    *,
    now: float,
    region: str,
    bucket: str | None,
) -> Authenticated:
    """Verify a SigV2 request (``bucket``: its virtual-hosted bucket) and open its session.

    Every query parameter must be covered by the signature or be one of S3's plain parameters
    (which refine an operation, never choose it): a subresource SigV2 does not sign (``retention``,
    ``legal-hold``, ``publicAccessBlock``...) or a header-form ``x-amz-*`` parameter is refused,
    as S3 refuses SigV2 for the operations it added since, with the advice to use SigV4.
    """
    info = parse_sigv2(request)
    for name, _ in parse_query(request.raw_query):
        if not covered_by_signature(name, info.form) and name not in PLAIN_PARAMETERS:
            raise refused()
    if info.security_token is None:
        raise InvalidClientTokenId("The security token included in the request is invalid.")
    claims = await credentials.validate(info.access_key_id, info.security_token, now=now)
    moment = datetime.fromtimestamp(now, UTC)
    verify_sigv2(request, info, claims.secret_access_key, now=moment, bucket=bucket)
    stamp = (info.when if info.form == "header" else moment).astimezone(UTC)
    signature = SignatureInfo(
        form=info.form,
        access_key_id=info.access_key_id,
        date=stamp.strftime("%Y%m%d"),
        region=region,
        service="s3",
        signed_headers=(),
        signature="",
        amz_date=stamp,
        timestamp=stamp.strftime("%Y%m%dT%H%M%SZ"),
        security_token=info.security_token,
    )
    return Authenticated(
        Caller.of_session(claims),
        Verified(info=signature, payload_hash=UNSIGNED_PAYLOAD, payload_checked=False),
    )
