"""The STS Query API endpoint on ``/``: a thin adapter around :class:`gateway.sts.service.StsService`."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl

from aiohttp import web

from gateway import keys
from gateway.authn import authenticate
from gateway.errors import InvalidAction, MissingParameter, ServiceError, ValidationError
from gateway.sigv4 import HttpRequest
from gateway.sts.params import API_VERSION, QueryParams, collect_params
from gateway.sts.service import CallContext
from gateway.sts.xml import XmlValue, response_document

__all__ = ["routes"]

routes = web.RouteTableDef()
_MAX_FIELDS = 64
_FORM = "application/x-www-form-urlencoded"


def _pairs(query: str, body: bytes, content_type: str) -> list[tuple[str, str]]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
        if body and content_type == _FORM:
            pairs += parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, max_num_fields=_MAX_FIELDS
            )
    except (UnicodeDecodeError, ValueError):
        raise ValidationError("The request parameters could not be parsed") from None
    return pairs


def http_request(request: web.Request, body: bytes) -> HttpRequest:
    """The transport-neutral view of ``request`` that SigV4 verification needs."""
    raw_path, _, raw_query = request.raw_path.partition("?")
    headers = tuple(
        (k.decode("latin-1"), v.decode("utf-8", errors="replace")) for k, v in request.raw_headers
    )
    return HttpRequest(
        method=request.method,
        raw_path=raw_path,
        raw_query=raw_query,
        headers=headers,
        payload_sha256=hashlib.sha256(body).hexdigest(),
    )


@routes.route("*", "/")
async def sts_endpoint(request: web.Request) -> web.Response:
    """Dispatch one STS Query API call and record it in the audit trail."""
    if request.method not in ("GET", "POST"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
    app = request.app
    ctx = CallContext(
        request_id=request[keys.REQUEST_ID],
        source_ip=request.remote or "",
        user_agent=request.headers.get("User-Agent", ""),
        secure_transport=request.secure,
        now=app[keys.STS].now(),
    )
    action = "Unknown"
    error: ServiceError | None = None
    try:
        body = await request.read()
        params = collect_params(_pairs(request.raw_path.partition("?")[2], body, request.content_type))
        action = params.action
        _check_version(params, action)
        result = await _dispatch(request, action, params, body, ctx)
        return web.Response(text=response_document(action, result, ctx.request_id), content_type="text/xml")
    except ServiceError as exc:
        error = exc
        raise
    finally:
        app[keys.AUDITOR].emit(action if action.isalnum() and len(action) <= 64 else "Unknown", ctx, error)


def _check_version(params: QueryParams, action: str) -> None:
    version = params.get("Version")
    if version is None:
        raise MissingParameter("The request must contain the parameter Version")
    if version != API_VERSION:
        raise InvalidAction(f"Could not find operation {action[:64]} for version {version[:32]}")


async def _dispatch(
    request: web.Request, action: str, params: QueryParams, body: bytes, ctx: CallContext
) -> dict[str, XmlValue]:
    app = request.app
    sts = app[keys.STS]
    if action == "AssumeRoleWithWebIdentity":
        assumed = await sts.assume_role_with_web_identity(params, ctx)
        creds = assumed.credentials
        return {
            "Credentials": {
                "AccessKeyId": creds.access_key_id,
                "SecretAccessKey": creds.secret_access_key,
                "SessionToken": creds.session_token,
                "Expiration": creds.expiration,
            },
            "SubjectFromWebIdentityToken": assumed.identity.subject,
            "AssumedRoleUser": {"Arn": assumed.assumed_role_arn, "AssumedRoleId": assumed.assumed_role_id},
            "PackedPolicySize": assumed.packed_policy_size,
            "Provider": assumed.identity.issuer,
            "Audience": assumed.identity.audience,
        }
    if action == "GetCallerIdentity":
        config = app[keys.CONFIG]
        claims = await authenticate(
            http_request(request, body),
            sts.credentials,
            now=ctx.now,
            region=config.region,
            service="sts",
            keys=app[keys.SIGNING_KEYS],
        )
        ctx.user_identity = {
            "type": "AssumedRole",
            "principalId": f"{claims.role_id}:{claims.session_name}",
            "arn": f"arn:aws:sts::{claims.account_id}:assumed-role/{claims.role_name}/{claims.session_name}",
            "accountId": claims.account_id,
            "accessKeyId": claims.access_key_id,
        }
        caller = sts.get_caller_identity(claims, ctx)
        return {"UserId": caller.user_id, "Account": caller.account, "Arn": caller.arn}
    raise InvalidAction(f"Could not find operation {action[:64]} for version {API_VERSION}")
