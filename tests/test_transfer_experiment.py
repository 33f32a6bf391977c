"""The transfer experiment (benchmarks/transfer_experiment.py), reduced: one seed, small sizes, three epochs."""

from __future__ import annotations

import pytest

from benchmarks.transfer_experiment import (
    Cell,
    Quadrant,
    forced_rule,
    markdown,
    run_experiment,
    strategy_variant,
    verdict,
)


def test_a_forced_strategy_is_one_rule_the_advisor_plans_around(tmp_path):
    from advisor.expert.rules import load_rules

    (tmp_path / "force.toml").write_text(forced_rule(strategy_variant("two_stage")))
    (rule,) = load_rules([tmp_path / "force.toml"], domain="recommend")[-1:]
    assert rule.recommend == {
        "freeze.strategy": "two_stage",
        "freeze.fine_tune_lr_factor": 0.1,
        "freeze.layer_lr_decay": 0.38,
    }


def test_the_verdict_allows_one_standard_deviation():
    cells = [
        Cell("q", "a", [0.90, 0.92, 0.94]),
        Cell("q", "b", [0.89, 0.91, 0.90]),
        Cell("q", "c", [0.5, 0.6, 0.7]),
    ]
    assert verdict(cells, "b") == (cells[0], True)  # 0.92 - 0.90 <= 0.02
    assert verdict(cells, "c") == (cells[0], False)
    assert verdict(cells, "d") == (cells[0], None)  # not among the columns


@pytest.mark.slow
def test_the_reduced_experiment_runs_and_tabulates(digits_base, tmp_path):
    quadrants = (
        Quadrant("small_similar", "builtin:digits", {"classes": [5, 6, 7, 8, 9], "subsample": 40}),
        Quadrant(
            "small_different",
            "builtin:shapes",
            {"n_samples": 400, "image_size": (8, 8), "subsample": 40},
        ),
    )
    variants = (strategy_variant("feature_extractor"), strategy_variant("partial_fine_tune"))
    # a 3-epoch budget leaves no room for a second stage: the framework's own choices are advised
    result = run_experiment(
        str(digits_base),
        quadrants,
        variants,
        seeds=(0,),
        epochs=3,
        work=tmp_path,
        report=lambda line: None,
    )
    assert {q: (i["measured_quadrant"], i["advised"]) for q, i in result["quadrants"].items()} == {
        "small_similar": ("small_similar", "feature_extractor"),
        "small_different": ("small_different", "partial_fine_tune"),
    }
    assert len(result["cells"]) == 4 and all(
        0.0 <= c.accuracy[0] <= 1.0 and c.epochs == [3] for c in result["cells"]
    )
    table = markdown(result).splitlines()
    assert (
        table[0]
        == (
            "| quadrant (n_train, similarity) | feature_extractor | partial_fine_tune "
            "| lecture's choice: holds? | advisor's choice: holds? |"
        )
        and len(table) == 4
    )
    assert table[3].startswith("| small_different (") and "| partial_fine_tune: " in table[3]
    assert table[3].count("not run") == 0
