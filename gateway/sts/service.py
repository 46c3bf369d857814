"""The STS actions, as pure asynchronous domain code (no aiohttp).

:class:`StsService` owns the decision of every STS call: parameter validation, identity
verification through the provider plugins, trust-policy evaluation, session limits and minting.
It records what it learns (the parameters, the verified identity, the role) as facts on the call's
:class:`~gateway.calls.CallRecord` and returns its result; HTTP handlers only translate requests
into records and results into XML, and the audit trail spells the facts (:mod:`gateway.audit.events`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import final

from gateway.calls import CallRecord
from gateway.credentials import CredentialService, IssuedCredentials
from gateway.credentials.claims import FEDERATED_USER, USER_SESSION
from gateway.errors import (
    AccessDenied,
    InvalidIdentityToken,
    InvalidParameterValue,
    ValidationError,
)
from gateway.iam import permissions
from gateway.iam.caller import Caller
from gateway.iam.catalog import Catalog, CatalogSnapshot
from gateway.iam.denial import AuthorizationMessages
from gateway.iam.permissions import Check, ContextValue
from gateway.iam.trust import (
    assume_role_actions,
    assume_role_context,
    decide_assume_role,
    decide_trust,
    idp_grants,
)
from gateway.identity import Identity, IdentityProvider
from gateway.jsonlimits import loads as bounded_loads
from gateway.policy import Policy, TrustMemo
from gateway.sts.params import (
    AssumeRoleParams,
    AssumeRoleWithSAMLParams,
    AssumeRoleWithWebIdentityParams,
    GetFederationTokenParams,
    GetSessionTokenParams,
    QueryParams,
    parse_session_name,
)
from gateway.sts.sessions import (
    CHAINED_SESSION_LIMIT,
    SessionArgs,
    effective_duration,
    inherit,
    packed_size,
    request_parameters,
    session_policy_of,
    within_max_session_duration,
)

__all__ = [
    "CHAINED_SESSION_LIMIT",
    "AssumedRole",
    "CallerIdentity",
    "FederatedUser",
    "MfaVerifier",
    "RoleSession",
    "SessionArgs",
    "StsService",
    "refuse_mfa",
]

_MAX_PEEK_CHARS = 20000
_KEY_ID_CHARS = re.compile(r"^\w+\Z", re.ASCII)
# What new_access_key_id (and the IAM API's long-term keys) produce: a prefix and 16 base32 characters.
_ISSUED_KEY_ID = re.compile(r"^(ASIA|AKIA)[A-Z2-7]{16}\Z")

#: Checks an MFA code for ``AssumeRole``'s SerialNumber and TokenCode at ``now``: returns the time
#: of the MFA when ``token_code`` is a current, unspent code of the caller's device
#: ``serial_number``, raises AccessDenied otherwise (see :class:`gateway.sts.mfa.CallerMfa`).
MfaVerifier = Callable[[Caller, str, str | None, float], Awaitable[float]]


async def refuse_mfa(caller: Caller, serial_number: str, token_code: str | None, now: float) -> float:
    """The verifier where fedgate has no MFA devices to check with: every code is refused."""
    raise AccessDenied("MultiFactorAuthentication failed: no MFA device is registered to check codes with.")


@dataclass(frozen=True, slots=True)
class _SessionRequest:
    role_arn: str
    duration_seconds: int
    policy: str | None = None
    policy_arns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RoleSession:
    """The result of a successful AssumeRole* call: the new session's credentials and names."""

    credentials: IssuedCredentials
    assumed_role_arn: str
    assumed_role_id: str
    packed_policy_size: int | None
    source_identity: str | None


@dataclass(frozen=True, slots=True)
class AssumedRole(RoleSession):
    """A session assumed by a federated identity (AssumeRoleWithWebIdentity, AssumeRoleWithSAML,
    a browser or CLI sign-in), with the identity that assumed it."""

    identity: Identity


@dataclass(frozen=True, slots=True)
class FederatedUser:
    """The result of GetFederationToken: the credentials and the federated user they are."""

    credentials: IssuedCredentials
    federated_user_id: str
    arn: str
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
        catalog: Catalog,
        providers: Sequence[IdentityProvider],
        credentials: CredentialService,
        *,
        clock: Callable[[], float],
        messages: AuthorizationMessages,
        region: str,
        verify_mfa: MfaVerifier = refuse_mfa,
    ) -> None:
        self._catalog = catalog
        self._region = region
        self._messages = messages
        self._credentials = credentials
        self._clock = clock
        self._configured = tuple(providers)
        self._verify_mfa = verify_mfa
        self._oidc_by_issuer: dict[str, IdentityProvider] = {}
        self._saml_by_arn: dict[str, IdentityProvider] = {}
        # Trust decisions by what each trust policy reads: federated identities ask again and again.
        self._trust = TrustMemo()
        self.use_api_providers(())

    def use_api_providers(self, providers: Sequence[IdentityProvider]) -> None:
        """Route tokens to ``providers`` (created through the IAM API) besides the configured ones,
        which win for the same issuer. The lookup tables are replaced whole, in one assignment each."""
        oidc: dict[str, IdentityProvider] = {}
        saml: dict[str, IdentityProvider] = {}
        for provider in (*providers, *self._configured):
            if provider.kind == "oidc":
                oidc[_issuer_key(provider.issuer)] = provider
            elif provider.kind == "saml":
                saml[provider.arn] = provider
        self._oidc_by_issuer, self._saml_by_arn = oidc, saml

    def now(self) -> float:
        """The current time in epoch seconds, from the service's clock."""
        return self._clock()

    @property
    def credentials(self) -> CredentialService:
        """The credential service that mints and validates sessions."""
        return self._credentials

    async def assume_role_with_web_identity(self, params: QueryParams, call: CallRecord) -> AssumedRole:
        """``AssumeRoleWithWebIdentity``: exchange an OIDC token for role credentials."""
        args = AssumeRoleWithWebIdentityParams.parse(params)
        snapshot = self._catalog.snapshot
        call.request_parameters = {
            **request_parameters(args, args.role_session_name),
            "providerId": args.provider_id,
        }
        session_policy = session_policy_of(snapshot, args.policy, args.policy_arns)
        provider = self._oidc_provider_for(args.web_identity_token)
        identity = await provider.authenticate(args.web_identity_token)
        call.identity = identity
        return self._assume(snapshot, args, args.role_session_name, session_policy, identity, call)

    async def assume_role_with_saml(self, params: QueryParams, call: CallRecord) -> AssumedRole:
        """``AssumeRoleWithSAML``: exchange a signed SAML response for role credentials."""
        args = AssumeRoleWithSAMLParams.parse(params)
        snapshot = self._catalog.snapshot
        call.request_parameters = {
            **request_parameters(args, None),
            "principalArn": args.principal_arn,
        }
        session_policy = session_policy_of(snapshot, args.policy, args.policy_arns)
        provider = self._saml_by_arn.get(args.principal_arn)
        if provider is None:
            raise InvalidIdentityToken(f"SAML provider {args.principal_arn} does not exist in the account")
        identity = await provider.authenticate(args.saml_assertion)
        call.identity = identity
        if not idp_grants(identity, args.role_arn):
            # The IdP did not grant this role to this user (the trust decision checks it again).
            raise AccessDenied("Not authorized to perform sts:AssumeRoleWithSAML")
        if identity.session_name is None:
            raise InvalidIdentityToken("The SAML assertion has no RoleSessionName attribute")
        session_name = parse_session_name(identity.session_name)
        return self._assume(snapshot, args, session_name, session_policy, identity, call)

    def assume_for_login(
        self, identity: Identity, role_arn: str, session_name: str, duration_seconds: int, call: CallRecord
    ) -> AssumedRole:
        """Mint role credentials for a browser or CLI sign-in (the ``/sso/`` pages).

        ``identity`` was verified by the sign-in itself (an OIDC code flow's ID token or a SAML
        response at the ACS). The same rules as the federation APIs apply: a SAML identity must
        have been granted ``role_arn`` by its IdP, and the role's trust policy must allow the
        identity for ``sts:AssumeRoleWithSAML`` or ``sts:AssumeRoleWithWebIdentity``: the one
        trust decision (:func:`gateway.iam.trust.decide_trust`) decides, as for the federation APIs.
        ``duration_seconds`` is capped by the role's maximum session duration.
        """
        snapshot = self._catalog.snapshot
        role = snapshot.role(role_arn)
        if role is not None:
            duration_seconds = min(duration_seconds, role.max_session_duration)
        call.request_parameters = {
            "roleArn": role_arn,
            "roleSessionName": session_name,
            "durationSeconds": duration_seconds,
        }
        call.identity = identity
        request = _SessionRequest(role_arn=role_arn, duration_seconds=duration_seconds)
        return self._assume(snapshot, request, parse_session_name(session_name), None, identity, call)

    def _assume(
        self,
        snapshot: CatalogSnapshot,
        args: SessionArgs,
        session_name: str,
        session_policy: Policy | None,
        identity: Identity,
        call: CallRecord,
    ) -> AssumedRole:
        """Authorize ``identity`` to assume ``args.role_arn`` and mint the session's credentials."""
        role_arn, policy = args.role_arn, args.policy
        role = snapshot.role(role_arn)
        if role is not None:
            call.resources.append(("AWS::IAM::Role", role_arn))
        # Unknown and forbidden roles are refused alike, so roles cannot be enumerated.
        trust = decide_trust(
            role, identity, session_name=session_name, transport=call.transport, memo=self._trust
        )
        if not trust.allowed or role is None:
            raise trust.error()
        tags = dict(identity.session_tags)
        within_max_session_duration(role, args.duration_seconds)
        duration = effective_duration(args.duration_seconds, identity, call.now)
        packed = packed_size(session_policy, policy, tags)
        issued = self._credentials.issue(
            account_id=snapshot.account_id,
            role_arn=role_arn,
            role_name=role.name,
            session_name=session_name,
            duration_seconds=duration,
            now=call.now,
            session_policy=policy or None,
            policy_arns=args.policy_arns,
            tags=tags,
            transitive_tag_keys=identity.transitive_tag_keys,
            provider_arn=identity.provider_arn,
            subject=identity.subject,
            audience=identity.audience,
            source_identity=identity.source_identity,
            mfa_authenticated=identity.mfa_authenticated,
            identity_claims=identity.condition_keys,
        )
        claims = issued.claims
        return AssumedRole(
            credentials=issued,
            assumed_role_arn=claims.assumed_role_arn,
            assumed_role_id=claims.assumed_role_id,
            packed_policy_size=packed,
            source_identity=claims.source_identity,
            identity=identity,
        )

    async def assume_role(self, params: QueryParams, caller: Caller, call: CallRecord) -> RoleSession:
        """``AssumeRole``: a signed caller (a role session, a user) gets a session of another role.

        A caller that is itself a role session is *chaining*: its session is capped at one hour, its
        transitive tags pass to the new session (and may not be passed again), its source identity
        is kept (and may not be changed), and the new session records the chain it descends from,
        so revoking the sessions of any role on the chain revokes it too.
        """
        args = AssumeRoleParams.parse(params)
        snapshot = self._catalog.snapshot
        call.request_parameters = {
            **request_parameters(args, args.role_session_name),
            "tags": [{"key": k, "value": v} for k, v in args.tags.items()] or None,
            "transitiveTagKeys": list(args.transitive_tag_keys) or None,
            "sourceIdentity": args.source_identity,
            "serialNumber": args.serial_number,
        }
        session_policy = session_policy_of(snapshot, args.policy, args.policy_arns)
        parent = caller.session
        carried = inherit(parent, args.tags, args.transitive_tag_keys, args.source_identity)
        mfa_at = await self._mfa(caller, args.serial_number, args.token_code, call.now)
        role = snapshot.role(args.role_arn)
        if role is not None:
            call.resources.append(("AWS::IAM::Role", args.role_arn))
        context = assume_role_context(
            self._context(snapshot, caller, call),
            session_name=args.role_session_name,
            tags=args.tags,
            transitive_tag_keys=args.transitive_tag_keys,
            source_identity=carried.source_identity,
            external_id=args.external_id,
            mfa_age=None if mfa_at is None else max(0, int(call.now - mfa_at)),
        )
        actions = assume_role_actions(
            tagged=bool(carried.tags), source_identity=carried.source_identity is not None
        )
        policies = permissions.policy_set(snapshot, caller)
        trust = decide_assume_role(role, caller, policies=policies, actions=actions, context=context)
        if not trust.allowed or role is None:
            # Unknown and forbidden roles are refused alike, so roles cannot be enumerated.
            raise AccessDenied(_not_authorized(caller, trust.action, args.role_arn))
        duration = args.duration_seconds
        # Role chaining is a role session assuming a role; a user's own session is no role's.
        if caller.role_session is not None and duration > CHAINED_SESSION_LIMIT:
            raise ValidationError(
                "The requested DurationSeconds exceeds the 1 hour session limit "
                "for roles assumed by role chaining."
            )
        within_max_session_duration(role, duration)
        packed = packed_size(session_policy, args.policy, carried.tags)
        issued = self._credentials.issue(
            account_id=snapshot.account_id,
            role_arn=role.arn,
            role_name=role.name,
            session_name=args.role_session_name,
            duration_seconds=duration,
            now=call.now,
            session_policy=args.policy or None,
            policy_arns=args.policy_arns,
            tags=carried.tags,
            transitive_tag_keys=carried.transitive_tag_keys,
            source_identity=carried.source_identity,
            mfa_authenticated=mfa_at is not None,
            mfa_at=mfa_at,
            chain=carried.chain,
            source_key_id=carried.source_key_id,
        )
        claims = issued.claims
        return RoleSession(
            credentials=issued,
            assumed_role_arn=claims.assumed_role_arn,
            assumed_role_id=claims.assumed_role_id,
            packed_policy_size=packed,
            source_identity=claims.source_identity,
        )

    async def get_session_token(
        self, params: QueryParams, caller: Caller, call: CallRecord
    ) -> IssuedCredentials:
        """``GetSessionToken``: an IAM user's own session, signed for with the user's long-term key.

        As on AWS: no permission is needed (its purpose is MFA); a session of any kind is refused
        (``AccessDenied``); with ``SerialNumber`` and ``TokenCode`` the user's MFA device is checked
        and the session carries ``aws:MultiFactorAuthPresent``. The session is the user (its ARN and
        id, its permissions); without MFA it may not call the IAM API, and of STS only
        ``AssumeRole`` and ``GetCallerIdentity`` (:func:`gateway.iam.caller.refused_call`).
        """
        args = GetSessionTokenParams.parse(params)
        call.request_parameters = {
            "durationSeconds": args.duration_seconds,
            "serialNumber": args.serial_number,
        }
        name = self._long_term_user(caller, "GetSessionToken")
        mfa_at = await self._mfa(caller, args.serial_number, args.token_code, call.now)
        return self._credentials.issue_user_session(
            principal=USER_SESSION,
            user_arn=caller.arn,
            user_id=caller.user_id,
            source_key_id=caller.access_key_id,
            name=name,
            duration_seconds=args.duration_seconds,
            now=call.now,
            mfa_at=mfa_at,
        )

    def get_federation_token(self, params: QueryParams, caller: Caller, call: CallRecord) -> FederatedUser:
        """``GetFederationToken``: a federated user (``federated-user/NAME``) for an IAM user.

        Signed with the user's long-term key (a session is refused, ``AccessDenied``) and allowed
        ``sts:GetFederationToken`` on the federated user's ARN (and ``sts:TagSession`` when tags are
        passed) by the user's policies. The session's permissions are the intersection of the
        user's policies and the session policies passed (``Policy``, ``PolicyArns``): with none
        passed, nothing is allowed. It may call no IAM action and, of STS, only
        ``GetCallerIdentity``.
        """
        args = GetFederationTokenParams.parse(params)
        snapshot = self._catalog.snapshot
        call.request_parameters = {
            "name": args.name,
            "durationSeconds": args.duration_seconds,
            "policyArns": list(args.policy_arns) or None,
            "policy": args.policy,
            "tags": [{"key": k, "value": v} for k, v in args.tags.items()] or None,
        }
        self._long_term_user(caller, "GetFederationToken")
        session_policy = session_policy_of(snapshot, args.policy, args.policy_arns)
        partition = caller.arn.split(":", 2)[1]
        arn = f"arn:{partition}:sts::{caller.account_id}:federated-user/{args.name}"
        context: dict[str, ContextValue] = {}
        if args.tags:
            context["aws:TagKeys"] = list(args.tags)
            context.update((f"aws:RequestTag/{k}", v) for k, v in args.tags.items())
        self._authorize(caller, "sts:GetFederationToken", call, resource=arn, extra=context)
        if args.tags:
            self._authorize(caller, "sts:TagSession", call, resource=arn, extra=context)
        packed = packed_size(session_policy, args.policy, args.tags)
        issued = self._credentials.issue_user_session(
            principal=FEDERATED_USER,
            user_arn=caller.arn,
            user_id=caller.user_id,
            source_key_id=caller.access_key_id,
            name=args.name,
            duration_seconds=args.duration_seconds,
            now=call.now,
            session_policy=args.policy or None,
            policy_arns=args.policy_arns,
            tags=args.tags,
        )
        claims = issued.claims
        return FederatedUser(
            credentials=issued,
            federated_user_id=claims.principal_id,
            arn=claims.principal_arn,
            packed_policy_size=packed,
        )

    async def _mfa(
        self, caller: Caller, serial_number: str | None, token_code: str | None, now: float
    ) -> float | None:
        """When the MFA of a request's ``SerialNumber`` and ``TokenCode`` took place (``None``:
        neither was passed); ``AccessDenied`` when the code is not accepted."""
        if serial_number is None and token_code is None:
            return None
        if serial_number is None:
            raise ValidationError("TokenCode needs SerialNumber")
        return await self._verify_mfa(caller, serial_number, token_code, now)

    @staticmethod
    def _long_term_user(caller: Caller, action: str) -> str:
        """The name of ``caller``, an IAM user signing with its long-term key; ``AccessDenied``
        for a session of any kind, as AWS answers."""
        if not caller.long_term or caller.user_name is None:
            raise AccessDenied(f"Cannot call {action} with session credentials")
        return caller.user_name

    def decode_authorization_message(self, params: QueryParams, caller: Caller, call: CallRecord) -> str:
        """``DecodeAuthorizationMessage``: the explanation an AccessDenied carried, as AWS's
        ``DecodedMessage`` JSON, for a caller allowed ``sts:DecodeAuthorizationMessage``."""
        encoded = params.require("EncodedMessage")
        if not 1 <= len(encoded) <= 10240:
            raise ValidationError(
                "1 validation error detected: Value at 'encodedMessage' failed to satisfy constraint: "
                "Member must have length between 1 and 10240"
            )
        action = "sts:DecodeAuthorizationMessage"
        self._authorize(caller, action, call)
        return self._messages.decode(encoded)

    def get_access_key_info(self, params: QueryParams, caller: Caller, call: CallRecord) -> str:
        """``GetAccessKeyInfo``: the account an access key id belongs to.

        Like AWS, the answer says nothing of the key's state (active, expired, deleted): it is read
        from the key id's shape, with no lookup. Every ``ASIA`` (session) or ``AKIA`` (long-term) key
        id of the shape fedgate issues belongs to this gateway's account; any other well-formed key
        id is one fedgate never issued, answered InvalidParameterValue. The caller needs
        ``sts:GetAccessKeyInfo``.
        """
        key_id = params.require("AccessKeyId")
        if not 16 <= len(key_id) <= 128 or not _KEY_ID_CHARS.match(key_id):
            raise ValidationError(
                "1 validation error detected: Value at 'accessKeyId' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: [\\w]* and have length between 16 and 128"
            )
        action = "sts:GetAccessKeyInfo"
        self._authorize(caller, action, call)
        if not _ISSUED_KEY_ID.match(key_id):
            raise InvalidParameterValue(f"The access key ID {key_id[:128]} was not issued by this service.")
        return self._catalog.snapshot.account_id

    def _context(
        self, snapshot: CatalogSnapshot, caller: Caller, call: CallRecord
    ) -> dict[str, ContextValue]:
        """The global condition keys of ``caller``'s request, as the proxy and the IAM API see them."""
        return permissions.session_context(snapshot, caller, call.transport, region=self._region)

    def _authorize(
        self,
        caller: Caller,
        action: str,
        call: CallRecord,
        *,
        resource: str = "*",
        extra: dict[str, ContextValue] | None = None,
    ) -> None:
        """``caller``'s own policies must allow ``action`` on ``resource`` (with the ``extra``
        condition keys of the request); AccessDenied otherwise."""
        snapshot = self._catalog.snapshot
        context = self._context(snapshot, caller, call)
        check = Check(action, resource, extra or {})
        if not permissions.decide(snapshot, caller, [check], context).allowed:
            raise AccessDenied(_not_authorized(caller, action, resource))

    def get_caller_identity(self, caller: Caller) -> CallerIdentity:
        """``GetCallerIdentity`` for a verified caller (a session or an IAM user): always allowed,
        as in AWS."""
        return CallerIdentity(arn=caller.arn, user_id=caller.user_id, account=caller.account_id)

    def _oidc_provider_for(self, token: str) -> IdentityProvider:
        issuer = _peek_issuer(token)
        provider = self._oidc_by_issuer.get(_issuer_key(issuer))
        if provider is None:
            # Naming the issuer helps operators; it is not secret and not the token.
            raise InvalidIdentityToken(f"No OpenIDConnect provider found in your account for {issuer[:256]}")
        return provider


def _not_authorized(caller: Caller, action: str, resource: str) -> str:
    """STS's AccessDenied message, as AWS words it."""
    return f"User: {caller.arn} is not authorized to perform: {action} on resource: {resource}"


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
        # Unauthenticated: nesting is bounded before the parser sees it.
        payload = bounded_loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidIdentityToken("The web identity token could not be decoded") from None
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    if not isinstance(issuer, str) or not issuer:
        raise InvalidIdentityToken("The web identity token has no issuer")
    return issuer
