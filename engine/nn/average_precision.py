"""COCO-style mean average precision of multi-object detections, numpy only.

``mean_average_precision(detections, truths, n_classes, thresholds)`` follows
pycocotools' ``COCOeval`` for boxes (area range "all", every detection kept):
per image and class, detections in score order each take the unmatched true box
of highest IoU at or above the threshold; per class, the detections of all
images are ranked by score, precision is made non-increasing, and read at the
101 recall points 0, 0.01, ..., 1 (0 where the recall is never reached).
A class's AP is the mean of those 101 values; classes with no true box are
left out of the mean.  mAP@0.5 uses one threshold, mAP@0.5:0.95 the ten from
0.5 to 0.95 in steps of 0.05.  tests/test_average_precision.py checks it
against pycocotools on fixed cases.
"""

from __future__ import annotations

import numpy as np

RECALL_POINTS = np.linspace(0.0, 1.0, 101)
COCO_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``[len(a), len(b)]`` of boxes (x1, y1, x2, y2)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    w = np.clip(
        np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None
    )
    h = np.clip(
        np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None
    )
    inter = w * h
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _match(det_boxes, det_scores, true_boxes, threshold: float) -> np.ndarray:
    """True-positive flags of one image's detections of one class, in descending score order."""
    order = np.argsort(-det_scores, kind="mergesort")
    ious = box_iou(det_boxes[order], true_boxes)
    taken = np.zeros(len(true_boxes), bool)
    hits = np.zeros(len(order), bool)
    for d in range(len(order)):
        best, match = min(threshold, 1 - 1e-10), -1
        for g in range(len(true_boxes)):
            if taken[g] or ious[d, g] < best:
                continue
            best, match = ious[d, g], g
        if match >= 0:
            taken[match], hits[d] = True, True
    return hits


def class_average_precision(
    per_image: list[tuple[np.ndarray, np.ndarray, np.ndarray]], threshold: float
) -> float | None:
    """AP of one class over images as (detection boxes, scores, true boxes); None: no truths."""
    n_true = sum(len(t) for _, _, t in per_image)
    if n_true == 0:
        return None
    scores, hits = [], []
    for boxes, s, truths in per_image:
        if len(boxes) == 0:
            continue
        hits.append(_match(boxes, s, truths, threshold))
        scores.append(s[np.argsort(-s, kind="mergesort")])  # the order _match flags them in
    if not scores:
        return 0.0
    scores, hits = np.concatenate(scores), np.concatenate(hits)
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(hits[order])
    fp = np.cumsum(~hits[order])
    recall = tp / n_true
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # non-increasing envelope
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    q = np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0)
    return float(np.mean(q))


def mean_average_precision(
    detections: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    truths: list[tuple[np.ndarray, np.ndarray]],
    n_classes: int,
    thresholds=(0.5,),
) -> float:
    """mAP over classes and IoU thresholds.

    Args:
        detections: per image (boxes [P, 4], scores [P], classes [P]).
        truths: per image (boxes [M, 4], classes [M]) of the real objects only.
    Returns NaN when no image holds a true box.
    """
    values = []
    for threshold in thresholds:
        for c in range(n_classes):
            per_image = []
            for (boxes, scores, classes), (t_boxes, t_classes) in zip(
                detections, truths, strict=True
            ):
                mine = np.asarray(classes) == c
                per_image.append(
                    (
                        np.asarray(boxes, np.float64).reshape(-1, 4)[mine],
                        np.asarray(scores, np.float64)[mine],
                        np.asarray(t_boxes, np.float64).reshape(-1, 4)[np.asarray(t_classes) == c],
                    )
                )
            ap = class_average_precision(per_image, float(threshold))
            if ap is not None:
                values.append(ap)
    return float(np.mean(values)) if values else float("nan")
