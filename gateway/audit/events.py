"""Audit events: CloudTrail's shapes, spelled in one place (the schema is ``docs/audit.md``).

:func:`build_event` turns a :class:`~gateway.calls.CallRecord` into one event; :class:`Auditor`
builds each call's and hands it to the ``fedgate_audit_event`` hook (the built-in sinks are in
:mod:`gateway.audit.sinks`). Each principal shape
has one builder, so a principal is spelled the same way by every front door:

* :func:`assumed_role_identity`: a session signed a call (the Query API's signed actions, the proxy);
* :func:`web_identity_user`: an OIDC (or other non-SAML) identity assumed a role, through
  ``AssumeRoleWithWebIdentity`` or a browser sign-in; ``principalId`` is CloudTrail's
  ``PROVIDER:AUDIENCE:SUBJECT``;
* :func:`saml_user`: a SAML identity, through ``AssumeRoleWithSAML`` or a browser sign-in;
  ``principalId`` is CloudTrail's ``NAMEQUALIFIER:NAMEID``.

A browser or CLI sign-in adds ``signInVia`` (``fedgate-web``, ``fedgate-cli``, ``fedgate-device``).
Events never carry secrets: request parameters pass an allowlist, so a new parameter stays out
until it is reviewed, and response elements name an access key id, never its secret or token.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, final

from gateway.calls import CallRecord
from gateway.credentials import IssuedCredentials, SessionClaims
from gateway.credentials.claims import FEDERATED_USER, ROLE_SESSION
from gateway.errors import ServiceError
from gateway.iam.caller import Caller
from gateway.iam.denial import MARKER
from gateway.identity import Identity
from gateway.isotime import iso8601, iso8601_epoch
from gateway.metrics import note_call
from gateway.plugin_host import PluginHost
from gateway.sts.service import AssumedRole, FederatedUser, RoleSession

if TYPE_CHECKING:
    from gateway.metrics import Metrics

__all__ = [
    "EVENT_VERSION",
    "SAFE_PARAMETERS",
    "Auditor",
    "assumed_role_elements",
    "assumed_role_identity",
    "build_event",
    "iam_user_identity",
    "saml_user",
    "session_token_elements",
    "user_identity",
    "user_session_identity",
    "web_identity_user",
]

EVENT_VERSION = "1.08"
#: Parameters safe to record. Tokens, assertions and secrets are never in this list.
SAFE_PARAMETERS = frozenset(
    {
        "roleArn",
        "roleSessionName",
        "durationSeconds",
        "policy",
        "policyArns",
        "providerId",
        "principalArn",
        # The IAM API's (gateway.iam.api): names, paths, paging, tags, policy documents, key ids.
        "accessKeyId",
        "groupName",
        "marker",
        "maxItems",
        "newGroupName",
        "newPath",
        "newUserName",
        "path",
        "pathPrefix",
        "permissionsBoundary",
        "policyDocument",
        "policyName",
        "status",
        "tagKeys",
        "tags",
        "userName",
        # Managed policies, roles, instance profiles, identity providers (documents, not secrets).
        "assumeRolePolicyDocument",
        "clientID",
        "clientIDList",
        "description",
        "entityFilter",
        "filter",
        "instanceProfileName",
        "maxSessionDuration",
        "name",
        "onlyAttached",
        "openIDConnectProviderArn",
        "policyArn",
        "policyUsageFilter",
        "roleName",
        "sAMLProviderArn",
        "scope",
        "setAsDefault",
        "thumbprintList",
        "url",
        "versionId",
        # AssumeRole's (tags above): never TokenCode (an MFA code) nor ExternalId.
        "transitiveTagKeys",
        "sourceIdentity",
        "serialNumber",
    }
)
_MAX_USER_AGENT = 512
_MAX_ERROR_MESSAGE = 1024


def _time(epoch: float) -> str:
    return iso8601_epoch(epoch)


def assumed_role_identity(claims: SessionClaims) -> dict[str, Any]:
    """``AssumedRole``: the session ``claims`` describe, and the role that issued it."""
    session: dict[str, Any] = {
        "sessionIssuer": {
            "type": "Role",
            "principalId": claims.role_id,
            "arn": claims.role_arn,
            "accountId": claims.account_id,
            "userName": claims.role_name,
        },
        "attributes": {
            "creationDate": _time(claims.issued_at),
            "mfaAuthenticated": "true" if claims.mfa_authenticated else "false",
        },
    }
    if claims.source_identity:
        session["sourceIdentity"] = claims.source_identity
    return {
        "type": "AssumedRole",
        "principalId": claims.assumed_role_id,
        "arn": claims.assumed_role_arn,
        "accountId": claims.account_id,
        "accessKeyId": claims.access_key_id,
        "sessionContext": session,
    }


def iam_user_identity(caller: Caller) -> dict[str, Any]:
    """``IAMUser``: an IAM user that signed with one of its long-term access keys."""
    return {
        "type": "IAMUser",
        "principalId": caller.user_id,
        "arn": caller.arn,
        "accountId": caller.account_id,
        "accessKeyId": caller.access_key_id,
        "userName": caller.user_name or "",
    }


def user_session_identity(claims: SessionClaims) -> dict[str, Any]:
    """A user's own session (``IAMUser`` with a ``sessionContext``, as CloudTrail records calls
    made with ``GetSessionToken`` credentials) or a federated user's (``FederatedUser``, its
    ``sessionIssuer`` the IAM user that asked for it)."""
    attributes = {
        "creationDate": _time(claims.issued_at),
        "mfaAuthenticated": "true" if claims.mfa_authenticated else "false",
    }
    shape: dict[str, Any] = {
        "principalId": claims.principal_id,
        "arn": claims.principal_arn,
        "accountId": claims.account_id,
        "accessKeyId": claims.access_key_id,
    }
    if claims.principal == FEDERATED_USER:
        issuer = {
            "type": "IAMUser",
            "principalId": claims.user_id,
            "arn": claims.user_arn,
            "accountId": claims.account_id,
            "userName": claims.user_arn.rsplit("/", 1)[-1],
        }
        return {
            "type": "FederatedUser",
            **shape,
            "sessionContext": {"sessionIssuer": issuer, "attributes": attributes},
        }
    return {
        "type": "IAMUser",
        **shape,
        "userName": claims.session_name,
        "sessionContext": {"attributes": attributes},
    }


def web_identity_user(identity: Identity) -> dict[str, Any]:
    """``WebIdentityUser``: ``principalId`` is ``PROVIDER:AUDIENCE:SUBJECT``, as CloudTrail spells it."""
    return {
        "type": "WebIdentityUser",
        "principalId": f"{identity.provider_arn}:{identity.audience}:{identity.subject}",
        "userName": identity.subject,
        "identityProvider": identity.provider_arn,
    }


def saml_user(identity: Identity) -> dict[str, Any]:
    """``SAMLUser``: ``principalId`` is ``NAMEQUALIFIER:NAMEID``, as CloudTrail spells it."""
    qualifier = identity.name_qualifier or identity.provider_arn
    return {
        "type": "SAMLUser",
        "principalId": f"{qualifier}:{identity.subject}",
        "userName": identity.subject,
        "identityProvider": identity.provider_arn,
    }


def user_identity(call: CallRecord) -> dict[str, Any]:
    """The principal of ``call``: its signing session or user, else its federated identity, else
    unknown."""
    if call.session is not None:
        if call.session.principal != ROLE_SESSION:
            return user_session_identity(call.session)
        return assumed_role_identity(call.session)
    if call.caller is not None:
        return iam_user_identity(call.caller)
    if call.identity is None:
        return {"type": "Unknown"}
    shape = saml_user(call.identity) if call.identity.kind == "saml" else web_identity_user(call.identity)
    if call.sign_in_via is not None:
        shape["signInVia"] = f"fedgate-{call.sign_in_via}"
    return shape


def session_token_elements(
    issued: IssuedCredentials, federated: FederatedUser | None = None
) -> dict[str, Any]:
    """The response elements of a successful GetSessionToken or GetFederationToken call."""
    out: dict[str, Any] = {
        "credentials": {
            "accessKeyId": issued.access_key_id,
            "expiration": iso8601(issued.expiration),
        }
    }
    if federated is not None:
        out["federatedUser"] = {"arn": federated.arn, "federatedUserId": federated.federated_user_id}
        out["packedPolicySize"] = federated.packed_policy_size
    return out


def assumed_role_elements(assumed: RoleSession) -> dict[str, Any]:
    """The response elements of a successful AssumeRole* call (and a sign-in's minting)."""
    out: dict[str, Any] = {
        "credentials": {
            "accessKeyId": assumed.credentials.access_key_id,
            "expiration": iso8601(assumed.credentials.expiration),
        },
        "assumedRoleUser": {"arn": assumed.assumed_role_arn, "assumedRoleId": assumed.assumed_role_id},
        "packedPolicySize": assumed.packed_policy_size,
    }
    if not isinstance(assumed, AssumedRole):  # AssumeRole: a signed caller, no federated identity
        out["sourceIdentity"] = assumed.source_identity
        return out
    identity = assumed.identity
    if identity.kind == "saml":
        out.update(
            {
                "subject": identity.subject,
                "subjectType": identity.subject_type,
                "issuer": identity.issuer,
                "audience": identity.audience,
                "nameQualifier": identity.name_qualifier,
                "sourceIdentity": identity.source_identity,
            }
        )
    else:
        out.update(
            {
                "subjectFromWebIdentityToken": identity.subject,
                "provider": identity.issuer,
                "audience": identity.audience,
            }
        )
    return out


def build_event(
    event_name: str,
    call: CallRecord,
    error: ServiceError | None,
    *,
    account_id: str,
    region: str,
    source: str = "sts.amazonaws.com",
    read_only: bool | None = None,
    additional: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A CloudTrail-shaped event for one call (see ``docs/audit.md``).

    ``read_only`` defaults to whether the event name starts with ``Get``; ``additional`` becomes
    ``additionalEventData`` (the proxy's upstream and decision).
    """
    params = {
        k: v for k, v in (call.request_parameters or {}).items() if k in SAFE_PARAMETERS and v is not None
    }
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "eventTime": _time(call.now),
        "eventSource": source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": call.transport.source_ip,
        "userAgent": (call.transport.user_agent or "")[:_MAX_USER_AGENT],
        "userIdentity": user_identity(call),
        "requestParameters": params or None,
        "responseElements": call.response_elements if error is None else None,
        "requestID": call.request_id,
        "eventID": str(uuid.uuid4()),
        "readOnly": event_name.startswith("Get") if read_only is None else read_only,
        "resources": [{"type": kind, "ARN": arn} for kind, arn in call.resources] or None,
        "eventType": "AwsApiCall",
        "recipientAccountId": account_id,
    }
    if error is not None:
        event["errorCode"] = error.code
        # The sealed explanation an AccessDenied ends with is for the caller to decode; the event
        # already says how the call was decided.
        event["errorMessage"] = error.message.partition(" " + MARKER)[0][:_MAX_ERROR_MESSAGE]
    if additional is not None:
        event["additionalEventData"] = dict(additional)
    return event


@final
class Auditor:
    """Builds audit events (:func:`build_event`) and hands them to the plugin host."""

    def __init__(
        self, host: PluginHost, *, account_id: str, region: str, metrics: Metrics | None = None
    ) -> None:
        self._host = host
        self._account_id = account_id
        self._region = region
        self._metrics = metrics

    def build(
        self,
        event_name: str,
        call: CallRecord,
        error: ServiceError | None,
        *,
        source: str = "sts.amazonaws.com",
        read_only: bool | None = None,
        additional: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A CloudTrail-shaped event for one call (see ``docs/audit.md``)."""
        return build_event(
            event_name,
            call,
            error,
            account_id=self._account_id,
            region=self._region,
            source=source,
            read_only=read_only,
            additional=additional,
        )

    def emit(self, event_name: str, call: CallRecord, error: ServiceError | None, **kw: Any) -> None:
        """Build the event and hand it to every sink (nothing is built when there is none); tell
        the metrics what was decided."""
        source = kw.get("source", "sts.amazonaws.com")
        note_call(source, event_name, error.code if error is not None else None)
        if self._metrics is not None:
            additional = kw.get("additional")
            elements = call.response_elements
            self._metrics.call_decided(
                event_name,
                source,
                error.code if error is not None else None,
                decision=additional.get("decision") if additional else None,
                issued=elements is not None and "credentials" in elements,
            )
        if self._host.has_audit_sinks():
            self._host.audit_event(self.build(event_name, call, error, **kw))
