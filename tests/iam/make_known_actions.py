"""Generate gateway/iam/known_actions.py from the installed botocore and cfn-lint (test extras).

Run from the repository root: ``.venv/bin/python -m tests.iam.make_known_actions``.
tests/iam/test_findings.py fails when the checked-in module differs from this output.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "gateway" / "iam" / "known_actions.py"
#: Services whose operation names are their IAM action names; botocore gives their spelling.
FROM_OPERATIONS = ("sts", "iam")
#: Services checked against the Service Authorization Reference alone.
FROM_REFERENCE_ONLY = ("s3",)


def reference() -> dict[str, set[str]]:
    """Lower-cased action names per service from AWS's Service Authorization Reference, as cfn-lint
    ships it (cfnlint/data/AdditionalSpecs/Policies.json, from servicereference.us-east-1.amazonaws.com)."""
    import cfnlint.data.AdditionalSpecs as specs

    data = json.loads((Path(specs.__file__).parent / "Policies.json").read_text(encoding="utf-8"))
    return {svc: set(data[svc]["Actions"]) for svc in (*FROM_OPERATIONS, *FROM_REFERENCE_ONLY)}


def render() -> str:
    import botocore.session

    session = botocore.session.get_session()
    ref = reference()
    services: dict[str, list[str]] = {}
    for svc in FROM_OPERATIONS:
        operations = list(session.get_service_model(svc).operation_names)
        spelled = {op.lower(): op for op in operations}
        names = {spelled.get(name, name) for name in ref[svc]} | set(operations)
        services[svc] = sorted(names, key=str.lower)
    for svc in FROM_REFERENCE_ONLY:
        services[svc] = sorted(ref[svc])
    body = "".join(
        f'    "{svc}": frozenset(\n        {{\n'
        + "".join(f'            "{name}",\n' for name in names)
        + "        }\n    ),\n"
        for svc, names in services.items()
    )
    return f'''"""IAM action names of the services whose policies fedgate checks (generated; do not edit).

Sources, as installed when this file was generated:

- ``sts`` and ``iam``: the operation names of botocore {version("botocore")}'s service models (their
  IAM action names, in their spelling), plus the IAM-only actions that are no API operation
  (``sts:TagSession``, ``iam:PassRole``, ...) from AWS's Service Authorization Reference;
- ``s3``: the Service Authorization Reference alone: S3's IAM action names are not its operation
  names (``s3:ListBucket`` authorizes ``ListObjectsV2``), so botocore cannot give them. Names the
  reference spells only in lower case are kept so (actions are case-insensitive).

The reference is read from cfn-lint {version("cfn-lint")}'s ``cfnlint/data/AdditionalSpecs/Policies.json``,
which cfn-lint's maintainers download from https://servicereference.us-east-1.amazonaws.com.
Regenerate with ``python -m tests.iam.make_known_actions``; a test keeps this file current.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ACTIONS"]

#: Service prefix -> every action name it has.
ACTIONS: Mapping[str, frozenset[str]] = {{
{body}}}
'''


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {TARGET.relative_to(ROOT)}\n")
