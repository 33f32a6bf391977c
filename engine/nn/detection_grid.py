"""Several objects an image: the output grid, its targets, its loss, and its detections.

A plan with ``model.grid = S`` predicts on an S x S grid of cells.  Each cell
outputs ``5 + K`` values: a box offset and size, an objectness logit, and K
class logits (Redmon et al. 2016).  Targets are ``[B, M, 6]`` rows ``x1, y1,
x2, y2, class, valid`` (boxes in [0, 1]; ``valid`` 0 on padding rows).  The
cell holding a true box's centre is responsible for it: its objectness target
is 1, and the box and class losses are taken there; every other cell learns
objectness 0.  When two centres share a cell, the first row keeps it.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from engine.nn.average_precision import mean_average_precision

# Detections below this confidence are dropped before ranking (COCO keeps the top 100 a
# image; a grid has at most S*S, so only near-certain background is removed).
MIN_SCORE = 0.01


def decode_grid(outputs: jax.Array, grid: int) -> jax.Array:
    """``[B, S*S*(5+K)]`` raw -> ``[B, S*S, 5+K]``: box (x1, y1, x2, y2), objectness, classes.

    The centre is the cell's corner plus a sigmoid offset within it; width and height are a
    sigmoid share of the image, so every box is well formed from the first step.
    """
    cells = grid * grid
    out = outputs.reshape(outputs.shape[0], cells, -1)
    index = jnp.arange(cells)
    corner = jnp.stack([index % grid, index // grid], axis=1).astype(out.dtype)  # (col, row)
    centre = (corner[None] + jax.nn.sigmoid(out[..., :2])) / grid
    size = jax.nn.sigmoid(out[..., 2:4])
    low = jnp.clip(centre - size / 2, 0.0, 1.0)
    high = jnp.clip(centre + size / 2, 0.0, 1.0)
    return jnp.concatenate([low, high, out[..., 4:]], axis=-1)


def grid_targets(targets: jax.Array, grid: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``[B, M, 6]`` -> per cell: objectness ``[B, C]``, box ``[B, C, 4]``, class ``[B, C]``."""
    targets = targets.astype(jnp.float32)
    boxes, classes, valid = targets[..., :4], targets[..., 4], targets[..., 5] > 0.5
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    col_row = jnp.clip(jnp.floor(centre * grid), 0, grid - 1).astype(jnp.int32)
    cell = col_row[..., 1] * grid + col_row[..., 0]  # [B, M]
    owns = jax.nn.one_hot(cell, grid * grid, dtype=jnp.float32) * valid[..., None]  # [B, M, C]
    objectness = jnp.max(owns, axis=1)
    first = jnp.argmax(owns, axis=1)  # [B, C]: the first row whose centre is in the cell
    box = jnp.take_along_axis(boxes, first[..., None], axis=1)
    label = jnp.take_along_axis(classes, first, axis=1)
    return objectness, box, label


def make_grid_loss(
    box_fn: Callable, class_terms: list[tuple[str, float, Callable]], grid: int
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """Per-image loss: objectness BCE over all cells + box and class terms where objects are."""

    def loss_fn(outputs: jax.Array, targets: jax.Array) -> jax.Array:
        objectness, box, label = grid_targets(targets, grid)
        batch, cells, width = outputs.shape
        logits = outputs[..., 4].astype(jnp.float32)
        obj_loss = jnp.mean(
            jnp.maximum(logits, 0) - logits * objectness + jnp.log1p(jnp.exp(-jnp.abs(logits))),
            axis=1,
        )
        n_obj = jnp.maximum(jnp.sum(objectness, axis=1), 1.0)

        def at_objects(per_cell: jax.Array) -> jax.Array:
            return jnp.sum(per_cell.reshape(batch, cells) * objectness, axis=1) / n_obj

        total = obj_loss + at_objects(box_fn(outputs[..., :4].reshape(-1, 4), box.reshape(-1, 4)))
        if class_terms:
            class_logits = outputs[..., 5:].reshape(batch * cells, width - 5)
            ids = label.reshape(-1).astype(jnp.int32)
            one_hot = jax.nn.one_hot(ids, width - 5, dtype=jnp.float32)
            for name, weight, fn in class_terms:
                labels = ids if name == "sparse_categorical_crossentropy" else one_hot
                total = total + weight * at_objects(fn(class_logits, labels))
        return total

    return loss_fn


def detections(outputs: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image (boxes, scores, classes) from decoded outputs.

    Grid outputs ``[N, C, 5+K]``: score = sigmoid(objectness) x the top class probability.
    One-box outputs ``[N, 4+K]``: one detection an image, scored by its top class probability.
    """
    outputs = np.asarray(outputs, np.float64)
    if outputs.ndim == 2:
        probs = _softmax(outputs[:, 4:])
        return [
            (outputs[i : i + 1, :4], probs[i].max(keepdims=True), probs[i].argmax(keepdims=True))
            for i in range(len(outputs))
        ]
    probs = _softmax(outputs[..., 5:])
    scores = probs.max(axis=-1) / (1.0 + np.exp(-outputs[..., 4]))
    out = []
    for i in range(len(outputs)):
        keep = scores[i] >= MIN_SCORE
        out.append((outputs[i, keep, :4], scores[i, keep], probs[i, keep].argmax(axis=-1)))
    return out


def truths(targets: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per image (boxes, classes) of the real objects: ``[N, M, 6]`` rows, or ``[N, 5]``."""
    targets = np.asarray(targets, np.float64)
    if targets.ndim == 2:
        return [(targets[i : i + 1, :4], targets[i : i + 1, 4]) for i in range(len(targets))]
    valid = targets[..., 5] > 0.5
    return [(targets[i, valid[i], :4], targets[i, valid[i], 4]) for i in range(len(targets))]


def map_score(outputs: np.ndarray, targets: np.ndarray, thresholds) -> np.float32:
    """mAP of decoded outputs against raw targets (NaN when no image holds an object)."""
    n_classes = outputs.shape[-1] - (5 if np.ndim(outputs) == 3 else 4)
    value = mean_average_precision(detections(outputs), truths(targets), n_classes, thresholds)
    return np.float32(value)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
