"""The shape of the code: import cycles, which rooms may import which, and what domain code avoids.

Imports are read with ``ast`` from the source of ``gateway`` and the first-party plugins, including
imports inside functions (a lazy import is still a dependency) and, separately, those under
``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = {"gateway": ROOT / "gateway"} | {
    p.name: p for p in sorted((ROOT / "plugins").iterdir()) if (p / "__init__.py").exists()
}
#: The one cycle allowed: a type-only back-reference inside the policy engine.
ALLOWED_TYPE_CYCLES = [{"gateway.policy.compiled", "gateway.policy.model"}]
#: Domain code: no web framework, directly or through what it imports.
DOMAIN = [
    "gateway.arns",
    "gateway.calls",
    "gateway.capabilities",
    "gateway.context",
    "gateway.credentials",
    "gateway.db",
    "gateway.dialects",
    "gateway.audit.events",
    "gateway.iam",
    "gateway.identity",
    "gateway.jsonlimits",
    "gateway.policy",
    "gateway.sigv4",
    "gateway.sts",
]
#: What first-party plugins may import from the core: the plugin API, and for the first-party
#: sign-in the modules its docstring names.
PLUGIN_API = {"gateway.plugin", "gateway.errors"}
SIGN_IN_EXTRAS = {
    "gateway.audit",
    "gateway.context",
    "gateway.audit.events",
    "gateway.iam.catalog",
    "gateway.iam.trust",
    "gateway.sts.service",
    "gateway.web.request",
}


@dataclass
class Module:
    name: str
    runtime: set[str] = field(default_factory=set)
    typing: set[str] = field(default_factory=set)
    external: set[str] = field(default_factory=set)  # third-party modules imported at run time


def _module_names() -> dict[str, Path]:
    found = {}
    for top, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = [top, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, in_typing: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.body:
                yield from _imports_of(child, True)
            for child in node.orelse:
                yield from _imports_of(child, in_typing)
        else:
            yield from _imports_of(node, in_typing)


def _imports_of(node: ast.AST, in_typing: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node, in_typing
    else:
        yield from _imports(node, in_typing)


@cache
def graph() -> dict[str, Module]:
    names = _module_names()
    modules = {}
    for name, path in names.items():
        module = Module(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node, in_typing in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                # "from pkg import mod" depends on the module; "from pkg import name" on pkg.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in names else base for a in node.names]
            for target in targets:
                found = target
                while found and found not in names:
                    found = found.rpartition(".")[0]
                if not found:
                    if not in_typing:  # a type-only import loads nothing at run time
                        module.external.add(target.partition(".")[0])
                elif found != name:
                    (module.typing if in_typing else module.runtime).add(found)
        modules[name] = module
    return modules


def _cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_module_graph_is_read() -> None:
    modules = graph()
    assert "gateway.app" in modules and "fedgate_web.runtime" in modules
    assert "gateway.startup" in modules["gateway.app"].runtime
    assert "gateway.startup" in modules["gateway.cli"].runtime  # imported inside a function


def test_no_import_cycle_at_run_time() -> None:
    assert _cycles({n: m.runtime for n, m in graph().items()}) == []


def test_no_import_cycle_but_the_policy_engines_type_only_back_reference() -> None:
    cycles = _cycles({n: m.runtime | m.typing for n, m in graph().items()})
    assert cycles == ALLOWED_TYPE_CYCLES


def test_web_adapters_do_not_import_the_proxy() -> None:
    for name, module in graph().items():
        if name.startswith("gateway.web"):
            assert not {d for d in module.runtime | module.typing if d.startswith("gateway.proxy")}, name


def _closure(name: str) -> Iterator[Module]:
    modules, seen, todo = graph(), set(), [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        yield modules[current]
        todo.extend(modules[current].runtime)


@pytest.mark.parametrize("root", DOMAIN)
def test_domain_code_imports_no_web_framework(root: str) -> None:
    for name in [n for n in graph() if n == root or n.startswith(root + ".")]:
        for module in _closure(name):
            assert "aiohttp" not in module.external, f"{name} reaches aiohttp through {module.name}"


@pytest.mark.parametrize("plugin", sorted(p for p in PACKAGES if p != "gateway"))
def test_first_party_plugins_use_the_plugin_api(plugin: str) -> None:
    allowed = PLUGIN_API | (SIGN_IN_EXTRAS if plugin == "fedgate_web" else set())
    for name, module in graph().items():
        if name == plugin or name.startswith(plugin + "."):
            core = {d for d in module.runtime | module.typing if d.split(".")[0] == "gateway"}
            assert core <= allowed, f"{name} imports {sorted(core - allowed)}; add it to gateway.plugin"


def test_every_ruff_ignore_says_why() -> None:
    """A ``# noqa`` carries its reason after the codes, or in the comment block right above that
    names the rule; every rule pyproject.toml ignores has a comment beside it."""
    import re
    import tomllib

    noqa = re.compile(r"#\s*noqa:\s*([A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)(.*)$")
    missing = []
    for path in sorted(p for d in ("gateway", "plugins", "tests", "bench") for p in (ROOT / d).rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            found = noqa.search(line)
            if found is None:
                continue
            codes, rest = found.group(1).replace(" ", "").split(","), found.group(2).strip(" -#")
            above, back = "", number - 1
            while back >= 0 and lines[back].strip().startswith("#"):  # the comment block right above
                above, back = lines[back] + above, back - 1
            if not rest and not any(code in above for code in codes):
                missing.append(f"{path.relative_to(ROOT)}:{number + 1}")
    assert not missing, f"say why beside these noqa comments: {missing}"
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    lint = tomllib.loads(text)["tool"]["ruff"]["lint"]
    rules = {*lint.get("ignore", []), *(r for rs in lint.get("per-file-ignores", {}).values() for r in rs)}
    for rule in rules:
        assert re.search(rf'"{rule}",?\s*\]?\s*#', text), f"pyproject.toml: say why {rule} is ignored"
