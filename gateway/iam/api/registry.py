"""Every IAM action fedgate serves, by name: the union of the action families.

A family is a module with an ``ACTIONS`` tuple of :class:`~gateway.iam.api.action.IamAction`
(and a ``TITLE`` for its section of the documentation; the module's name otherwise); adding one is
adding its module to :data:`FAMILIES`. ``docs/iam-actions.md`` is generated from
this table (:mod:`gateway.iam.api.doc`), and a test keeps it current.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType, ModuleType

from gateway.iam.api import (
    access_keys,
    attachments,
    details,
    groups,
    inline,
    instance_profiles,
    mfa,
    oidc_providers,
    policies,
    role_policies,
    roles,
    saml_providers,
    users,
)
from gateway.iam.api.action import IamAction

__all__ = ["ACTIONS", "FAMILIES"]

#: The action families, in the order the documentation lists them.
FAMILIES: tuple[ModuleType, ...] = (
    users,
    access_keys,
    groups,
    inline,
    policies,
    attachments,
    roles,
    role_policies,
    instance_profiles,
    oidc_providers,
    saml_providers,
    mfa,
    details,
)


def _collect() -> Mapping[str, IamAction]:
    found: dict[str, IamAction] = {}
    for family in FAMILIES:
        for action in family.ACTIONS:
            if action.name in found:
                raise ValueError(f"IAM action {action.name} is registered twice")
            found[action.name] = action
    return MappingProxyType(found)


#: Actions by name.
ACTIONS: Mapping[str, IamAction] = _collect()
