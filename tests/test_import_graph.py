"""Dependencies point one way: no import circles, no upward imports, no privates across modules.

The graph is read from the source with ``ast`` (every ``import``, lazy ones inside
functions and ``TYPE_CHECKING`` ones included, since each is a dependency), so
nothing is imported to check it.  Layers: ``advisor.cli.commands`` on top, the rest of
``advisor`` below it, ``engine`` below that; the engine may import only the
contract modules of ``advisor`` (the file formats and errors both sides share).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("advisor", "engine")
# What the engine may import from advisor: the files' formats, errors, checked input, names.
CONTRACT = {
    "advisor.contract.errors",
    "advisor.contract.schemas",
    "advisor.contract.io",
    "advisor.contract.inputs",
    "advisor.contract.vocabulary",
    "advisor.contract.loading",  # load_plan, resolve_plan_paths: schemas + io only
    "advisor.contract.plan_paths",
    "advisor.contract.versions",  # format versions and migrations of every file format
    "advisor.contract.tfrecord",  # TFRecord checksums: read by advisor.readers, written by engine.outputs.live_log
}
CLI = {"advisor.cli.commands"}


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
