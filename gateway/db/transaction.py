"""One transaction on the IAM database and the repositories it offers.

Obtained from :meth:`IamDatabase.write` (serialized with every other writer; committed, with the
revision bumped, when the block ends normally, rolled back entirely when it raises) or
:meth:`IamDatabase.read` (a consistent, read-only view).
"""

from __future__ import annotations

from typing import final

from gateway.db.repos.base import TxContext
from gateway.db.repos.policies import AttachmentRepo, InlinePolicyRepo, ManagedPolicyRepo
from gateway.db.repos.principals import GroupRepo, InstanceProfileRepo, RoleRepo, UserRepo
from gateway.db.repos.providers import OidcProviderRepo, SamlProviderRepo
from gateway.db.repos.revocations import RevocationRepo
from gateway.db.repos.secrets import AccessKeyRepo, MfaDeviceRepo

__all__ = ["Transaction"]


@final
class Transaction:
    """The repositories of one transaction.

    Attributes:
        users, groups, roles, instance_profiles: named entities (and membership, profile roles).
        policies: managed policies and their versions.
        attachments, inline_policies: policies held by users, groups and roles.
        access_keys, mfa_devices: entities with secrets sealed at rest.
        oidc_providers, saml_providers: identity providers.
        revocations: session revocation cutoffs.
    """

    __slots__ = (
        "_ctx",
        "access_keys",
        "attachments",
        "groups",
        "inline_policies",
        "instance_profiles",
        "mfa_devices",
        "oidc_providers",
        "policies",
        "revocations",
        "roles",
        "saml_providers",
        "users",
    )

    def __init__(self, ctx: TxContext) -> None:
        self._ctx = ctx
        self.users = UserRepo(ctx)
        self.groups = GroupRepo(ctx)
        self.roles = RoleRepo(ctx)
        self.instance_profiles = InstanceProfileRepo(ctx)
        self.policies = ManagedPolicyRepo(ctx)
        self.attachments = AttachmentRepo(ctx)
        self.inline_policies = InlinePolicyRepo(ctx)
        self.access_keys = AccessKeyRepo(ctx)
        self.mfa_devices = MfaDeviceRepo(ctx)
        self.oidc_providers = OidcProviderRepo(ctx)
        self.saml_providers = SamlProviderRepo(ctx)
        self.revocations = RevocationRepo(ctx)

    def __repr__(self) -> str:
        kind = "write" if self._ctx.writable else "read"
        return f"Transaction({kind}, revision={self._ctx.revision})"

    @property
    def revision(self) -> int:
        """In a write transaction the revision it commits as (if it changes anything); in a read
        transaction the revision it sees."""
        return self._ctx.revision

    @property
    def changed(self) -> bool:
        """Whether anything was written (only then is the revision bumped)."""
        return self._ctx.dirty
