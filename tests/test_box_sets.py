"""Several objects an image: target checks, grid targets, grid loss and mAP on real outputs."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from advisor.contract.errors import InputError
from advisor.contract.schemas import Plan
from engine.datasets.data import check_targets
from engine.nn.detection_grid import decode_grid, grid_targets
from engine.optim.losses import build_loss
from engine.optim.metrics import metric_fn

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
PLAN = Plan.model_validate_json((ROOT / "examples/plans/digits_detection.json").read_text())


def _targets():
    y = np.zeros((2, 3, 6), np.float32)
    y[0, 0] = [0.1, 0.1, 0.3, 0.4, 7, 1]
    y[0, 1] = [0.6, 0.5, 0.9, 0.9, 2, 1]
    y[1, 0] = [0.4, 0.4, 0.6, 0.6, 0, 1]
    return y


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda y: y.__setitem__((0, 0, 4), -1),
            "data.source: detection class ids must be whole numbers 0..9; "
            "a valid row holds a negative, fractional or missing one",
        ),
        (
            lambda y: y.__setitem__((0, 0, 4), 10),
            "n_classes: detection labels reach 10; expected 0..9",
        ),
        (
            lambda y: y.__setitem__((0, 2, 5), 0.5),
            "data.source: the valid column (the sixth) must be 0 or 1 in every row",
        ),
        (
            lambda y: y.__setitem__((0, 0, 2), 0.05),
            "data.source: boxes must be x1 < x2, y1 < y2 inside [0, 1] (fractions of the image)",
        ),
    ],
    ids=["negative class", "class too large", "valid flag", "inverted box"],
)
def test_bad_box_sets_are_one_line_naming_the_field(change, message):
    y = _targets()
    change(y)
    with pytest.raises(InputError) as err:
        check_targets(y, PLAN)
    assert str(err.value) == message


def test_padding_rows_may_hold_anything_but_are_not_objects():
    y = _targets()
    y[1, 2, :5] = [-5, 0, 0, 0, -3]  # a padding row (valid 0): not checked, never an object
    assert check_targets(y, PLAN) is y
    objectness, box, label = grid_targets(jnp.asarray(y), 4)
    # image 0: centres (0.2, 0.25) -> cell (col 0, row 1) = 4; (0.75, 0.7) -> (3, 2) = 11
    assert np.flatnonzero(np.asarray(objectness[0])).tolist() == [4, 11]
    assert np.flatnonzero(np.asarray(objectness[1])).tolist() == [10]  # (0.5, 0.5) -> (2, 2)
    assert float(label[0, 4]) == 7 and float(label[0, 11]) == 2
    np.testing.assert_allclose(np.asarray(box[0, 11]), y[0, 1, :4])


def test_one_box_plans_refuse_several_boxes():
    one_box = PLAN.model_copy(update={"model": PLAN.model.model_copy(update={"grid": None})})
    with pytest.raises(InputError, match="^model.grid: the targets hold several boxes"):
        check_targets(_targets(), one_box)


def test_grid_loss_is_lowest_for_the_right_boxes_and_map_is_one():
    y = jnp.asarray(_targets())
    objectness, box, label = grid_targets(y, 4)
    # outputs in decoded form: the true box, objectness and class where objects are
    right = np.zeros((2, 16, 15), np.float32)
    right[..., 4] = np.where(np.asarray(objectness) > 0, 8.0, -8.0)
    right[..., :4] = np.asarray(box)
    for i in range(2):
        right[i, np.arange(16), 5 + np.asarray(label[i]).astype(int)] = 8.0
    wrong = right.copy()
    wrong[..., 5:] = np.roll(wrong[..., 5:], 1, axis=-1)  # every class off by one
    loss = build_loss(PLAN.loss, PLAN.task)
    assert float(loss(jnp.asarray(right), y).mean()) < float(loss(jnp.asarray(wrong), y).mean())
    assert float(metric_fn("map_50", "detection")(jnp.asarray(right), y)) == pytest.approx(1.0)
    assert float(metric_fn("map_50_95", "detection")(jnp.asarray(right), y)) == pytest.approx(1.0)
    assert float(metric_fn("map_50", "detection")(jnp.asarray(wrong), y)) == 0.0


def test_decoded_boxes_sit_in_their_cell_and_are_well_formed():
    raw = jnp.asarray(np.random.default_rng(0).normal(size=(3, 16 * 15)).astype(np.float32))
    out = np.asarray(decode_grid(raw, 4))
    assert out.shape == (3, 16, 15)
    centre = (out[..., :2] + out[..., 2:4]) / 2
    assert (
        (out[..., 2:4] >= out[..., :2]).all()
        and (out[..., :4] >= 0).all()
        and (out[..., :4] <= 1).all()
    )
    cells = np.floor(np.clip(centre, 0, 0.999) * 4).astype(int)
    unclipped = (out[..., 0] > 0) & (out[..., 1] > 0) & (out[..., 2] < 1) & (out[..., 3] < 1)
    index = cells[..., 1] * 4 + cells[..., 0]
    assert (index[unclipped] == np.broadcast_to(np.arange(16), index.shape)[unclipped]).all()


def test_predict_says_grid_detections_are_not_listed_yet():
    from engine.serving.predict import decode

    with pytest.raises(InputError, match=r"^RUN: the model finds several objects an image"):
        decode(np.zeros((2, 16, 15), np.float32), "detection", None)
