"""COCO mAP of multi-object detections: against pycocotools on fixed cases, and by hand."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from engine.nn.average_precision import COCO_THRESHOLDS, box_iou, mean_average_precision


def _case(seed: int, n_images: int = 12, n_classes: int = 3):
    """Random true boxes per image, and noisy detections of them plus false alarms."""
    rng = np.random.default_rng(seed)
    detections, truths = [], []
    for _ in range(n_images):
        m = int(rng.integers(0, 4))
        xy = rng.uniform(0, 60, (m, 2))
        wh = rng.uniform(5, 30, (m, 2))
        t_boxes = np.round(np.concatenate([xy, xy + wh], axis=1), 1)
        t_classes = rng.integers(0, n_classes, m)
        jitter = rng.normal(0, 3, (m, 4))
        found = rng.uniform(size=m) < 0.8
        d_boxes = (t_boxes + jitter)[found]
        # well-formed boxes (COCO ignores a detection of negative area rather than scoring it)
        d_boxes[:, 2:] = np.maximum(d_boxes[:, 2:], d_boxes[:, :2] + 0.5)
        d_classes = np.where(rng.uniform(size=m) < 0.85, t_classes, rng.integers(0, n_classes, m))[
            found
        ]
        k = int(rng.integers(0, 3))  # false alarms
        fxy = rng.uniform(0, 60, (k, 2))
        d_boxes = np.concatenate([d_boxes, np.concatenate([fxy, fxy + 10], axis=1)])
        d_classes = np.concatenate([d_classes, rng.integers(0, n_classes, k)])
        scores = np.round(rng.uniform(size=len(d_boxes)), 2)  # ties occur
        detections.append((d_boxes, scores, d_classes))
        truths.append((t_boxes, t_classes))
    return detections, truths, n_classes


def _coco(detections, truths, n_classes):
    """(AP@[.5:.95], AP@.5) from pycocotools' COCOeval on the same boxes."""
    coco_mod = pytest.importorskip("pycocotools.coco")
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for i, ((d_boxes, scores, d_classes), (t_boxes, t_classes)) in enumerate(
        zip(detections, truths, strict=True)
    ):
        images.append({"id": i + 1, "width": 100, "height": 100})
        for box, c in zip(t_boxes, t_classes, strict=True):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": int(c) + 1,
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        for box, s, c in zip(d_boxes, scores, d_classes, strict=True):
            results.append(
                {
                    "image_id": i + 1,
                    "category_id": int(c) + 1,
                    "score": float(s),
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        gt = coco_mod.COCO()
        gt.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": c + 1} for c in range(n_classes)],
        }
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[0], ev.stats[1]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_pycocotools(seed):
    detections, truths, k = _case(seed)
    coco_all, coco_50 = _coco(detections, truths, k)
    ours_50 = mean_average_precision(detections, truths, k)
    ours_all = mean_average_precision(detections, truths, k, COCO_THRESHOLDS)
    assert ours_50 == pytest.approx(coco_50, abs=1e-9)
    assert ours_all == pytest.approx(coco_all, abs=1e-9)


def test_101_point_interpolation_by_hand():
    # one class, 2 true boxes in one image; 3 detections by score: hit, miss, hit.
    # precision/recall after each: (1, 0.5), (0.5, 0.5), (2/3, 1); the envelope makes the
    # precision at recall <= 0.5 equal 1 and at 0.5 < r <= 1 equal 2/3, so the 101 points give
    # 51 x 1 + 50 x 2/3 over 101.
    truth = (np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), np.array([0, 0]))
    dets = (
        np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 31]], float),
        np.array([0.9, 0.8, 0.7]),
        np.array([0, 0, 0]),
    )
    expected = (51 * 1.0 + 50 * 2 / 3) / 101
    assert mean_average_precision([dets], [truth], 1) == pytest.approx(expected)
    # at IoU 0.95 the third box (IoU 10/11 = 0.909) no longer matches: only the first hits
    assert mean_average_precision([dets], [truth], 1, (0.95,)) == pytest.approx(51 / 101)


def test_each_true_box_is_matched_once_and_classes_apart():
    truth = (np.array([[0, 0, 10, 10]], float), np.array([1]))
    twice = (
        np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float),
        np.array([0.9, 0.8]),
        np.array([1, 1]),
    )
    # the duplicate is a false positive after full recall: AP stays 1
    assert mean_average_precision([twice], [truth], 2) == pytest.approx(1.0)
    wrong_class = (twice[0][:1], twice[1][:1], np.array([0]))
    assert mean_average_precision([wrong_class], [truth], 2) == 0.0  # class 0 has no truths
    assert np.isnan(mean_average_precision([wrong_class], [(np.zeros((0, 4)), np.zeros(0))], 2))


def test_box_iou():
    iou = box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]]))
    np.testing.assert_allclose(iou, [[1 / 7, 1.0, 0.0]])
