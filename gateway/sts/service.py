"""The STS actions, as pure asynchronous domain code (no aiohttp).

:class:`StsService` owns the decision of every STS call: parameter validation, identity
verification through the provider plugins, trust-policy evaluation, session limits and minting.
HTTP handlers only translate requests into :class:`CallContext` and results into XML.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, final

from gateway.config import GatewayConfig, RoleSettings
from gateway.credentials import CredentialService, IssuedCredentials, SessionClaims
from gateway.errors import (
    AccessDenied,
    InvalidIdentityToken,
    InvalidParameterValue,
    PackedPolicyTooLarge,
    ValidationError,
)
from gateway.identity import Identity, IdentityProvider
from gateway.policy import Policy, Request, evaluate_trust, parse_policy
from gateway.sts.params import AssumeRoleWithWebIdentityParams, QueryParams

__all__ = ["AssumedRole", "CallContext", "CallerIdentity", "StsService"]

# AWS reports PackedPolicySize as a percentage of an undisclosed limit on the compressed session
# policy and tags; fedgate uses 2,048 compressed bytes.
PACKED_LIMIT_BYTES = 2048
_MAX_PEEK_CHARS = 20000


@dataclass(slots=True)
class CallContext:
    """What the transport knows about a call, and what the call learns for the audit trail."""

    request_id: str
    source_ip: str
    user_agent: str
    secure_transport: bool
    now: float
    user_identity: dict[str, Any] | None = None
    request_parameters: dict[str, Any] | None = None
    response_elements: dict[str, Any] | None = None
    resources: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AssumedRole:
    """The result of a successful AssumeRole* call."""

    credentials: IssuedCredentials
    assumed_role_arn: str
    assumed_role_id: str
    identity: Identity
    packed_policy_size: int | None


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    """The result of GetCallerIdentity."""

    arn: str
    user_id: str
    account: str


@final
class StsService:
    """Decides STS calls. One instance per application; safe for concurrent use."""

    def __init__(
        self,
        config: GatewayConfig,
        providers: Sequence[IdentityProvider],
        credentials: CredentialService,
        *,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._credentials = credentials
        self._clock = clock
        self._roles = {config.role_arn(role): role for role in config.roles}
        self._trust = {
            arn: parse_policy(role.trust_policy, kind="trust", name=f"{role.name}-trust")
            for arn, role in self._roles.items()
        }
        self._managed = {
            f"arn:aws:iam::{config.account_id}:policy{p.path}{p.name}": p for p in config.policies
        }
        self._oidc_by_issuer: dict[str, IdentityProvider] = {}
        for provider in providers:
            if provider.kind == "oidc":
                self._oidc_by_issuer[_issuer_key(provider.issuer)] = provider

    def now(self) -> float:
        """The current time in epoch seconds, from the service's clock."""
        return self._clock()

    @property
    def credentials(self) -> CredentialService:
        """The credential service that mints and validates sessions."""
        return self._credentials

    async def assume_role_with_web_identity(self, params: QueryParams, ctx: CallContext) -> AssumedRole:
        """``AssumeRoleWithWebIdentity``: exchange an OIDC token for role credentials."""
        args = AssumeRoleWithWebIdentityParams.parse(params)
        ctx.request_parameters = {
            "roleArn": args.role_arn,
            "roleSessionName": args.role_session_name,
            "durationSeconds": args.duration_seconds,
            "policyArns": list(args.policy_arns) or None,
            "policy": args.policy,
            "providerId": args.provider_id,
        }
        role = self._roles.get(args.role_arn)
        session_policy = (
            parse_policy(args.policy, kind="session", name="session-policy") if args.policy else None
        )
        self._check_policy_arns(args.policy_arns)

        provider = self._oidc_provider_for(args.web_identity_token)
        identity = await provider.authenticate(args.web_identity_token)
        ctx.user_identity = {
            "type": "WebIdentityUser",
            "principalId": f"{identity.provider_arn}:{identity.audience}:{identity.subject}",
            "userName": identity.subject,
            "identityProvider": identity.provider_arn,
        }

        if role is None:
            # Unknown and forbidden roles look the same, so roles cannot be enumerated.
            raise AccessDenied("Not authorized to perform sts:AssumeRoleWithWebIdentity")
        ctx.resources.append({"type": "AWS::IAM::Role", "ARN": args.role_arn})
        tags = dict(identity.session_tags)
        self._authorize_trust(role, args.role_arn, args.role_session_name, identity, tags, ctx)

        if args.duration_seconds > role.max_session_duration:
            raise ValidationError(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            )
        packed = _packed_size(session_policy, args.policy, tags)
        issued = self._credentials.issue(
            account_id=self._config.account_id,
            role_arn=args.role_arn,
            role_name=role.name,
            session_name=args.role_session_name,
            duration_seconds=args.duration_seconds,
            now=ctx.now,
            session_policy=_minify(args.policy) if args.policy else None,
            policy_arns=args.policy_arns,
            tags=tags,
            transitive_tag_keys=identity.transitive_tag_keys,
            provider_arn=identity.provider_arn,
            subject=identity.subject,
            audience=identity.audience,
            identity_claims=dict(identity.condition_keys),
        )
        claims = issued.claims
        assumed_arn = _assumed_role_arn(claims)
        assumed_id = f"{claims.role_id}:{claims.session_name}"
        ctx.response_elements = {
            "credentials": {
                "accessKeyId": issued.access_key_id,
                "expiration": issued.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "assumedRoleUser": {"arn": assumed_arn, "assumedRoleId": assumed_id},
            "subjectFromWebIdentityToken": identity.subject,
            "provider": identity.issuer,
            "audience": identity.audience,
            "packedPolicySize": packed,
        }
        return AssumedRole(issued, assumed_arn, assumed_id, identity, packed)

    def get_caller_identity(self, claims: SessionClaims, ctx: CallContext) -> CallerIdentity:
        """``GetCallerIdentity`` for a verified session: always allowed, as in AWS."""
        arn = _assumed_role_arn(claims)
        user_id = f"{claims.role_id}:{claims.session_name}"
        ctx.response_elements = None
        return CallerIdentity(arn=arn, user_id=user_id, account=claims.account_id)

    def _check_policy_arns(self, arns: Sequence[str]) -> None:
        for arn in arns:
            if arn not in self._managed:
                raise InvalidParameterValue(f"Policy {arn[:256]} does not exist or is not attachable.")

    def _oidc_provider_for(self, token: str) -> IdentityProvider:
        issuer = _peek_issuer(token)
        provider = self._oidc_by_issuer.get(_issuer_key(issuer))
        if provider is None:
            # Naming the issuer helps operators; it is not secret and not the token.
            raise InvalidIdentityToken(f"No OpenIDConnect provider found in your account for {issuer[:256]}")
        return provider

    def _authorize_trust(
        self,
        role: RoleSettings,
        role_arn: str,
        session_name: str,
        identity: Identity,
        tags: Mapping[str, str],
        ctx: CallContext,
    ) -> None:
        context = _trust_context(identity, session_name, tags, ctx)
        principal = {"Federated": [identity.provider_arn]}
        trust = self._trust[role_arn]
        actions = ["sts:AssumeRoleWithWebIdentity"]
        if tags:
            # AWS requires sts:TagSession in the trust policy when the token carries session tags.
            actions.append("sts:TagSession")
        for action in actions:
            decision = evaluate_trust(
                trust, Request(action=action, resource=role_arn, principal=principal, context=context)
            )
            if not decision.allowed:
                raise AccessDenied(f"Not authorized to perform {action}")


def _trust_context(
    identity: Identity, session_name: str, tags: Mapping[str, str], ctx: CallContext
) -> dict[str, str | list[str]]:
    moment = datetime.fromtimestamp(ctx.now, UTC)
    context: dict[str, str | list[str]] = {k.lower(): v for k, v in identity.condition_keys.items()}
    context.update(
        {
            "aws:federatedprovider": identity.provider_arn,
            "aws:currenttime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:epochtime": str(int(ctx.now)),
            "aws:sourceip": ctx.source_ip,
            "aws:useragent": ctx.user_agent,
            "aws:securetransport": "true" if ctx.secure_transport else "false",
            "sts:rolesessionname": session_name,
        }
    )
    if tags:
        context["aws:tagkeys"] = list(tags)
        for key, value in tags.items():
            context[f"aws:requesttag/{key.lower()}"] = value
    if identity.transitive_tag_keys:
        context["sts:transitivetagkeys"] = list(identity.transitive_tag_keys)
    return context


def _assumed_role_arn(claims: SessionClaims) -> str:
    return f"arn:aws:sts::{claims.account_id}:assumed-role/{claims.role_name}/{claims.session_name}"


def _minify(policy: str) -> str:
    return json.dumps(json.loads(policy), separators=(",", ":"), sort_keys=True)


def _packed_size(session_policy: Policy | None, raw: str | None, tags: Mapping[str, str]) -> int | None:
    if session_policy is None and not tags:
        return None
    packed = zlib.compress(
        json.dumps([_minify(raw) if raw else "", sorted(tags.items())], separators=(",", ":")).encode()
    )
    percent = math.ceil(len(packed) * 100 / PACKED_LIMIT_BYTES)
    if percent > 100:
        raise PackedPolicyTooLarge(
            f"Serialized token too large for session; the session policy and tags use {percent}% "
            "of the allowed size"
        )
    return percent


def _issuer_key(issuer: str) -> str:
    return issuer.rstrip("/")


def _peek_issuer(token: str) -> str:
    """Read the unverified ``iss`` claim only to choose a provider; the provider verifies it."""
    if len(token) > _MAX_PEEK_CHARS:
        raise InvalidIdentityToken("The web identity token is too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidIdentityToken("The web identity token is not a signed JWT")
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidIdentityToken("The web identity token could not be decoded") from None
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    if not isinstance(issuer, str) or not issuer:
        raise InvalidIdentityToken("The web identity token has no issuer")
    return issuer
