"""The corpus parts of benchmarks/diagnosis.py: tune, holdout and fresh never overlap.

Fresh entries (``part = "fresh"`` in meta.toml) were gathered and labelled after the
thresholds were calibrated; they must never be scored, or tuned on, as tune or holdout,
and they come from sources no earlier entry used.
"""

from __future__ import annotations

import functools
import importlib.util
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location(
    "diagnosis_bench", ROOT / "benchmarks" / "diagnosis.py"
)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)

LABELS = {
    "inconclusive",
    "diverged",
    "lr_too_high",
    "underfitting",
    "overfitting",
    "not_converged",
    "lr_too_low",
    "plateau",
    "healthy",
}


@functools.cache
def _metas() -> dict[str, dict]:
    return {
        meta.parent.name: tomllib.loads(meta.read_text())
        for meta in sorted(bench.ENTRIES.glob("*/meta.toml"))
    }


def test_every_entry_is_in_exactly_one_part_and_fresh_ones_only_in_fresh():
    metas = _metas()
    ids = {part: {folder.name for folder, _ in bench.entries(part)} for part in bench.PARTS}
    assert sum(len(found) for found in ids.values()) == len(metas)
    assert set().union(*ids.values()) == set(metas)
    fresh = {name for name, meta in metas.items() if meta.get("part") == "fresh"}
    assert fresh and ids["fresh"] == fresh
    assert not fresh & (ids["tune"] | ids["holdout"])


def test_the_hash_split_still_decides_tune_and_holdout_for_the_other_entries():
    for name, meta in _metas().items():
        if meta.get("part") != "fresh":
            assert bench.part_of(name, meta) == bench.part_of(name)
    assert bench.part_of("any_id", {"part": "fresh"}) == "fresh"


@pytest.mark.parametrize("name", sorted(n for n, m in _metas().items() if m.get("part") == "fresh"))
def test_a_fresh_entry_is_labelled_and_comes_from_a_source_no_earlier_entry_used(name):
    metas = _metas()
    meta = metas[name]
    earlier = {m.get("repo") for m in metas.values() if m.get("part") != "fresh"}
    assert meta["id"] == name and meta["gathered"] and meta["labelled_by"]
    assert meta["primary"] in LABELS and set(meta["secondary"]) <= LABELS - {"inconclusive"}
    assert meta["repo"] not in earlier
    assert (bench.ENTRIES / name / meta["file"]).stat().st_size <= 200_000
