"""engine.datasets.checks: the pre-flight checks an expert makes, as errors or warnings with the fix."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.contract.errors import InputError
from engine.datasets.checks import LOSSES_FOR_TASK, check_data, check_plan
from engine.datasets.data import check_finite, load_data
from tests.engine_plans import make_plan


def test_every_task_has_losses():
    from advisor.contract.vocabulary import LOSSES, TASKS

    assert set(LOSSES_FOR_TASK) == set(TASKS)
    assert set().union(*LOSSES_FOR_TASK.values()) == set(LOSSES)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"loss.name": "mse"},
            r"^loss.name: 'mse' does not fit task multiclass; expected one of categorical_crossentropy, ",
        ),
        (
            {"model.output_units": 4},
            r"^model.output_units: 4 does not fit task multiclass with 3 classes; expected 3$",
        ),
        (
            {"regularization.augmentation": [{"name": "mixup", "strength": 0.2}]},
            r"^regularization.augmentation: mixup mixes targets",
        ),
        (
            {"regularization.early_stopping": {"monitor": "val_acc", "patience": 2}},
            r"^regularization.early_stopping.monitor: 'val_acc' is not recorded by this run",
        ),
    ],
)
def test_plans_that_cannot_be_right_are_input_errors(changes, message):
    with pytest.raises(InputError, match=message):
        check_plan(make_plan(**changes))


def test_high_dropout_and_full_batch_warn_with_the_fix():
    warnings = check_plan(make_plan(batch_size=500, **{"model.dropout": 0.7}))
    text = [str(w) for w in warnings]
    assert (
        "warning: model.dropout: 0.7 drops most units each step and slows learning; use 0.2-0.5"
        in text[0]
    )
    assert text[1].startswith(
        "warning: batch_size: 500 covers the whole training set, so adam runs full batch"
    )


def test_unscaled_inputs_warn():
    plan = make_plan(
        **{"data.normalize": "none", "data.source": {"kind": "builtin", "name": "wine"}},
        input_shape=[13],
    )
    warnings = check_data(plan, load_data(plan))
    assert [w.field for w in warnings] == ["data.normalize"]
    assert "set data.normalize to 'standardize'" in str(warnings[0])
    assert check_data(make_plan(), load_data(make_plan())) == []


def test_a_class_missing_from_validation_warns(tmp_path):
    y = np.array([0] * 20 + [1] * 20 + [2])  # one example of class 2: it goes to training
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).normal(size=(41, 4)), y=y)
    plan = make_plan(**{"data.source": {"kind": "npz", "path": str(tmp_path / "d.npz")}})
    warnings = check_data(plan, load_data(plan))
    assert [w.field for w in warnings] == ["data.val_fraction"]
    assert "class(es) [2] have no validation example" in str(warnings[0])


def test_nan_and_infinity_are_refused():
    with pytest.raises(
        InputError, match=r"^data.source: the targets hold 1 NaN or infinite values"
    ):
        check_finite(np.ones((3, 2)), np.array([1.0, np.inf, 0.0]))
