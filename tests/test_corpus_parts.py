"""The corpus parts of benchmarks/diagnosis.py: tune, holdout and the held-out parts (fresh, fresh2, fresh3) never overlap.

Held-out entries (``part = "fresh"``, ``"fresh2"`` or ``"fresh3"`` in meta.toml) were gathered and
labelled after the thresholds were calibrated; they must never be scored, or tuned on, as
tune, holdout or the other held-out part, and they come from sources no entry gathered
before them used (fresh3 after fresh2, fresh2 after fresh, fresh after tune and holdout).
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


@pytest.mark.parametrize("held_out", bench.HELD_OUT)
def test_every_entry_is_in_exactly_one_part_and_held_out_ones_only_in_their_own(held_out):
    metas = _metas()
    ids = {part: {folder.name for folder, _ in bench.entries(part)} for part in bench.PARTS}
    assert sum(len(found) for found in ids.values()) == len(metas)
    assert set().union(*ids.values()) == set(metas)
    named = {name for name, meta in metas.items() if meta.get("part") == held_out}
    assert named and ids[held_out] == named
    others = set().union(*(found for part, found in ids.items() if part != held_out))
    assert not named & others


def test_the_hash_split_still_decides_tune_and_holdout_for_the_other_entries():
    for name, meta in _metas().items():
        if meta.get("part") not in bench.HELD_OUT:
            assert bench.part_of(name, meta) == bench.part_of(name)
    for held_out in bench.HELD_OUT:
        assert bench.part_of("any_id", {"part": held_out}) == held_out


def _gathered_before(part: str) -> set[str]:
    """The parts gathered before a held-out part: tune and holdout, then earlier held-out ones."""
    return {"tune", "holdout", *bench.HELD_OUT[: bench.HELD_OUT.index(part)]}


@pytest.mark.parametrize(
    "name", sorted(n for n, m in _metas().items() if m.get("part") in bench.HELD_OUT)
)
def test_a_held_out_entry_is_labelled_and_comes_from_a_source_no_earlier_entry_used(name):
    metas = _metas()
    meta = metas[name]
    before = _gathered_before(meta["part"])
    earlier = {m.get("repo") for n, m in metas.items() if bench.part_of(n, m) in before}
    assert meta["id"] == name and meta["gathered"] and meta["labelled_by"]
    assert meta["primary"] in LABELS and set(meta["secondary"]) <= LABELS - {"inconclusive"}
    assert meta["repo"] not in earlier
    assert (bench.ENTRIES / name / meta["file"]).stat().st_size <= 200_000
