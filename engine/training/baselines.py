"""Models that are not networks, fitted on the plan's own split so ``advisor run`` can compare.

A plan lists them in ``baselines`` (the rules add gradient-boosted trees for
small tables).  ``fit_baselines`` fits each on the training split the network
trained on and scores it on the same validation split, under the network's
metric names (``val_accuracy``; ``val_rmse``, ``val_mae``, ``val_r2``).  It
needs scikit-learn; without it, or for a task a baseline cannot do (several
regression targets, images), it returns nothing and the run goes on.
"""

from __future__ import annotations

import numpy as np

from advisor.contract.schemas import Plan
from engine.datasets.data import Dataset


def fit_baselines(plan: Plan, dataset: Dataset) -> dict[str, dict[str, float]]:
    """Validation metrics of each baseline the plan names, keyed by baseline name."""
    if not plan.baselines or plan.task not in ("binary", "multiclass", "regression"):
        return {}
    y_train, y_val = np.asarray(dataset.y_train), np.asarray(dataset.y_val)
    if plan.task == "regression" and y_train.ndim == 2 and y_train.shape[1] > 1:
        return {}
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    except ImportError:
        return {}
    x_train = dataset.x_train.reshape(len(dataset.x_train), -1)
    x_val = dataset.x_val.reshape(len(dataset.x_val), -1)
    out = {}
    for name in plan.baselines:  # only "hist_gradient_boosting" is known to the schema
        if plan.task == "regression":
            model = HistGradientBoostingRegressor(random_state=plan.seed)
            model.fit(x_train, y_train.reshape(-1))
            out[name] = _regression_metrics(y_val.reshape(-1), model.predict(x_val))
        else:
            model = HistGradientBoostingClassifier(random_state=plan.seed)
            model.fit(x_train, y_train.reshape(-1))
            out[name] = {"val_accuracy": float(np.mean(model.predict(x_val) == y_val.reshape(-1)))}
    return out


def _regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    error = pred - y
    spread = float(np.sum((y - y.mean()) ** 2))
    return {
        "val_rmse": float(np.sqrt(np.mean(error**2))),
        "val_mae": float(np.mean(np.abs(error))),
        "val_r2": 1.0 - float(np.sum(error**2)) / spread if spread > 0 else 0.0,
    }
