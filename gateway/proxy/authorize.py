"""Authentication and authorization of a proxied request, free of any web framework.

:meth:`ProxyAuthorizer.authenticate` verifies the SigV4 signature (scope pinned to the upstream's
service and region) with the secret unsealed from the session token, and returns the session and
the :class:`~gateway.sigv4.Verified` result (the payload hash still to be checked as the body
streams, or the ``aws-chunked`` context). :meth:`ProxyAuthorizer.decide` evaluates every check of
a mapping against the role's policies and the session's policies; the role's
:class:`~gateway.policy.PolicySet` is compiled once per (role, session policy, policy ARNs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import final

from gateway.authn import Authenticated, authenticate, open_session
from gateway.config import GatewayConfig, RoleSettings
from gateway.credentials import CredentialService, SessionClaims
from gateway.policy import Decision, Policy, PolicySet, Request, parse_policy
from gateway.policy.cache import LRU
from gateway.proxy.mapping import Check
from gateway.sigv4 import HttpRequest, SigningKeyCache

__all__ = ["Authenticated", "ProxyAuthorizer"]

_POLICY_SETS = 4096


@final
@final
class ProxyAuthorizer:
    """Verifies signatures and decides checks for every upstream; one per application."""

    def __init__(self, config: GatewayConfig, credentials: CredentialService, keys: SigningKeyCache) -> None:
        self._credentials = credentials
        self._keys = keys
        self._roles: dict[str, RoleSettings] = {config.role_arn(r): r for r in config.roles}
        self._managed: dict[str, Policy] = {}
        self._managed_session: dict[str, Policy] = {}
        for p in config.policies:
            arn = f"arn:aws:iam::{config.account_id}:policy{p.path}{p.name}"
            self._managed[p.name] = parse_policy(p.document, kind="identity", name=p.name)
            self._managed_session[arn] = parse_policy(p.document, kind="session", name=arn)
        self._identity: dict[str, tuple[Policy, ...]] = {
            arn: tuple(
                [
                    parse_policy(i.document, kind="identity", name=f"{role.name}/{i.name}")
                    for i in role.policies
                ]
                + [self._managed[name] for name in role.managed_policies]
            )
            for arn, role in self._roles.items()
        }
        self._sets: LRU[tuple[str, str | None, tuple[str, ...]], PolicySet] = LRU(_POLICY_SETS)

    async def authenticate(
        self, request: HttpRequest, *, now: float, region: str, service: str, normalize_path: bool
    ) -> Authenticated:
        """Verify ``request``'s signature and session (see :func:`gateway.authn.authenticate`)."""
        return await authenticate(
            request,
            self._credentials,
            now=now,
            region=region,
            service=service,
            keys=self._keys,
            normalize_path=normalize_path,
        )

    async def precheck(self, request: HttpRequest, *, now: float) -> None:
        """Signature present and well formed, session valid: run before buffering a body."""
        await open_session(request, self._credentials, now=now)

    def role_tags(self, claims: SessionClaims) -> Mapping[str, str]:
        """The tags of the session's role, as configured now (empty for a role no longer configured)."""
        role = self._roles.get(claims.role_arn)
        return role.tags if role is not None else {}

    def policy_set(self, claims: SessionClaims) -> PolicySet:
        """The compiled policies governing ``claims``' session (cached)."""
        key = (claims.role_arn, claims.session_policy, claims.policy_arns)
        found = self._sets.get(key)
        if found is not None:
            return found
        # A role removed from the configuration keeps no permissions: its sessions are denied.
        identity = self._identity.get(claims.role_arn, ())
        session: list[Policy] | None = None
        if claims.session_policy is not None or claims.policy_arns:
            session = []
            if claims.session_policy is not None:
                session.append(parse_policy(claims.session_policy, kind="session", name="session-policy"))
            for arn in claims.policy_arns:
                managed = self._managed_session.get(arn)
                if managed is None:
                    session = []  # a session policy that vanished: allow nothing rather than more
                    break
                session.append(managed)
        found = PolicySet(identity=identity, session=session)
        self._sets.put(key, found)
        return found

    def decide(
        self, claims: SessionClaims, checks: Sequence[Check], context: Mapping[str, str | Sequence[str]]
    ) -> Decision:
        """Every check must be allowed: the first denial, else the last allowance, is returned."""
        policies = self.policy_set(claims)
        principal = {"AWS": [claims.assumed_role_arn, claims.role_arn]}
        decision: Decision | None = None
        for check in checks:
            request = Request(
                action=check.action,
                resource=check.resource,
                principal=principal,
                context={**context, **check.context},
            )
            decision = policies.decide(request)
            if not decision.allowed:
                return decision
        if decision is None:
            raise ValueError("a mapping produced no checks")
        return decision
