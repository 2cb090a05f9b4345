"""The shape of ``dashboard/``'s imports: no circles, and no helper reaching up into a blueprint.

Every ``import`` and ``from ... import`` in every module is read with ``ast``, at module
level and inside functions alike (a deferred import is still a dependency; it only hides
a circle until the wrong module is imported first), relative forms included.

Rules:
- No circle: no module may import, directly or through others, a module that imports it.
- The blueprint packages (``BLUEPRINTS``) sit at the top: a module may import from its
  own blueprint package, never from another one, and nothing below the blueprints may
  import one. The one allowed top is the app factory, ``create_app`` in
  ``dashboard/__init__.py``, which imports the blueprints to register them.

Importing ``dashboard.x.y`` also runs ``dashboard/x/__init__.py`` first; that is Python's
own order, not a dependency, so only the module named is counted.
"""
from __future__ import annotations

import ast
import graphlib
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "dashboard"
BLUEPRINTS = ("dashboard.auth", "dashboard.visitors", "dashboard.admin", "dashboard.account", "dashboard.helpdesk", "dashboard.embed")
APP_FACTORY = ("dashboard", "create_app")  # (module, function) allowed to import every blueprint


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    function: str | None  # the function holding the import; None at module level
    line: int

    def __str__(self) -> str:
        where = f" (in {self.function})" if self.function else ""
        return f"{self.importer}:{self.line}{where} imports {self.imported}"


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name (a package by its own)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest module that ``name`` lies in (``dashboard.a.b.attr`` -> ``dashboard.a.b``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _imports_in(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, str | None]]:
    """Each import statement with the name of the function around it (None at module level)."""
    found = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, function))
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            visit(child, inner)

    visit(tree, None)
    return found


def import_edges(modules: dict[str, Path]) -> list[Edge]:
    edges = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node, function in _imports_in(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    # ``from . import x`` in a package's __init__ is relative to the package itself.
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    package = package[: len(package) - (node.level - 1)]
                    base = ".".join(package + ([node.module] if node.module else []))
                for alias in node.names:
                    # ``from pkg import mod`` depends on the module; ``from mod import name`` on mod.
                    submodule = f"{base}.{alias.name}"
                    targets.append(submodule if submodule in modules else base)
            for target in targets:
                imported = _known(target, modules)
                if imported is not None and imported != name:
                    edges.append(Edge(name, imported, function, node.lineno))
                elif imported == name and target == name:
                    edges.append(Edge(name, imported, function, node.lineno))  # a module importing itself
    return edges


def find_cycle(edges: list[Edge]) -> list[str] | None:
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, set()).add(edge.imported)
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        return list(error.args[1])
    return None


def blueprint_of(module: str) -> str | None:
    return next((bp for bp in BLUEPRINTS if module == bp or module.startswith(bp + ".")), None)


def upward_imports(edges: list[Edge]) -> list[Edge]:
    """Imports of a blueprint package from outside it (the app factory excepted)."""
    return [
        edge
        for edge in edges
        if blueprint_of(edge.imported) is not None
        and blueprint_of(edge.imported) != blueprint_of(edge.importer)
        and (edge.importer, edge.function) != APP_FACTORY
    ]


@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    return import_edges(module_names(PACKAGE_DIR))


def test_no_module_imports_one_that_imports_it_back(edges):
    cycle = find_cycle(edges)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_no_blueprint_is_imported_from_outside_it(edges):
    assert [str(edge) for edge in upward_imports(edges)] == []


def test_the_walk_sees_deferred_and_relative_imports(edges):
    """The checks above are only as good as the walk: it must see what it claims to."""
    seen = {(edge.importer, edge.imported, edge.function) for edge in edges}
    # Deferred, inside the app factory (the one allowed top).
    assert ("dashboard", "dashboard.visitors", "create_app") in seen
    # Relative, at module level.
    assert ("dashboard.postmetric.client", "dashboard.postmetric.budget", None) in seen
    # ``from dashboard import audit`` is a dependency on the module, not on the package.
    assert any(importer == "dashboard.visitors.view" and imported == "dashboard.audit" for importer, imported, _ in seen)


def _write(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for relative, source in files.items():
        path = root / "dashboard" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return module_names(root / "dashboard")


@pytest.mark.parametrize(
    "files",
    [
        # A deferred import closing a circle (how markup and rendering once worked).
        {"__init__.py": "", "a.py": "from dashboard.b import x\n", "b.py": "def x():\n    from dashboard import a\n"},
        # Relative forms, in a package's __init__ and in a submodule.
        {"__init__.py": "", "p/__init__.py": "from . import m\n", "p/m.py": "from .. import p\n"},
        {"__init__.py": "", "p/__init__.py": "from .m import bp\n", "p/m.py": "from dashboard.p import other\n"},
    ],
)
def test_a_circle_is_found(tmp_path, files):
    assert find_cycle(import_edges(_write(tmp_path, files))) is not None


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # A helper reaching up into a blueprint, even inside a function.
        ({"__init__.py": "", "rendering.py": "def f():\n    from dashboard.visitors.state import V\n",
          "visitors/__init__.py": "", "visitors/state.py": ""}, ["dashboard.rendering"]),
        # One blueprint importing another.
        ({"__init__.py": "", "auth/__init__.py": "", "auth/routes.py": "from dashboard.account import forms\n",
          "account/__init__.py": "", "account/forms.py": ""}, ["dashboard.auth.routes"]),
        # The package itself outside create_app.
        ({"__init__.py": "from dashboard import admin\n", "admin/__init__.py": ""}, ["dashboard"]),
        # Allowed: create_app registering a blueprint, and a blueprint importing its own package.
        ({"__init__.py": "def create_app():\n    from dashboard import admin\n", "admin/__init__.py": "from . import agents\n",
          "admin/agents.py": "from dashboard.admin.forms import F\n", "admin/forms.py": ""}, []),
    ],
)
def test_an_upward_import_is_found(tmp_path, files, expected):
    found = upward_imports(import_edges(_write(tmp_path, files)))
    assert [edge.importer for edge in found] == expected
