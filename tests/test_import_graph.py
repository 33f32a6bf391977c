"""Dependencies point one way: no import circles, no upward imports, no privates across modules.

The graph is read from the source with ``ast`` (every ``import``, lazy ones inside
functions and ``TYPE_CHECKING`` ones included, since each is a dependency), so
nothing is imported to check it.  Layers: ``advisor.cli`` on top, the rest of
``advisor`` below it, ``engine`` below that; the engine may import only
``advisor.contract`` (the file formats and errors both sides share), and the
engine's own rooms import downward only (``ENGINE_LAYERS``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("advisor", "engine")
# What the engine may import from advisor: the files' formats, errors, checked input, names.
CONTRACT_PACKAGE = "advisor.contract"
# The engine's rooms, lowest first: a module imports only its own room and rooms below it.
ENGINE_LAYERS = {
    "engine.runtime": 0,  # registry, compiler, devices, sharding, signals
    "engine.outputs": 1,  # run folder, live logs, curves, checkpoints
    "engine.nn": 2,
    "engine.datasets": 2,
    "engine.optim": 3,  # losses use the detection grid (nn); metrics use the losses
    "engine.training": 4,
    "engine.pretrained": 5,  # the feature extractor trains through engine.training
    "engine.serving": 5,
    "engine.run": 6,
    "engine.searching": 7,  # populations and trials reuse engine.run's pieces
}
# A folder holds about a dozen modules at most (the readers: one small module per format).
MAX_MODULES_PER_FOLDER = 14


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()
CONTRACT = {m for m in MODULES if m.startswith(CONTRACT_PACKAGE + ".")}
CLI = {m for m in MODULES if m == "advisor.cli" or m.startswith("advisor.cli.")}


def _target(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if MODULES[module].name != "__init__.py":
        base.pop()
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import of our packages."""
    out = []
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _target(module, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append(
                    (sub, None, node.lineno)
                    if sub in MODULES
                    else (target, alias.name, node.lineno)
                )
    return [(t, name, line) for t, name, line in out if t.split(".")[0] in PACKAGES]


EDGES = {m: _imports(m) for m in MODULES}


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _, _ in edges if t in MODULES and t != m} for m, edges in EDGES.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_packages():
    assert {
        "advisor.cli.commands",
        "advisor.contract.schemas",
        "engine.run",
        "engine.searching.search",
    } <= set(MODULES)
    assert ("advisor.contract.schemas", "Plan") in {(t, n) for t, n, _ in EDGES["engine.run"]}
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    assert _circles(_graph()) == []


def test_the_engine_imports_only_the_contract_of_advisor():
    upward = [
        f"{m}:{line} imports {t}"
        for m, edges in EDGES.items()
        if m.startswith("engine")
        for t, _, line in edges
        if t.startswith("advisor") and t not in CONTRACT and t != "advisor"
    ]
    assert upward == []


def test_the_contract_imports_nothing_above_it():
    above = [
        f"{m}:{line} imports {t}" for m in CONTRACT for t, _, line in EDGES[m] if t not in CONTRACT
    ]
    assert above == []


def test_no_library_module_imports_the_cli():
    upward = [
        f"{m}:{line} imports {t}"
        for m, edges in EDGES.items()
        if m not in CLI
        for t, _, line in edges
        if t in CLI
    ]
    assert upward == []


def test_no_private_name_is_imported_from_another_module():
    private = [
        f"{m}:{line} imports {t}.{name}"
        for m, edges in EDGES.items()
        for t, name, line in edges
        if name and name.startswith("_") and not name.startswith("__") and t != m
    ]
    assert private == []


def _engine_room(module: str) -> str:
    return next(room for room in ENGINE_LAYERS if module == room or module.startswith(room + "."))


def test_every_engine_module_lives_in_a_room():
    homeless = [
        m
        for m in MODULES
        if m.startswith("engine.")
        and not any(m == room or m.startswith(room + ".") for room in ENGINE_LAYERS)
    ]
    assert homeless == []


def test_the_engine_rooms_import_downward_only():
    upward = [
        f"{m}:{line} imports {t}"
        for m, edges in EDGES.items()
        if m.startswith("engine.")
        for t, _, line in edges
        if t.startswith("engine.")
        and t in MODULES
        and _engine_room(t) != _engine_room(m)
        and ENGINE_LAYERS[_engine_room(t)] >= ENGINE_LAYERS[_engine_room(m)]
    ]
    assert upward == []


def test_the_layer_check_sees_an_upward_import():
    assert (
        ENGINE_LAYERS[_engine_room("engine.training.fit")]
        > ENGINE_LAYERS[_engine_room("engine.nn.models")]
    )
    assert _engine_room("engine.run") == "engine.run"


def test_advisor_reaches_the_engine_only_through_its_workflows_and_the_cli():
    reach = [
        f"{m}:{line} imports {t}"
        for m, edges in EDGES.items()
        if m.startswith("advisor") and not m.startswith(("advisor.workflows", "advisor.cli"))
        for t, _, line in edges
        if t.split(".")[0] == "engine"
    ]
    assert reach == []


def _third_party(module: str) -> list[tuple[str, int]]:
    """(top-level name, line) of every import in a module, ours and others'."""
    out = []
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name.split(".")[0], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.append((node.module.split(".")[0], node.lineno))
    return out


def test_only_the_cli_imports_click_or_rich():
    terminal = [
        f"{m}:{line} imports {name}"
        for m in MODULES
        if m not in CLI
        for name, line in _third_party(m)
        if name in ("click", "rich")
    ]
    assert terminal == []
    assert "click" in {name for name, _ in _third_party("advisor.cli.commands")}


def test_no_folder_is_a_flat_hall():
    crowded = {}
    for package in PACKAGES:
        for folder in [ROOT / package, *(p for p in (ROOT / package).rglob("*") if p.is_dir())]:
            count = len([p for p in folder.glob("*.py") if p.name != "__init__.py"])
            if count > MAX_MODULES_PER_FOLDER:
                crowded[str(folder.relative_to(ROOT))] = count
    assert crowded == {}


def test_pyproject_ships_every_package():
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    folders = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for package in PACKAGES
        for p in (ROOT / package).rglob("__init__.py")
    }
    assert folders <= listed, sorted(folders - listed)
