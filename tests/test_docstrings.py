"""Docstrings and the JSON Schema stay true: files they name exist, and no machine timings.

A timing in a docstring goes stale with the next machine or jax version; it
belongs in benchmarks/RESULTS.md beside its machine and command.  A file a
docstring or a schema description points to must be in the repository.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from advisor.contract import schemas

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for package in ("advisor", "engine") for p in (ROOT / package).rglob("*.py"))
# repo paths (a folder, a slash, a file) and markdown files named bare
PATH = re.compile(r"\b(?:[\w.-]+/)+[\w.*-]+\.(?:py|md|toml|json|sh)\b|\b[\w-]+\.md\b")
OUTPUTS = ("runs/", "searches/", "auto/", "OUT/", "out_dir/")
WRITTEN = {"lineage.md"}  # files a command writes into its output folder
TIMING = re.compile(r"\b\d[\d,.]*\s?(?:ms|µs|samples/s)\b")


def _docstrings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [tree] + [
        n
        for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]
    return [(getattr(n, "lineno", 1), ast.get_docstring(n) or "") for n in nodes]


def _exists(name: str) -> bool:
    if name.startswith(OUTPUTS) or name in WRITTEN:  # what an example command writes
        return True
    if "/" not in name:  # a bare markdown name: at the top or in docs/
        return (ROOT / name).exists() or (ROOT / "docs" / name).exists()
    return any(ROOT.glob(name))


def _descriptions(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["description"]] if isinstance(node.get("description"), str) else []
        return own + [d for value in node.values() for d in _descriptions(value)]
    if isinstance(node, list):
        return [d for value in node for d in _descriptions(value)]
    return []


def test_the_patterns_find_what_they_should():
    assert PATH.findall("see docs/transfer.md and engine/nn/layers.py, DESIGN.md") == [
        "docs/transfer.md",
        "engine/nn/layers.py",
        "DESIGN.md",
    ]
    assert TIMING.findall("forward 15 ms, 1,193 samples/s, 3 epochs") == [
        "15 ms",
        "1,193 samples/s",
    ]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_docstring_names_only_files_that_exist_and_quotes_no_timing(path):
    for line, text in _docstrings(path):
        missing = [name for name in PATH.findall(text) if not _exists(name)]
        assert not missing, f"{path.name}:{line} names {missing}, not in the repository"
        assert not TIMING.findall(text), (
            f"{path.name}:{line}: move {TIMING.findall(text)} to RESULTS.md"
        )


@pytest.mark.parametrize("name", sorted(schemas.SCHEMAS))
def test_the_json_schema_names_only_files_that_exist(name):
    descriptions = _descriptions(schemas.SCHEMAS[name].model_json_schema())
    assert descriptions, f"the {name} schema describes nothing"
    missing = [p for p in PATH.findall(json.dumps(descriptions)) if not _exists(p)]
    assert not missing, f"the {name} schema names {missing}, not in the repository"
