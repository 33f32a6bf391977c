"""Make the engine-generated part of the labelled collection: small runs of this
project's engine made, on purpose, to overfit, underfit, diverge, oscillate, crawl,
stall on a plateau, stop early or converge.

    python tests/data/histories/make_engine_histories.py            # all runs (~3 min on 2 CPU cores)
    python tests/data/histories/make_engine_histories.py overfit_digits   # one run, curves printed

Each run starts from an example plan (examples/plans/, via tests/diagnosis_support.py)
with a few fields changed;
its labels are what the plan was built to do, checked by reading the curves the
run produced (printed with --show), not by the diagnosis under test.  Only
history.json and plan.json of each run are kept, in engine/<name>/; the labels go
to engine_labels.json.  Runs are seeded and repeat exactly on one machine (but for
epoch_time); on another jax version or device the numbers may differ slightly, so
the committed files are the reference.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
OUT = HERE / "engine"

_NO_STOP = {"regularization.early_stopping": None, "schedule.name": "constant", "search": None}

# name -> (example plan, changes, labels)
RUNS: dict[str, tuple[str, dict, list[str]]] = {
    # converge: the recommended plans, run to the end
    "healthy_digits": (
        "digits_mlp",
        {"epochs": 40, "regularization.early_stopping": None},
        ["lr_too_high", "overfitting"],
    ),
    "healthy_breast_cancer": (
        "breast_cancer_binary",
        {"epochs": 40, "regularization.early_stopping": None},
        ["lr_too_high"],
    ),
    "healthy_digits_sgd": (
        "digits_mlp",
        {
            "optimizer.name": "sgd",
            "optimizer.learning_rate": 0.05,
            "optimizer.momentum": 0.9,
            "epochs": 40,
            "regularization.early_stopping": None,
            "seed": 1,
        },
        ["lr_too_high"],
    ),
    "healthy_diabetes": (
        "diabetes_regression",
        {"epochs": 60, "regularization.early_stopping": None},
        ["healthy"],
    ),
    # warm restarts: the validation loss drops again after every restart, down to the last one
    "restarts_wine": (
        "wine_random_search",
        {"search": None, "epochs": 150, "regularization.early_stopping": None},
        ["lr_too_high"],
    ),
    # overfit: a big network on a few hundred (or fewer) examples, no regularisation
    "overfit_digits": (
        "digits_mlp",
        {
            **_NO_STOP,
            "data.source.subsample": 150,
            "n_train": 150,
            "model.units": 512,
            "model.hidden_layers": 3,
            "model.dropout": 0.0,
            "epochs": 150,
        },
        ["overfitting"],
    ),
    "overfit_breast_cancer": (
        "breast_cancer_binary",
        {
            **_NO_STOP,
            "data.source.subsample": 60,
            "n_train": 60,
            "model.units": 512,
            "model.hidden_layers": 3,
            "model.dropout": 0.0,
            "epochs": 150,
        },
        ["overfitting"],
    ),
    "overfit_diabetes": (
        "diabetes_regression",
        {
            **_NO_STOP,
            "data.source.subsample": 80,
            "n_train": 80,
            "model.units": 512,
            "model.hidden_layers": 3,
            "model.dropout": 0.0,
            "optimizer.weight_decay": 0.0,
            "epochs": 150,
        },
        ["lr_too_high"],
    ),
    # memorise: 100 examples, train loss to zero, validation flat far above it
    "memorize_digits": (
        "digits_mlp",
        {
            **_NO_STOP,
            "data.source.subsample": 100,
            "n_train": 100,
            "model.units": 256,
            "model.hidden_layers": 3,
            "model.dropout": 0.0,
            "epochs": 60,
        },
        ["overfitting"],
    ),
    # underfit: a two-unit bottleneck that levels off far above a good fit (and, slower, is still learning)
    "underfit_digits": (
        "digits_mlp",
        {
            **_NO_STOP,
            "model.units": 2,
            "model.hidden_layers": 1,
            "model.dropout": 0.0,
            "optimizer.learning_rate": 0.01,
            "epochs": 60,
        },
        ["underfitting"],
    ),
    "tiny_slow_digits": (
        "digits_mlp",
        {
            **_NO_STOP,
            "model.units": 2,
            "model.hidden_layers": 1,
            "model.dropout": 0.0,
            "epochs": 40,
        },
        ["not_converged"],
    ),
    # learning rate far too high: oscillation and dying units; far beyond: NaN at once
    "lr_high_digits": (
        "digits_mlp",
        {**_NO_STOP, "optimizer.learning_rate": 0.05, "epochs": 40},
        ["dead_units", "lr_too_high"],
    ),
    "diverge_digits": (
        "digits_mlp",
        {**_NO_STOP, "optimizer.name": "sgd", "optimizer.learning_rate": 5.0, "epochs": 30},
        ["diverged", "exploding_gradients", "inconclusive", "lr_too_high"],
    ),
    "diverge_momentum_digits": (
        "digits_mlp",
        {
            **_NO_STOP,
            "optimizer.name": "sgd",
            "optimizer.learning_rate": 1.0,
            "optimizer.momentum": 0.9,
            "epochs": 30,
        },
        ["diverged", "exploding_gradients", "inconclusive", "lr_too_high"],
    ),
    # a deep ReLU network with a large momentum step: its units die in the second epoch, the loss sits at chance
    "dead_relu_digits": (
        "digits_mlp",
        {
            **_NO_STOP,
            "optimizer.name": "sgd",
            "optimizer.learning_rate": 0.2,
            "optimizer.momentum": 0.9,
            "model.hidden_layers": 6,
            "model.units": 64,
            "model.dropout": 0.0,
            "epochs": 40,
        },
        ["dead_units", "lr_too_high", "underfitting", "vanishing_gradients"],
    ),
    # learning rate far too low: a slow straight descent
    "lr_low_digits": (
        "digits_mlp",
        {**_NO_STOP, "optimizer.name": "sgd", "optimizer.learning_rate": 0.0005, "epochs": 40},
        ["lr_too_low"],
    ),
    # a deep sigmoid network: gradients vanish and the loss sits at chance; given 100 epochs it escapes
    "stuck_sigmoid_digits": (
        "digits_mlp",
        {
            **_NO_STOP,
            "optimizer.name": "sgd",
            "optimizer.learning_rate": 0.5,
            "model.activation": "sigmoid",
            "model.hidden_layers": 5,
            "model.units": 32,
            "model.dropout": 0.0,
            "epochs": 60,
        },
        ["underfitting", "vanishing_gradients"],
    ),
    "plateau_sigmoid_digits": (
        "digits_mlp",
        {
            **_NO_STOP,
            "optimizer.name": "sgd",
            "optimizer.learning_rate": 0.5,
            "model.activation": "sigmoid",
            "model.hidden_layers": 5,
            "model.units": 32,
            "model.dropout": 0.0,
            "epochs": 100,
        },
        ["not_converged", "plateau", "vanishing_gradients"],
    ),
    # stopped while still learning fast
    "short_digits": (
        "digits_mlp",
        {**_NO_STOP, "optimizer.learning_rate": 0.0003, "epochs": 12},
        ["inconclusive"],
    ),
    # the recommended plan with a rate far too high: early stopping ends it after the first epoch's
    # best while both losses jump about (instability, not memorisation)
    "lr_high_recommended_digits": (
        "digits_mlp",
        {"optimizer.learning_rate": 0.05},
        ["lr_too_high"],
    ),
    # the iris example as recommended: full-batch gd with warm restarts every 75 epochs, converged
    "restarts_iris": ("iris_tiny", {}, ["lr_too_high"]),
}

# Relabelled for issue 12 (tests/corpus/CRITERIA.md): restarts_wine, heldout_wine_adam and short_digits
# were not_converged, restarts_iris healthy, but their validation tail still improves its best by
# 2-48 % while carrying under 5 % of the run's progress: neither flattened (healthy) nor cut short
# (not_converged), so inconclusive; lr_low_digits and heldout_lr_low_breast_cancer lose
# not_converged: a straight slow descent is lr_too_low, and not_converged asks for a bending curve.
# healthy_breast_cancer, healthy_digits, healthy_digits_sgd and heldout_wine_adam become overfitting:
# after their best epoch the validation loss stood more than 5 % (and three noise widths) above it
# in two or more epochs while the training loss fell on by 10-83 % (CRITERIA 5, read literally).
# Second pass, with CRITERIA 2-3 read literally as the corpus labellers do:
# healthy_breast_cancer, healthy_digits_sgd, heldout_wine_adam, overfit_diabetes, restarts_iris and
# restarts_wine are lr_too_high (33-49 % of the training loss's own moves go up, median move 4.7-9 %
# of the value plus a tenth of the range: minibatch noise on tiny data sets counts by the letter; the
# overfitting signs are then the instability's); dead_relu_digits also lr_too_high (the loss ends 20 %
# above its epoch-1 best, no lr decay); heldout_lr_high_breast_cancer also diverged (ends > 2x its best,
# rising); diverge_digits, diverge_momentum_digits, heldout_diverge_breast_cancer also inconclusive
# (fewer than 4 epochs before training stopped); heldout_big_model_wine overfitting (V - L ends 6.8x L
# and grew 20 % since V's best while V no longer improves).
# healthy_digits also lr_too_high: its training loss jumps 0.0148 -> 0.0220 (+49 %) at epoch 25 and
# 0.0113 -> 0.0151 (+34 %) at epoch 40, >= 25 % in one epoch by the letter of CRITERIA 3; the jumps
# were hidden while their floor was a hundredth of a range set by the first epoch (1.48, the
# average over the steps from the random init), now a hundredth of the range after it.
# heldout_healthy_digits_seed3 healthy: its training loss still improves its best by 7.5 % over
# the last fifth, but CRITERIA 9 reads flattening on the watched curve (the validation loss when
# logged, as CRITERIA 6 does and both corpus readers apply it), and its validation tail improves
# its best by 0.3 %; it was inconclusive while healthy asked both curves to have flattened.
# Held out: made and labelled (by reading their curves) after the thresholds were frozen,
# never used to tune them; benchmarks/diagnosis_labels.py reports them on their own.
HELD_OUT: dict[str, tuple[str, dict, list[str]]] = {
    "heldout_wine_adam": (
        "wine_random_search",
        {
            **_NO_STOP,
            "optimizer.name": "adam",
            "optimizer.learning_rate": 0.001,
            "batch_size": 16,
            "epochs": 60,
        },
        ["lr_too_high"],
    ),
    "heldout_healthy_digits_seed3": (
        "digits_mlp",
        {"epochs": 30, "regularization.early_stopping": None, "seed": 3},
        ["healthy"],
    ),
    "heldout_big_model_wine": (
        "wine_random_search",
        {
            **_NO_STOP,
            "data.source.subsample": 40,
            "n_train": 40,
            "optimizer.name": "adam",
            "optimizer.learning_rate": 0.001,
            "batch_size": 8,
            "model.units": 512,
            "model.hidden_layers": 3,
            "model.dropout": 0.0,
            "epochs": 150,
        },
        ["overfitting"],
    ),
    "heldout_lr_high_breast_cancer": (
        "breast_cancer_binary",
        {**_NO_STOP, "optimizer.learning_rate": 0.1, "epochs": 40},
        ["dead_units", "diverged", "exploding_gradients", "lr_too_high"],
    ),
    "heldout_lr_low_breast_cancer": (
        "breast_cancer_binary",
        {**_NO_STOP, "optimizer.name": "sgd", "optimizer.learning_rate": 0.0001, "epochs": 40},
        ["lr_too_low"],
    ),
    "heldout_diverge_breast_cancer": (
        "breast_cancer_binary",
        {**_NO_STOP, "optimizer.name": "sgd", "optimizer.learning_rate": 20.0, "epochs": 20},
        ["diverged", "exploding_gradients", "inconclusive", "lr_too_high"],
    ),
    "heldout_short_breast_cancer": (
        "breast_cancer_binary",
        {**_NO_STOP, "optimizer.learning_rate": 0.0001, "epochs": 8},
        ["not_converged"],
    ),
    "heldout_underfit_digits_3units": (
        "digits_mlp",
        {
            **_NO_STOP,
            "model.units": 3,
            "model.hidden_layers": 1,
            "model.dropout": 0.0,
            "optimizer.learning_rate": 0.01,
            "epochs": 60,
            "seed": 2,
        },
        ["underfitting"],
    ),
}


def run_one(name: str, show: bool) -> dict:
    from diagnosis_support import example_plan

    from advisor.contract.errors import EngineError
    from advisor.workflows.running import run

    base, changes, labels = {**RUNS, **HELD_OUT}[name]
    plan = example_plan(base, changes)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run(plan, out_dir=Path(tmp) / name)
        except EngineError as err:  # a diverged run still writes its history
            print(f"{name}: {err}", file=sys.stderr)
        target = OUT / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        shutil.copy(Path(tmp) / name / "plan.json", target / "plan.json")
        history = json.loads((Path(tmp) / name / "history.json").read_text())
        history["source"]["path"] = None  # not the temporary folder it was written in
        (target / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    if show:
        series = json.loads((target / "history.json").read_text())["series"]
        for key in (
            "loss",
            "val_loss",
            "accuracy",
            "val_accuracy",
            "grad_norm_first",
            "grad_norm_last",
            "dead_fraction",
        ):
            if key in series:
                print(f"  {key}:", [None if v is None else float(f"{v:.3g}") for v in series[key]])
    task, n_classes = plan.task, plan.n_classes
    return {"labels": sorted(labels), "task": task, "n_classes": n_classes, "kind": name}


def main(argv: list[str]) -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    names = [a for a in argv if not a.startswith("-")] or list(RUNS)
    labels_path = HERE / "engine_labels.json"
    labels = json.loads(labels_path.read_text()) if labels_path.exists() else {}
    for name in names:
        labels[f"engine/{name}/history.json"] = run_one(
            name, show="--show" in argv or len(names) == 1
        )
    labels = {k: v for k, v in labels.items() if k.split("/")[1] in {**RUNS, **HELD_OUT}}
    labels_path.write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(names)} run(s); {len(labels)} engine histories labelled")


if __name__ == "__main__":
    main(sys.argv[1:])
