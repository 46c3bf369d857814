"""STS actions on the Query endpoint: thin adapters around :class:`gateway.sts.service.StsService`."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gateway import keys
from gateway.audit.events import assumed_role_elements, session_token_elements
from gateway.credentials import IssuedCredentials
from gateway.sts.params import API_VERSION
from gateway.sts.service import RoleSession
from gateway.sts.xml import NAMESPACE, XmlValue
from gateway.web.actions import QueryAction, QueryActions, QueryCall
from gateway.web.query import authenticate_call

__all__ = ["ACTIONS"]

_SOURCE = "sts.amazonaws.com"


async def _assume_role_with_web_identity(call: QueryCall) -> Mapping[str, XmlValue]:
    assumed = await call.request.app[keys.STS].assume_role_with_web_identity(call.params, call.record)
    call.record.response_elements = assumed_role_elements(assumed)
    return {
        **_assumed_fields(assumed),
        "SubjectFromWebIdentityToken": assumed.identity.subject,
        "Provider": assumed.identity.issuer,
        "Audience": assumed.identity.audience,
    }


async def _assume_role_with_saml(call: QueryCall) -> Mapping[str, XmlValue]:
    assumed = await call.request.app[keys.STS].assume_role_with_saml(call.params, call.record)
    call.record.response_elements = assumed_role_elements(assumed)
    identity = assumed.identity
    return {
        **_assumed_fields(assumed),
        "Subject": identity.subject,
        "SubjectType": identity.subject_type,
        "Issuer": identity.issuer,
        "Audience": identity.audience,
        "NameQualifier": identity.name_qualifier,
        "SourceIdentity": identity.source_identity,
    }


async def _assume_role(call: QueryCall) -> Mapping[str, XmlValue]:
    caller = await authenticate_call(call, service="sts")
    assumed = await call.request.app[keys.STS].assume_role(call.params, caller, call.record)
    call.record.response_elements = assumed_role_elements(assumed)
    return {**_assumed_fields(assumed), "SourceIdentity": assumed.source_identity}


async def _decode_authorization_message(call: QueryCall) -> Mapping[str, XmlValue]:
    caller = await authenticate_call(call, service="sts")
    sts = call.request.app[keys.STS]
    return {"DecodedMessage": sts.decode_authorization_message(call.params, caller, call.record)}


async def _get_access_key_info(call: QueryCall) -> Mapping[str, XmlValue]:
    caller = await authenticate_call(call, service="sts")
    return {"Account": call.request.app[keys.STS].get_access_key_info(call.params, caller, call.record)}


async def _get_session_token(call: QueryCall) -> Mapping[str, XmlValue]:
    caller = await authenticate_call(call, service="sts")
    issued = await call.request.app[keys.STS].get_session_token(call.params, caller, call.record)
    call.record.response_elements = session_token_elements(issued)
    return {"Credentials": _credentials(issued)}


async def _get_federation_token(call: QueryCall) -> Mapping[str, XmlValue]:
    caller = await authenticate_call(call, service="sts")
    federated = call.request.app[keys.STS].get_federation_token(call.params, caller, call.record)
    call.record.response_elements = session_token_elements(federated.credentials, federated)
    return {
        "Credentials": _credentials(federated.credentials),
        "FederatedUser": {"FederatedUserId": federated.federated_user_id, "Arn": federated.arn},
        "PackedPolicySize": federated.packed_policy_size,
    }


async def _get_caller_identity(call: QueryCall) -> Mapping[str, XmlValue]:
    caller = await authenticate_call(call, service="sts")
    identity = call.request.app[keys.STS].get_caller_identity(caller)
    return {"UserId": identity.user_id, "Account": identity.account, "Arn": identity.arn}


def _credentials(creds: IssuedCredentials) -> dict[str, XmlValue]:
    return {
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
        "SessionToken": creds.session_token,
        "Expiration": creds.expiration,
    }


def _assumed_fields(assumed: RoleSession) -> dict[str, XmlValue]:
    return {
        "Credentials": _credentials(assumed.credentials),
        "AssumedRoleUser": {"Arn": assumed.assumed_role_arn, "AssumedRoleId": assumed.assumed_role_id},
        "PackedPolicySize": assumed.packed_policy_size,
    }


ACTIONS: QueryActions = MappingProxyType(
    {
        (API_VERSION, name): QueryAction(handler, NAMESPACE, _SOURCE)
        for name, handler in (
            ("AssumeRole", _assume_role),
            ("AssumeRoleWithWebIdentity", _assume_role_with_web_identity),
            ("AssumeRoleWithSAML", _assume_role_with_saml),
            ("DecodeAuthorizationMessage", _decode_authorization_message),
            ("GetAccessKeyInfo", _get_access_key_info),
            ("GetCallerIdentity", _get_caller_identity),
            ("GetFederationToken", _get_federation_token),
            ("GetSessionToken", _get_session_token),
        )
    }
)
