"""The AWS Query-protocol endpoint on ``/``, shared by every Query API fedgate serves (STS, IAM).

Each API registers its actions as :class:`~gateway.web.actions.QueryAction` entries keyed by
``(Version, Action)``; the endpoint parses the parameters (query string and form body, duplicates
refused), picks the action, renders its result as the ``{Action}Response`` document and records
one audit event, success or failure (with the code the caller is answered with, whatever failed).
Handlers are thin adapters around pure domain services.
"""

from __future__ import annotations

from aiohttp import web

from gateway import keys
from gateway.authn import authenticate
from gateway.errors import InvalidAction, MissingParameter, ServiceError, ValidationError
from gateway.iam.caller import Caller, check_api_call
from gateway.sts.params import QueryParams, collect_params, form_pairs
from gateway.sts.xml import response_document
from gateway.web.actions import QueryAction, QueryActions, QueryCall
from gateway.web.middleware import service_error
from gateway.web.request import call_record, http_request

__all__ = ["authenticate_call", "routes"]

routes = web.RouteTableDef()
_MAX_FIELDS = 512  # the same bound collect_params applies
_FORM = "application/x-www-form-urlencoded"


def _pairs(query: str, body: bytes, content_type: str) -> list[tuple[str, str]]:
    try:
        pairs = form_pairs(query, strict=False, max_fields=_MAX_FIELDS)
        if body and content_type == _FORM:
            pairs += form_pairs(body.decode("utf-8"), strict=True, max_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise ValidationError("The request parameters could not be parsed") from None
    return pairs


async def authenticate_call(call: QueryCall, *, service: str) -> Caller:
    """Verify the call's SigV4 signature (scoped to ``service``) and record who made it: a
    session (of a role, a user, a federated user) or an IAM user signing with a long-term access
    key. What AWS never lets a user's session call of STS and IAM is refused here
    (:func:`~gateway.iam.caller.check_api_call`)."""
    app = call.request.app
    authenticated = await authenticate(
        http_request(call.request, call.body),
        app[keys.CREDENTIALS],
        now=call.record.now,
        region=app[keys.CONFIG].region,
        service=service,
        keys=app[keys.SIGNING_KEYS],
        access_keys=app[keys.ACCESS_KEYS],
    )
    caller = authenticated.caller
    call.record.caller, call.record.session = caller, caller.session
    check_api_call(caller, service, call.params.action)
    return caller


@routes.route("*", "/")
async def query_endpoint(request: web.Request) -> web.Response:
    """Dispatch one Query API call and record it in the audit trail."""
    if request.method not in ("GET", "POST"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
    app = request.app
    record = call_record(request, now=app[keys.STS].now())
    action_name = "Unknown"
    source = "sts.amazonaws.com"
    read_only: bool | None = None
    error: ServiceError | None = None
    try:
        body = await request.read()
        params = collect_params(_pairs(request.raw_path.partition("?")[2], body, request.content_type))
        action_name = params.action
        action = _lookup(app[keys.QUERY_ACTIONS], params, action_name)
        source, read_only = action.event_source, action.read_only
        result = await action.handler(QueryCall(request, params, body, record))
        document = response_document(action_name, result, record.request_id, namespace=action.namespace)
        return web.Response(text=document, content_type="text/xml")
    except Exception as exc:
        # The middleware answers with this same error (a body over the limit, a client gone).
        error = service_error(exc)
        raise
    finally:
        name = action_name if action_name.isalnum() and len(action_name) <= 64 else "Unknown"
        app[keys.AUDITOR].emit(name, record, error, source=source, read_only=read_only)
        # The error's traceback holds this frame: keeping it here would make a reference cycle
        # that holds the request's body until a full garbage collection.
        error = None


def _lookup(actions: QueryActions, params: QueryParams, action: str) -> QueryAction:
    version = params.get("Version")
    if version is None:
        raise MissingParameter("The request must contain the parameter Version")
    found = actions.get((version, action))
    if found is None:
        raise InvalidAction(f"Could not find operation {action[:64]} for version {version[:32]}")
    return found
