"""Render docs/iam-actions.md from the action registry itself, so the list cannot drift.

Every registered action's summary, parameters, the ``iam:`` action and resource it is authorized
on, and the errors it answers come from its :class:`~gateway.iam.api.IamAction`; a test compares
the file with :func:`render_actions`. Regenerate with ``python -m gateway.iam.api.doc >
docs/iam-actions.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from gateway.errors import AccessDenied, ServiceError
from gateway.iam.api.action import IamAction
from gateway.iam.api.registry import FAMILIES

__all__ = ["SIMULATION_ACTIONS", "render_actions"]

#: The policy simulator's actions (:mod:`gateway.web.iam`), documented by hand below.
SIMULATION_ACTIONS = ("SimulateCustomPolicy", "SimulatePrincipalPolicy")

_HEADER = """# IAM actions

fedgate answers the IAM Query API (`Version=2010-05-08`) on the same endpoint as STS: point a
client's IAM endpoint at the gateway (`aws --endpoint-url URL iam ...`, boto3's
`endpoint_url`, the Terraform AWS provider's `endpoints { iam = URL }`). Requests are signed with
SigV4 for the service `iam`. This file is generated from the action registry
(`python -m gateway.iam.api.doc > docs/iam-actions.md`); do not edit it by hand.

**Authorization.** Every action needs the caller's own policies to allow `iam:ACTION` on the
resource named below, decided by the same policy engine and with the same condition keys as a
request through the proxy; otherwise `AccessDenied` (403, "User: ARN is not authorized to
perform: iam:ACTION on resource: ARN") and nothing is changed. Entities are authorized on their
ARN with their path (`arn:aws:iam::ACCOUNT:user/PATH/NAME`); a name that does not exist is
authorized on `user/NAME` first, then answered `NoSuchEntity`.

**Configuration-declared entities.** Users, groups, roles and managed policies from the YAML file
are read-only through the API: changing one answers `UnmodifiableEntity` (400), creating an
entity with the name of one `EntityAlreadyExists` (409).

**Parameters** are checked as IAM checks them: a value outside its pattern or length is
`ValidationError` (400) naming the parameter (`Value at 'userName' failed to satisfy
constraint`), a parameter the action does not take is `ValidationError` too. **Lists** are paged
with `MaxItems` (1-1000, default 100) and `Marker`; a truncated answer has `IsTruncated` true and
the `Marker` of the next page. **Writes** are transactional (a failed call changes nothing) and
are audited with their parameters (`docs/audit.md`; never a secret).

| error | HTTP status | when |
| --- | --- | --- |
| `AccessDenied` | 403 | the caller's policies do not allow the action on the resource |
| `NoSuchEntity` | 404 | the named entity does not exist |
| `EntityAlreadyExists` | 409 | the name is taken (names are unique in any case) |
| `DeleteConflict` | 409 | the entity still has what must be removed first |
| `LimitExceeded` | 409 | a quota: 2 access keys per user, 10 groups per user, 50 tags, policy sizes |
| `MalformedPolicyDocument` | 400 | the policy engine refuses the document |
| `UnmodifiableEntity` | 400 | the entity is declared in the configuration file |
| `ValidationError` | 400 | a parameter is malformed, missing or unknown |
| `InvalidInput` | 400 | a well-formed value that cannot be used (a malformed ARN, duplicate tag keys) |
"""

_SIMULATION = """## Policy simulation

### SimulateCustomPolicy

Evaluate the policies in the request (`PolicyInputList`, optionally a permissions boundary and a
resource policy) against actions and resources, with IAM's `EvaluationResult` shape.

- **Authorization:** `iam:SimulateCustomPolicy` on `*`
- **Errors:** `AccessDenied`, `MalformedPolicyDocument`, `ValidationError`

### SimulatePrincipalPolicy

Evaluate the permission policies of a role (`PolicySourceArn`), plus any `PolicyInputList`.

- **Authorization:** `iam:SimulatePrincipalPolicy` on the `PolicySourceArn`
- **Errors:** `AccessDenied`, `MalformedPolicyDocument`, `NoSuchEntity`, `ValidationError`
"""


def _errors(action: IamAction) -> str:
    codes: list[type[ServiceError]] = [AccessDenied, *action.errors]
    return ", ".join(f"`{cls.code}`" for cls in sorted(set(codes), key=lambda c: c.code))


def _action(action: IamAction) -> Iterator[str]:
    yield f"### {action.name}"
    yield ""
    yield action.summary
    yield ""
    yield f"- **Authorization:** `iam:{action.name}` on {action.resource_doc}"
    yield f"- **Errors:** {_errors(action)}"
    yield ""
    if action.params:
        yield "| parameter | required | value |"
        yield "| --- | --- | --- |"
        for p in action.params:
            yield f"| `{p.name}` | {'yes' if p.required else 'no'} | {p.doc} |"
        yield ""


def render_actions() -> str:
    """The text of docs/iam-actions.md."""
    lines = [_HEADER]
    for family in FAMILIES:
        title = (
            getattr(family, "TITLE", None)
            or family.__name__.rpartition(".")[2].replace("_", " ").capitalize()
        )
        lines.append(f"## {title}")
        lines.append("")
        for action in family.ACTIONS:
            lines.extend(_action(action))
    lines.append(_SIMULATION)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_actions())
