"""The package's import graph has no cycle, its subpackages are layers, and docs/ARCHITECTURE.md names every module.

The graph is read from the source with `ast` (nothing is imported): an edge a → b for every
import of module b inside module a — at the top, inside a function (a lazy import) or under
``if TYPE_CHECKING`` alike, since each one is a dependency a reader has to follow.

The layers, bottom up (``LAYERS``): the base modules (errors, numerics, output); data and
measures, which know nothing of each other; training; the report; the notebooks' analyses;
the command line. A module imports its own subpackage and the layers below it, never one
above (nothing imports back up), and imports a name from the module that defines it: a
subpackage's ``__init__``, which names the notebooks' API, is for the notebooks (the data
registry, ``imprf_utils/data/__init__.py``, is a module of its own and is imported as such).
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "imprf_utils"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"


def module_names(package: Path) -> dict[str, Path]:
    """Dotted names relative to the package ("data", "sub.module", "__init__") → file."""
    return {
        ".".join(path.relative_to(package).with_suffix("").parts): path
        for path in sorted(package.rglob("*.py"))
    }


def imported_modules(node: ast.AST, module: str, package: str, modules: set[str]) -> set[str]:
    """The package modules that one import statement in `module` refers to.

    A dotted name resolves to its longest prefix that is a module of the package (a
    sub-package by its ``__init__``): ``pkg.a`` → a, ``pkg.a.thing`` → a, ``pkg.X`` → __init__.
    """
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: from the importing module's package, `level` steps up
            here = [package, *module.split(".")][: -node.level]
            base = ".".join(here + ([node.module] if node.module else []))
        names = [f"{base}.{alias.name}" for alias in node.names]
    else:
        return set()
    found = set()
    for dotted in names:
        parts = dotted.split(".")
        if parts[0] != package:
            continue
        for end in range(len(parts), 0, -1):
            name = ".".join(parts[1:end])
            candidates = [name, f"{name}.__init__"] if name else ["__init__"]
            hit = next((c for c in candidates if c in modules), None)
            if hit:
                found.add(hit)
                break
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """module → the modules of the same package it imports (self-imports left out)."""
    modules = module_names(package)
    graph = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            edges |= imported_modules(node, name, package.name, set(modules))
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle [a, b, ..., a] of the directed graph, or None (depth-first search, colours)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                return stack[stack.index(child) :] + [child]
            if child not in state:
                cycle = visit(child)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph(PACKAGE)
    # the reader sees the real package: the registry imports the modules it was cut into
    assert {"data.clone", "data.dataset", "data.official_files", "data.photographs", "data.synthetic"} <= graph["data.__init__"]
    assert "data.__init__" not in graph["data.clone"]
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {' → '.join(cycle)}; move what both need into a third module"


LAYERS = {
    "errors": 0, "numerics": 0, "output": 0,
    "data": 1, "measures": 1,
    "training": 2,
    "report": 3,
    "notebooks": 4,
    "__main__": 5,
}
"""Each top-level module or subpackage of ``imprf_utils`` and its layer: a module may import only lower layers' and its own."""
API_PACKAGES = ("measures", "training", "report", "notebooks")
"""Subpackages whose ``__init__`` only names the notebooks' API: the library imports from their modules instead."""


def part(module: str) -> str:
    """The top-level module or subpackage a module belongs to: "data.clone" → "data", "output" → "output"."""
    return module.split(".")[0]


def upward_imports(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """Every edge a → b from one part of the package to another whose layer is not below a's."""
    return sorted(
        f"{a} → {b}" for a, imported in graph.items() for b in imported
        if part(a) != part(b) and not layers[part(b)] < layers[part(a)]
    )


def test_the_subpackages_are_layers_and_nothing_imports_back_up():
    graph = import_graph(PACKAGE)
    assert {part(name) for name in graph} == {*LAYERS, "__init__"}, "place every new module in LAYERS"
    assert graph["__init__"] == set() and not any("__init__" in imported for imported in graph.values())
    upward = upward_imports(graph, LAYERS)
    assert not upward, f"imports from a layer up or across ({', '.join(upward)}): move what both need down"
    for lower in ("data", "measures"):
        imported = {part(b) for name, deps in graph.items() if part(name) == lower for b in deps}
        assert not imported & {"training", "report", "notebooks"}, f"{lower} imports {imported}"


def test_the_library_imports_each_name_from_its_module():
    """Not from a subpackage's __init__ (the notebooks' API): the graph then shows the real dependencies."""
    graph = import_graph(PACKAGE)
    through = sorted(f"{a} → {b}" for a, deps in graph.items() for b in deps if b in {f"{p}.__init__" for p in API_PACKAGES})
    assert not through, f"import these names from their modules: {', '.join(through)}"


def test_the_layer_check_finds_an_upward_and_a_sideways_import():
    graph = {"data.clone": {"data.dataset", "errors"}, "training.runner": {"data.clone", "report.claims"},
             "measures.shape": {"data.dataset"}, "report.claims": set(), "errors": set(), "data.dataset": set()}
    assert upward_imports(graph, LAYERS) == ["measures.shape → data.dataset", "training.runner → report.claims"]


def test_every_module_is_named_in_the_architecture_page():
    """By its path from the repository root (tests/test_repository.py checks that each path exists)."""
    text = ARCHITECTURE.read_text()
    paths = [f"imprf_utils/{name.replace('.', '/')}.py" for name in module_names(PACKAGE)]
    missing = [path for path in paths if not re.search(rf"(?<![\w/.]){re.escape(path)}\b", text)]
    assert not missing, f"docs/ARCHITECTURE.md does not name {', '.join(missing)}: add a line for each"


def test_the_graph_reader_finds_every_kind_of_import_and_a_planted_cycle(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "import pkg.b\nfrom pkg import c\nfrom pkg.sub.d import thing\nimport numpy\n",
        "b.py": "from . import c\nfrom .sub import d\n",
        "c.py": "def f():\n    from pkg.a import g\n",  # a lazy import closes a → c → a
        "sub/__init__.py": "",
        "sub/d.py": "from ..c import x\nfrom pkg import VERSION\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    graph = import_graph(package)
    assert graph == {
        "__init__": set(),
        "a": {"b", "c", "sub.d"},
        "b": {"c", "sub.d"},
        "c": {"a"},
        "sub.__init__": set(),
        "sub.d": {"c", "__init__"},
    }
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    graph["c"] = set()
    assert find_cycle(graph) is None


@pytest.mark.parametrize("graph", [{"x": {"x"}}, {"x": {"y"}, "y": {"z"}, "z": {"x"}}])
def test_find_cycle_sees_self_loops_and_long_cycles(graph):
    cycle = find_cycle(graph)
    assert cycle[0] == cycle[-1] and all(b in graph[a] for a, b in zip(cycle, cycle[1:]))
