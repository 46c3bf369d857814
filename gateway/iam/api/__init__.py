"""The IAM API's actions over the IAM database, framework-free.

:mod:`.action` says what an action is and runs one (:func:`execute`: validate, open a
transaction, resolve the resource, authorize ``iam:ACTION`` on it, refuse changes to what the
configuration declares, handle); :mod:`.params` and :mod:`.paging` are the parameter types and
pagination every action shares; :mod:`.entities` and :mod:`.boundary` the resources and shapes.
The action families (:mod:`.users`...) are collected in :mod:`.registry`. The aiohttp adapter is
:mod:`gateway.web.iam`.
"""

from __future__ import annotations

from gateway.iam.api.action import ActionContext, IamAction, Principal, Resource, execute
from gateway.iam.api.registry import ACTIONS, FAMILIES

__all__ = ["ACTIONS", "FAMILIES", "ActionContext", "IamAction", "Principal", "Resource", "execute"]
