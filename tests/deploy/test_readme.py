"""deploy/README.md explains every file in deploy/, and the main README leads there."""

from __future__ import annotations

import subprocess

from tests.deploy.manifests import DEPLOY, ROOT


def test_every_deploy_file_is_explained() -> None:
    readme = (DEPLOY / "README.md").read_text()
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "deploy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    files = [
        path.removeprefix("deploy/") for path in tracked if not path.endswith(("README.md", ".gitignore"))
    ]
    assert "compose.yaml" in files and "kubernetes/deployment.yaml" in files
    for name in files:
        assert f"`{name}`" in readme, f"deploy/README.md does not explain {name}"


def test_the_main_readme_links_it_under_deploying() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deploying", 1)[1].split("\n## ", 1)[0]
    assert "(deploy/README.md)" in section
    for command in ("docker compose -f deploy/compose.yaml up", "kubectl apply -k deploy/kubernetes"):
        assert command in section
        assert command in (DEPLOY / "README.md").read_text()
