"""docs/iam-actions.md lists exactly the IAM actions the Query endpoint serves, and is current."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.iam import API_VERSION
from gateway.iam.api import ACTIONS
from gateway.iam.api.doc import SIMULATION_ACTIONS, render_actions
from gateway.web.iam import ACTIONS as SERVED

DOC = Path(__file__).parents[3] / "docs" / "iam-actions.md"


def test_the_doc_is_generated_from_the_registry() -> None:
    assert DOC.read_text(encoding="utf-8") == render_actions(), (
        "docs/iam-actions.md is stale: run `python -m gateway.iam.api.doc > docs/iam-actions.md`"
    )


def test_the_doc_lists_exactly_the_served_actions() -> None:
    listed = re.findall(r"^### (\w+)$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert len(listed) == len(set(listed))
    served = {name for version, name in SERVED if version == API_VERSION}
    assert set(listed) == served == set(ACTIONS) | set(SIMULATION_ACTIONS)


def test_every_action_documents_its_parameters_and_resource() -> None:
    for action in ACTIONS.values():
        assert action.summary and action.resource_doc, action.name
        assert all(p.doc for p in action.params), action.name
