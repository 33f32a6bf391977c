"""Several objects an image: target checks, grid targets, grid loss and mAP on real outputs."""

from __future__ import annotations

import jax
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


def _grid_network(filters, input_shape):
    from engine.nn.models import build_model, init_variables

    model = PLAN.model.model_copy(update={"filters": filters})
    network = build_model(model, input_shape, "detection")
    return network, init_variables(network, jax.random.PRNGKey(0), input_shape)


def test_the_grid_head_is_the_same_in_every_cell():
    # A blob in cell (1, 1) and the same blob one cell (8 pixels) to the right, both clear of
    # the border: the example's head answers with the same objectness and class logits one
    # cell over, and the same box moved by a quarter of the image (a dense head would learn
    # the two cells apart).
    network, variables = _grid_network([16, 32, 64], (32, 32, 1))
    x = np.zeros((2, 32, 32, 1), np.float32)
    blob = np.random.default_rng(0).uniform(0.2, 1.0, (8, 8))
    x[0, 10:18, 10:18, 0] = blob
    x[1, 10:18, 18:26, 0] = blob
    out = np.asarray(network.apply(variables, jnp.asarray(x), train=False))
    assert out.shape == (2, 16, 15)
    here, right = 1 * 4 + 1, 1 * 4 + 2  # cells are numbered row by row
    np.testing.assert_allclose(out[1, right, 4:], out[0, here, 4:], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[1, right, [0, 2]], out[0, here, [0, 2]] + 0.25, atol=1e-5)
    np.testing.assert_allclose(out[1, right, [1, 3]], out[0, here, [1, 3]], atol=1e-5)
    assert not np.allclose(out[0, 0, 4:], out[0, here, 4:])  # an empty cell answers otherwise


def test_the_grid_head_pools_any_feature_map_to_the_grid():
    # two blocks on 24 pixels end in 6 x 6 features: pooled to 4 x 4 cells all the same
    network, variables = _grid_network([16, 32], (24, 24, 1))
    out = network.apply(variables, jnp.zeros((3, 24, 24, 1)), train=False)
    assert out.shape == (3, 16, 15)


def test_the_grid_head_refuses_a_sequence_in_one_line():
    from engine.nn.models import build_model

    model = PLAN.model.model_copy(update={"filters": [16]})
    network = build_model(model, (32, 1), "detection")
    with pytest.raises(InputError, match=r"^model.grid: a grid head needs an image feature map"):
        network.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 1)), train=False)


def test_a_grid_detector_refuses_cached_features_in_one_line():
    from engine.pretrained.features import build_feature_extractor

    freeze = PLAN.freeze.model_copy(update={"strategy": "feature_extractor"})
    plan = PLAN.model_copy(update={"freeze": freeze})
    with pytest.raises(InputError, match=r"^freeze.strategy: feature_extractor caches"):
        build_feature_extractor(plan, None, None, None, None)
