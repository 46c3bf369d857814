"""Every public module says exactly what it offers: ``__all__`` lists every public class and function
it defines, and nothing that is not there.

Two kinds of function are registered rather than imported, and are left out: hook implementations
(marked ``@hookimpl``) and request handlers (added to the module's own route table).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest
from aiohttp import web

PACKAGES = ["gateway", "fedgate_oidc", "fedgate_saml", "fedgate_web", "fedgate_devissuer"]


def _public_modules() -> list[str]:
    names = []
    for top in PACKAGES:
        package = importlib.import_module(top)
        names.append(top)
        names += [m.name for m in pkgutil.walk_packages(package.__path__, f"{top}.")]
    # Alembic's migration scripts run when imported (Alembic loads them itself): not API modules.
    return sorted(
        n
        for n in names
        if not n.rsplit(".", 1)[-1].startswith("_") and not n.startswith("gateway.db.migrations")
    )


def _registered(module: ModuleType) -> set[int]:
    """Ids of the module's hook implementations and route handlers."""
    found = {id(o) for o in vars(module).values() if hasattr(o, "fedgate_impl")}
    for table in (o for o in vars(module).values() if isinstance(o, web.RouteTableDef)):
        for route in table:
            if isinstance(route, web.RouteDef):
                found.add(id(route.handler))
                found.add(id(getattr(route.handler, "__wrapped__", None)))
    return found


@pytest.mark.parametrize("name", _public_modules())
def test_all_is_exact(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(exported) == len(set(exported)), f"{name}: __all__ repeats a name"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}: __all__ names what the module does not have: {missing}"
    registered = _registered(module)
    defined = {
        n
        for n, o in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(o) or inspect.isfunction(o))
        and o.__module__ == name
        and id(o) not in registered
    }
    assert defined <= set(exported), f"{name}: public but not in __all__: {sorted(defined - set(exported))}"
    stale = {n for n in exported if id(getattr(module, n)) in registered}
    assert not stale, f"{name}: registered handlers need not be exported: {sorted(stale)}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_ships_its_types(package: str) -> None:
    """PEP 561: each package has a py.typed marker and package-data puts it in the wheel."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).parent.parent
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in data["tool"]["setuptools"]["package-data"].get(package, [])
    module = importlib.import_module(package)
    assert module.__file__ is not None and (Path(module.__file__).parent / "py.typed").is_file()
