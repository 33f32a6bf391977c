"""Malformed inputs for every command and API entry point, one builder per class of issue 16.

A ``Case`` writes its input files into a fresh folder and returns the command
line (for the CLI) or a function of no arguments (for the Python API).
``CORPUS`` holds the hand-made cases, each one instance of a class of input
that once ended in a traceback, a hang or a crash; ``mutants(n, seed)``
derives ``n`` more by mutating valid example files (values, structure and
bytes), for the benchmark.  The expectations are the same for all of them:
exit 0 (the input happens to be valid) or one ``error:`` line with exit 2
(exit 1 only for an engine error such as a diverged run), no traceback, no
file written on error, done within the time bound.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

Build = Callable[[Path], "list[str] | Callable[[], Any]"]


@dataclass(frozen=True)
class Case:
    """One input: ``build(folder)`` writes files there and returns argv or an API call."""

    name: str
    klass: str  # the class of the issue this case belongs to
    command: str  # the CLI command, or "api:<function>"
    build: Build
    expect_error: bool = True  # hand-made cases are invalid; mutants may turn out valid
    tags: tuple[str, ...] = field(default=())


# ----------------------------------------------------------------------------- documents


def example(relative: str) -> Any:
    return json.loads((EXAMPLES / relative).read_text())


def tiny_plan() -> dict:
    """A plan that trains in a moment when a mutant happens to be valid."""
    plan = example("plans/iris_tiny.json")
    plan["epochs"] = 1
    plan["regularization"]["early_stopping"] = None
    return plan


def tiny_search_plan() -> dict:
    plan = example("plans/wine_random_search.json")
    plan["epochs"] = 1
    plan["search"]["n_trials"] = 2
    plan["search"]["epochs_per_trial"] = 1
    plan["search"]["pruner"] = "none"
    plan["regularization"]["early_stopping"] = None
    return plan


def native_history() -> dict:
    return example("histories/engine_digits_overfit/history.json")


def hf_history() -> dict:
    return example("histories/hf_trainer_state_underfitting.json")


def keras_history() -> dict:
    return {"loss": [0.9, 0.6, 0.5, 0.45], "val_loss": [1.0, 0.8, 0.75, 0.8]}


def write(folder: Path, name: str, content: str | bytes | Any) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    return path


def deep(levels: int, leaf: Any = 1) -> str:
    return "[" * levels + json.dumps(leaf) + "]" * levels


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and holds no pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + end


def safetensors_bytes(tensors: dict[str, list[float]], metadata: dict | None = None) -> bytes:
    """A safetensors file written by hand (so keys can be anything, e.g. both leaf and prefix)."""
    header: dict[str, Any] = {}
    data = b""
    for key, values in tensors.items():
        raw = struct.pack(f"<{len(values)}f", *values)
        header[key] = {
            "dtype": "F32",
            "shape": [len(values)],
            "data_offsets": [len(data), len(data) + len(raw)],
        }
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def fifo(folder: Path, name: str) -> Path:
    path = folder / name
    os.mkfifo(path)
    return path


def symlink_loop(folder: Path, name: str) -> Path:
    a, b = folder / name, folder / (name + ".other")
    os.symlink(b.name, a)
    os.symlink(a.name, b)
    return a


RULE = """
[fuzz_rule]
domain = "recommend"
priority = 1
when = [{ fact = "n_train", gt = 0 }]
recommend = { "epochs" = %s }
reason = "a fuzzing case"
source = "issue 16"
"""


# ----------------------------------------------------------------------------- hand-made cases


def _cli(name: str, klass: str, command: str, build: Build, **kw) -> Case:
    return Case(name, klass, command, build, **kw)


def _json_cases() -> list[Case]:
    cases = []
    for _doc, command, argv in (
        ("profile", "recommend", lambda p: ["recommend", str(p), "-o", "plan.json"]),
        ("plan", "explain", lambda p: ["explain", str(p)]),
        ("plan", "run", lambda p: ["run", str(p), "--out", "out"]),
        ("plan", "search", lambda p: ["search", str(p), "--out", "out", "--quiet"]),
        ("plan", "lr-find", lambda p: ["lr-find", str(p), "--out", "out"]),
        ("plan", "pretrain", lambda p: ["pretrain", str(p)]),
        ("history", "diagnose", lambda p: ["diagnose", str(p), "-o", "next.json"]),
    ):
        bodies = {
            "deep": deep(5000),
            "deep-object": '{"a":' * 3000 + "1" + "}" * 3000,
            "nested-100": deep(100),
            "huge-int": '{"n_train": ' + "9" * 5000 + "}",
            "int-4200-digits": "[" + "7" * 4200 + "]",
            "top-level-list": "[1, 2, 3]",
            "empty": "",
            "not-utf8": b'{"task": "\xff\xfe"}',
            "truncated": '{"task": "multiclass", "modality": ',
            "nan-only": "NaN",
            "bom": "\ufeff{}",
        }
        for label, body in bodies.items():
            cases.append(
                _cli(
                    f"json/{label}/{command}",
                    "json",
                    command,
                    lambda f, body=body, argv=argv: argv(write(f, "input.json", body)),
                )
            )
    return cases


def _number_cases() -> list[Case]:
    plan = tiny_plan()
    profile = example("profiles/iris_tiny.json")
    cases = []
    edits = {
        "lr-infinity": ("optimizer", "learning_rate", "Infinity"),
        "lr-nan": ("optimizer", "learning_rate", "NaN"),
        "lr-1e999": ("optimizer", "learning_rate", "1e999"),
        "lr-negative": ("optimizer", "learning_rate", "-0.1"),
        "dropout-1": ("model", "dropout", "1.0"),
        "batch-huge": (None, "batch_size", "1" + "0" * 30),
        "epochs-huge": (None, "epochs", "1" + "0" * 12),
        "units-huge": ("model", "units", "1" + "0" * 15),
        "seed-huge": (None, "seed", "1" + "0" * 20),
        "seed-negative": (None, "seed", "-1"),
        "huber-delta-0": ("loss", None, '{"name": "huber", "params": {"delta": 0}, "terms": []}'),
        "weight-inf": (
            "loss",
            None,
            '{"name": "sparse_categorical_crossentropy", "terms": '
            '[{"name": "focal", "weight": Infinity}]}',
        ),
    }
    for label, (section, key, literal) in edits.items():
        doc = copy.deepcopy(plan)
        marker = "__FUZZ__"
        if key is None:
            doc[section] = marker
        elif section is None:
            doc[key] = marker
        else:
            doc[section][key] = marker
        text = json.dumps(doc).replace(f'"{marker}"', literal)
        for command, argv in (
            ("explain", lambda p: ["explain", str(p)]),
            ("run", lambda p: ["run", str(p), "--out", "out"]),
        ):
            cases.append(
                _cli(
                    f"numbers/{label}/{command}",
                    "numbers",
                    command,
                    lambda f, text=text, argv=argv: argv(write(f, "plan.json", text)),
                )
            )
    for label, (key, value) in {
        "million-counts": ("class_counts", [1] * 1_000_000),
        "n-train-inf": ("n_train", math.inf),
        "input-shape-huge": ("input_shape", [10**6, 10**6, 3]),
        "image-side-huge": (
            "data",
            {"kind": "builtin", "name": "shapes", "image_size": [60000, 60000]},
        ),
        "long-data-kind": ("data", {"kind": "k" * 10_000}),
        "long-unknown-key": ("x" * 10_000, 1),
        "negative-class-id": ("data", {"kind": "builtin", "name": "digits", "classes": [-1, 2]}),
    }.items():
        doc = {**profile, key: value}
        cases.append(
            _cli(
                f"numbers/{label}/recommend",
                "numbers",
                "recommend",
                lambda f, doc=doc: [
                    "recommend",
                    str(write(f, "profile.json", json.dumps(doc))),
                    "-o",
                    "plan.json",
                ],
            )
        )
    for label, extra in {
        "max-lr-inf": ["--max-lr", "inf"],
        "max-lr-nan": ["--max-lr", "nan"],
        "min-lr-zero": ["--min-lr", "0"],
        "points-100000": ["--points", "100000"],
        "seeds-huge": ["--seeds", "100000"],
        "steps-huge": ["--steps", "10000000000"],
    }.items():
        cases.append(
            _cli(
                f"numbers/{label}/lr-find",
                "numbers",
                "lr-find",
                lambda f, extra=extra: ["lr-find", str(write(f, "plan.json", tiny_plan())), *extra],
            )
        )
    for label, extra in {
        "image-size-huge": ["--image-size", "60000x60000"],
        "image-size-unicode-digits": ["--image-size", "\u00b2x\u00b2"],
        "image-size-zero": ["--image-size", "0x8"],
        "classes-negative": ["--classes", "-1,2"],
        "classes-huge": ["--classes", "9" * 5000],
        "n-samples-huge": ["--n-samples", "100000000000"],
    }.items():
        cases.append(
            _cli(
                f"numbers/{label}/profile",
                "numbers",
                "profile",
                lambda f, extra=extra: ["profile", "builtin:shapes", *extra, "-o", "profile.json"],
            )
        )
    cases.append(
        _cli(
            "numbers/workers-huge/search",
            "numbers",
            "search",
            lambda f: [
                "search",
                str(write(f, "plan.json", tiny_search_plan())),
                "--workers",
                "100000",
            ],
        )
    )
    return cases


def _data_cases() -> list[Case]:
    cases = []

    def csv_case(
        label: str, body: str | bytes, target: str = "y", extra: tuple[str, ...] = ()
    ) -> Case:
        return _cli(
            f"data/{label}/profile",
            "data",
            "profile",
            lambda f: [
                "profile",
                str(write(f, "data.csv", body)),
                "--target",
                target,
                *extra,
                "-o",
                "profile.json",
            ],
        )

    cases += [
        csv_case("csv-not-utf8", b"a,y\n1,\xff\n2,\xfe\n"),
        csv_case("csv-short-row", "a,b,y\n1,2,0\n3\n4,5,1\n"),
        csv_case("csv-long-row", "a,y\n1,0,7,8\n2,1\n"),
        csv_case("csv-128k-field", "a,y\n" + "1" * (200 * 1024) + ",0\n2,1\n"),
        csv_case("csv-quote-128k", 'a,y\n"' + "x" * (200 * 1024) + ",0\n"),
        csv_case("csv-nul", "a,y\n1\x00,0\n2,1\n"),
        csv_case("csv-header-only", "a,y\n"),
        csv_case("csv-empty", ""),
        csv_case("csv-missing-target", "a,b\n1,2\n3,4\n"),
        csv_case("csv-text-features", "a,y\nhello,0\nworld,1\n"),
        csv_case("csv-inf", "a,y\ninf,0\nnan,1\n1e999,0\n"),
    ]
    for label, body in {
        "npz-empty": b"",
        "npz-corrupt": b"PK\x03\x04" + os.urandom(64),
        "npz-text": b"x,y\n1,2\n",
    }.items():
        cases.append(
            _cli(
                f"data/{label}/profile",
                "data",
                "profile",
                lambda f, body=body: [
                    "profile",
                    str(write(f, "data.npz", body)),
                    "-o",
                    "profile.json",
                ],
            )
        )

    def npz_no_y(f: Path) -> list[str]:
        import numpy as np

        np.savez(f / "data.npz", x=np.zeros((4, 2)))
        return ["profile", str(f / "data.npz"), "-o", "profile.json"]

    def npz_object(f: Path) -> list[str]:
        import numpy as np

        np.savez(f / "data.npz", x=np.array(["a", "b"]), y=np.array([0, 1]))
        return ["profile", str(f / "data.npz"), "-o", "profile.json"]

    def npz_mismatch(f: Path) -> list[str]:
        import numpy as np

        np.savez(f / "data.npz", x=np.zeros((4, 2)), y=np.zeros(3))
        return ["profile", str(f / "data.npz"), "-o", "profile.json"]

    cases += [
        _cli("data/npz-no-y/profile", "data", "profile", npz_no_y),
        _cli("data/npz-strings/profile", "data", "profile", npz_object),
        _cli("data/npz-length-mismatch/profile", "data", "profile", npz_mismatch),
    ]

    def image_folder(body: bytes, name: str = "a.png") -> Build:
        def build(f: Path) -> list[str]:
            write(f, f"images/cat/{name}", body)
            write(f, "images/dog/b.png", png_header(4, 4))
            return ["profile", str(f / "images"), "--image-size", "8x8", "-o", "profile.json"]

        return build

    cases += [
        _cli(
            "data/image-60000x60000/profile",
            "data",
            "profile",
            image_folder(png_header(60000, 60000)),
        ),
        _cli(
            "data/image-truncated/profile", "data", "profile", image_folder(png_header(4, 4)[:20])
        ),
        _cli("data/image-not-an-image/profile", "data", "profile", image_folder(b"hello")),
        _cli(
            "data/image-no-size/profile",
            "data",
            "profile",
            lambda f: [
                "profile",
                str(write(f, "images/cat/a.png", png_header(4, 4)).parent.parent),
                "-o",
                "p.json",
            ],
        ),
    ]
    return cases


def _base_cases() -> list[Case]:
    cases = []
    bodies = {
        "safetensors-empty": b"",
        "safetensors-short": b"\x08\x00\x00\x00",
        "safetensors-header-huge": struct.pack("<Q", 2**62) + b"{}",
        "safetensors-header-not-json": struct.pack("<Q", 8) + b"not json",
        "safetensors-leaf-and-prefix": safetensors_bytes(
            {"conv1.weight": [0.0], "conv1.weight.x": [1.0]}
        ),
    }
    for label, body in bodies.items():
        cases.append(
            _cli(
                f"bases/{label}/import-base",
                "bases",
                "import-base",
                lambda f, body=body: [
                    "import-base",
                    str(write(f, "w.safetensors", body)),
                    "-o",
                    "out",
                ],
            )
        )
    for label, name in {
        "timm-slash": "timm:../../etc/passwd",
        "timm-query": "timm:resnet?x=1",
        "timm-space": "timm:res net",
        "torchvision-unknown": "torchvision:vgg99",
    }.items():
        cases.append(
            _cli(
                f"bases/{label}/import-base",
                "security",
                "import-base",
                lambda f, name=name: ["import-base", name, "-o", "out"],
            )
        )

    def project_checkpoint(weights: bytes, structure: str | None) -> Build:
        def build(f: Path) -> list[str]:
            write(f, "base/model.safetensors", weights)
            if structure is not None:
                write(f, "base/model.json", structure)
            plan = tiny_plan()
            plan["model"]["base"] = "base"
            plan["freeze"]["strategy"] = "full_fine_tune"
            return ["run", str(write(f, "plan.json", plan)), "--out", "out"]

        return build

    for label, base in {
        "dev-zero": lambda f: "/dev/zero",
        "fifo": lambda f: str(fifo(f, "w.safetensors")),
        "timm-slash": lambda f: "timm:../x",
        "empty-safetensors": lambda f: str(write(f, "w.safetensors", b"")),
        "folder-without-weights": lambda f: str(f),
    }.items():
        cases.append(
            _cli(
                f"bases/profile-base-{label}/profile",
                "bases",
                "profile",
                lambda f, base=base: [
                    "profile",
                    "builtin:digits",
                    "--subsample",
                    "60",
                    "--base",
                    base(f),
                ],
            )
        )
    fmt = {"format": "advisor-checkpoint-1"}
    for label, weights, structure in (
        ("checkpoint-empty", b"", None),
        (
            "checkpoint-model-json-not-json",
            safetensors_bytes({"params/base/w": [1.0]}, fmt),
            "{not json",
        ),
        ("checkpoint-model-json-list", safetensors_bytes({"params/base/w": [1.0]}, fmt), "[1, 2]"),
        (
            "checkpoint-model-json-deep",
            safetensors_bytes({"params/base/w": [1.0]}, fmt),
            deep(5000),
        ),
        (
            "checkpoint-leaf-and-prefix",
            safetensors_bytes({"params/base": [1.0], "params/base/w": [1.0]}, fmt),
            "{}",
        ),
    ):
        cases.append(
            _cli(f"bases/{label}/run", "bases", "run", project_checkpoint(weights, structure))
        )
    return cases


def _history_cases() -> list[Case]:
    cases = []
    native = native_history()
    bad = {
        "epoch-inf": '{"source": {"format": "native"}, "epochs": [1, Infinity], '
        '"series": {"loss": [1, 2]}}',
        "epoch-nan": '{"source": {"format": "native"}, "epochs": [NaN], "series": {"loss": [1]}}',
        "epoch-float": '{"source": {"format": "native"}, "epochs": [1.5], "series": {"loss": [1]}}',
        "denormals": json.dumps(
            {"loss": [5e-324, 1e-320, 2.2e-308, 0.0], "val_loss": [5e-324, 5e-324, 1e-310, 1e-300]}
        ),
        "huge-values": json.dumps(
            {"loss": [1e308, 1.7e308, 1e308], "val_loss": [1e308, 1e308, 1e308]}
        ),
        "series-string": json.dumps({"loss": ["a", "b"], "val_loss": [1, 2]}),
        "series-nested": json.dumps({"loss": [[1], [2]], "val_loss": [{"a": 1}, 2]}),
        "series-bool": json.dumps({"loss": [True, False], "val_loss": [1, 2]}),
        "native-wrong-types": json.dumps({**native, "epochs": "1-60"}),
        "native-misaligned": json.dumps({**native, "epochs": [1, 2]}),
        "hf-log-history-not-list": json.dumps({**hf_history(), "log_history": {"a": 1}}),
        "hf-entries-strings": json.dumps({**hf_history(), "log_history": ["x", "y"]}),
        "inf-everywhere": '{"loss": [Infinity, -Infinity, NaN], "val_loss": [NaN, NaN, NaN]}',
        "million-epochs-text": "epoch,loss\n" + "".join(f"{i},1\n" for i in range(0, 200_000)),
        "csv-not-utf8": b"epoch,loss,val_loss\n0,\xff,1\n1,2,3\n",
        "csv-128k-field": "epoch,loss,val_loss\n0," + "1" * (200 * 1024) + ",1\n1,2,3\n",
        "csv-short-rows": "epoch,loss,val_loss\n0,1\n1\n2,3,4\n",
        "log-huge-epoch": "Epoch " + "9" * 5000 + "\nloss: 0.5 - val_loss: 0.6\n",
        "log-epoch-inf": "Epoch inf/10\nloss: nan - val_loss: inf\n",
    }
    valid = {
        "denormals",
        "huge-values",
        "series-string",
        "series-bool",
        "inf-everywhere",
        "million-epochs-text",
        "csv-short-rows",
    }  # read with the bad cells skipped and said so
    for label, body in bad.items():
        suffix = (
            ".csv"
            if label.startswith(("csv", "million"))
            else ".log"
            if label.startswith("log")
            else ".json"
        )
        cases.append(
            _cli(
                f"history/{label}/diagnose",
                "history",
                "diagnose",
                lambda f, body=body, suffix=suffix: [
                    "diagnose",
                    str(write(f, "history" + suffix, body)),
                ],
                expect_error=label not in valid,
            )
        )
    cases.append(
        _cli(
            "history/plan-with-nan/diagnose",
            "history",
            "diagnose",
            lambda f: [
                "diagnose",
                str(write(f, "h.json", keras_history())),
                "--plan",
                str(write(f, "p.json", json.dumps(tiny_plan()).replace("0.1", "NaN", 1))),
            ],
        )
    )
    return cases


def _rule_cases() -> list[Case]:
    cases = []

    def rules(argv_tail: list[str]) -> list[list[str]]:
        return [
            ["rules", "check", *argv_tail],
            ["rules", "list", *argv_tail],
            ["recommend", str(EXAMPLES / "profiles/iris_tiny.json"), *argv_tail, "-o", "plan.json"],
        ]

    bodies: dict[str, str | bytes] = {
        "not-utf8": b'[r]\nreason = "\xff"\n',
        "not-toml": "[[[",
        "list-for-fact": RULE.replace('fact = "n_train"', 'fact = ["n_train", "n_val"]') % "1",
        "list-for-when": RULE.replace('when = [{ fact = "n_train", gt = 0 }]', "when = 3") % "1",
        "log10-zero": RULE % '{ log10 = [{ sub = ["n_train", "n_train"] }] }',
        "div-zero": RULE % '{ div = ["n_train", { sub = ["n_train", "n_train"] }] }',
        "sqrt-negative": RULE % '{ sqrt = [{ sub = [0, "n_train"] }] }',
        "overflow": RULE % '{ mul = ["n_train", 1e308, 1e308] }',
        "list-operand": RULE % '{ add = ["input_shape", 1] }',
        "rule-not-table": "fuzz = 3\n",
        "deep-arrays": "x = " + "[" * 3000 + "]" * 3000 + "\n",
        "unknown-fact": RULE.replace('"n_train"', '"no_such_fact"') % "1",
    }
    parses = {"log10-zero", "div-zero", "sqrt-negative", "overflow", "list-operand", "unknown-fact"}
    for label, body in bodies.items():
        for argv in rules(["--rules", "RULES"]):
            # `rules list` only parses; an unknown fact is a lint error, not a recommend error
            valid = (argv[1] == "list" and label in parses) or (
                argv[0] == "recommend" and label == "unknown-fact"
            )
            cases.append(
                _cli(
                    f"rules/{label}/{_short_command(argv)}",
                    "rules",
                    _short_command(argv),
                    lambda f, body=body, argv=argv: _fill(argv, write(f, "team.toml", body)),
                    expect_error=not valid,
                )
            )
    for label, make in {
        "folder-named-toml": lambda f: (f / "team" / "x.toml").mkdir(parents=True) or f / "team",
        "symlink-loop": lambda f: (
            (f / "team").mkdir() or symlink_loop(f / "team", "x.toml") and f / "team"
        ),
        "symlink-loop-direct": lambda f: symlink_loop(f, "x.toml"),
        "fifo": lambda f: fifo(f, "x.toml"),
        "dev-zero": lambda f: Path("/dev/zero"),
    }.items():
        for argv in rules(["--rules", "RULES"]):
            cases.append(
                _cli(
                    f"rules/{label}/{_short_command(argv)}",
                    "rules",
                    _short_command(argv),
                    lambda f, make=make, argv=argv: _fill(argv, make(f)),
                )
            )
    return cases


def _fill(argv: list[str], path: Path) -> list[str]:
    """``argv`` with the placeholder RULES replaced by ``path`` (made once, before)."""
    return [str(path) if a == "RULES" else a for a in argv]


def _short_command(argv: list[str]) -> str:
    return " ".join(argv[:2]) if argv[0] == "rules" else argv[0]


def _path_cases() -> list[Case]:
    cases = []
    inputs = {
        "fifo": lambda f: fifo(f, "input.json"),
        "dev-zero": lambda f: Path("/dev/zero"),
        "dev-null": lambda f: Path("/dev/null"),
        "folder": lambda f: (f / "folder.json").mkdir() or f / "folder.json",
        "symlink-loop": lambda f: symlink_loop(f, "input.json"),
        "missing": lambda f: f / "missing.json",
        "proc-file": lambda f: Path("/proc/self/status"),
    }
    for label, make in inputs.items():
        for command, argv in (
            ("recommend", lambda p: ["recommend", str(p), "-o", "plan.json"]),
            ("explain", lambda p: ["explain", str(p)]),
            ("diagnose", lambda p: ["diagnose", str(p), "-o", "next.json"]),
            ("run", lambda p: ["run", str(p), "--out", "out"]),
            ("lr-find", lambda p: ["lr-find", str(p)]),
            ("search", lambda p: ["search", str(p), "--out", "out"]),
            ("profile", lambda p: ["profile", str(p), "--target", "y", "-o", "profile.json"]),
            ("import-base", lambda p: ["import-base", str(p), "-o", "out"]),
            ("pretrain", lambda p: ["pretrain", str(p)]),
        ):
            cases.append(
                _cli(
                    f"paths/{label}/{command}",
                    "paths",
                    command,
                    lambda f, make=make, argv=argv: argv(make(f)),
                )
            )
    profile = str(EXAMPLES / "profiles/iris_tiny.json")
    outputs = {
        "under-a-file": lambda f: str(write(f, "file.txt", "x") / "plan.json"),
        "is-a-folder": lambda f: (f / "outdir").mkdir() or str(f / "outdir"),
        "proc": lambda f: "/proc/self/plan.json",
        "dev-full-parent": lambda f: "/dev/null/plan.json",
    }
    for label, make in outputs.items():
        cases.append(
            _cli(
                f"paths/output-{label}/recommend",
                "paths",
                "recommend",
                lambda f, make=make: ["recommend", profile, "-o", make(f)],
            )
        )
        cases.append(
            _cli(
                f"paths/output-{label}/diagnose",
                "paths",
                "diagnose",
                lambda f, make=make: [
                    "diagnose",
                    str(write(f, "h.json", keras_history())),
                    "-o",
                    make(f),
                ],
            )
        )
        cases.append(
            _cli(
                f"paths/output-{label}/profile",
                "paths",
                "profile",
                lambda f, make=make: ["profile", "builtin:iris", "-o", make(f)],
            )
        )
    cases.append(
        _cli(
            "paths/output-equals-input/recommend",
            "paths",
            "recommend",
            lambda f: [
                "recommend",
                str(write(f, "p.json", example("profiles/iris_tiny.json"))),
                "-o",
                str(f / "p.json"),
            ],
        )
    )
    cases.append(
        _cli(
            "paths/output-equals-input/diagnose",
            "paths",
            "diagnose",
            lambda f: [
                "diagnose",
                str(write(f, "h.json", keras_history())),
                "-o",
                str(f / "h.json"),
            ],
        )
    )
    for label, storage in {
        "under-a-file": lambda f: str(write(f, "file.txt", "x") / "j.journal"),
        "unknown-scheme": lambda f: "bogus://x",
        "sqlite-unwritable": lambda f: "sqlite:////proc/self/x.db",
    }.items():
        cases.append(
            _cli(
                f"paths/storage-{label}/search",
                "paths",
                "search",
                lambda f, storage=storage: [
                    "search",
                    str(write(f, "plan.json", tiny_search_plan())),
                    "--out",
                    "out",
                    "--quiet",
                    "--storage",
                    storage(f),
                ],
            )
        )
    for label, name in {
        "empty": "",
        "dots": "....",
        "long": "x" * 100_000,
        "nul": "a\x01b",
    }.items():
        cases.append(
            _cli(
                f"paths/explain-field-{label}/explain",
                "paths",
                "explain",
                lambda f, name=name: ["explain", str(EXAMPLES / "plans/iris_tiny.json"), name],
            )
        )
    cases.append(
        _cli(
            "paths/run-out-is-file/run",
            "paths",
            "run",
            lambda f: [
                "run",
                str(write(f, "plan.json", tiny_plan())),
                "--out",
                str(write(f, "o", "x")),
            ],
        )
    )
    return cases


def _security_cases() -> list[Case]:
    def outside_root(f: Path) -> list[str]:
        plan = tiny_plan()
        plan["data"]["source"] = {"kind": "csv", "path": "/etc/passwd", "target": "root"}
        (f / "root").mkdir()
        return [
            "--data-root",
            str(f / "root"),
            "run",
            str(write(f, "root/plan.json", plan)),
            "--out",
            "out",
        ]

    def system_file_as_csv(f: Path) -> list[str]:
        return ["profile", "/etc/passwd", "--target", "y", "-o", "profile.json"]

    def system_file_in_plan(f: Path) -> list[str]:
        plan = tiny_plan()
        plan["data"]["source"] = {"kind": "csv", "path": "/etc/passwd", "target": "y"}
        return ["run", str(write(f, "plan.json", plan)), "--out", "out"]

    return [
        _cli("security/data-outside-root/run", "security", "run", outside_root, tags=("no-echo",)),
        _cli(
            "security/system-file-as-csv/profile",
            "security",
            "profile",
            system_file_as_csv,
            tags=("no-echo",),
        ),
        _cli(
            "security/system-file-in-plan/run",
            "security",
            "run",
            system_file_in_plan,
            tags=("no-echo",),
        ),
    ]


def _api_cases() -> list[Case]:
    import advisor

    wrong: dict[str, Any] = {
        "int": 3,
        "float": 3.5,
        "none": None,
        "list": [1, 2],
        "bytes": b"{}",
        "object": object(),
        "empty-dict": {},
        "deep-dict": {"loss": [[[[1]]]]},
        "nan-dict": {"loss": [math.nan], "val_loss": [math.inf]},
        "dev-zero": "/dev/zero",
        "folder": "EMPTY_FOLDER",  # the case's own folder, empty
        "nul-in-name": "a\x00b.json",
    }
    cases = []
    for function in (
        "recommend",
        "diagnose",
        "explain",
        "load_profile",
        "load_plan",
        "load_history",
        "run",
        "search",
    ):
        for label, value in wrong.items():
            if function in ("run", "search") and label in ("empty-dict",):
                continue

            def build(f: Path, function=function, value=value):
                value = str(f) if value == "EMPTY_FOLDER" else value
                return lambda: getattr(advisor, function)(value)

            valid = label == "nan-dict" and function in (
                "diagnose",
                "load_history",
            )  # a diverged run
            cases.append(
                Case(
                    f"api/{label}/{function}",
                    "paths",
                    f"api:{function}",
                    build,
                    expect_error=not valid,
                )
            )
    cases.append(
        Case(
            "api/diagnose-plan-int/diagnose",
            "paths",
            "api:diagnose",
            lambda f: lambda: advisor.diagnose(keras_history(), 3),
        )
    )
    cases.append(
        Case(
            "api/recommend-rules-int/recommend",
            "paths",
            "api:recommend",
            lambda f: (
                lambda: advisor.recommend(str(EXAMPLES / "profiles/iris_tiny.json"), rules_dirs=3)
            ),
        )
    )
    cases.append(
        Case(
            "api/explain-field-int/explain",
            "paths",
            "api:explain",
            lambda f: (
                lambda: advisor.explain(
                    advisor.recommend(str(EXAMPLES / "profiles/iris_tiny.json")), 3
                )
            ),
        )
    )
    return cases


def corpus() -> list[Case]:
    """Every hand-made case, in a fixed order."""
    return [
        *_json_cases(),
        *_number_cases(),
        *_data_cases(),
        *_base_cases(),
        *_history_cases(),
        *_rule_cases(),
        *_path_cases(),
        *_security_cases(),
        *_api_cases(),
    ]


# ----------------------------------------------------------------------------- mutants


ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**31,
    -(2**63),
    10**30,
    0.0,
    -0.0,
    5e-324,
    1e308,
    -1e308,
    math.nan,
    math.inf,
    -math.inf,
    "",
    "x",
    "NaN",
    "1e999",
    "\u0000",
    "\udc80".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    "a" * 10_000,
    [],
    [1],
    [None],
    [[[]]],
    {},
    {"a": 1},
    [1.5, "x"],
    list(range(50_000)),
]


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc[:20]):
            out += _paths(value, (*prefix, index))
    return out


def _set(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


def _delete(doc: Any, path: tuple) -> Any:
    if not path:
        return doc
    node = doc
    for part in path[:-1]:
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    elif isinstance(node, list) and node:
        node.pop(path[-1])
    return doc


def mutate_doc(doc: Any, rng: random.Random) -> str:
    """One mutation of a JSON document: a value, the structure, or the bytes."""
    doc = copy.deepcopy(doc)
    paths = _paths(doc)
    kind = rng.choice(["value", "value", "value", "delete", "add", "nest", "text"])
    path = rng.choice(paths)
    if kind == "value":
        doc = _set(doc, path, copy.deepcopy(rng.choice(ODD_VALUES)))
    elif kind == "delete":
        doc = _delete(doc, path)
    elif kind == "add":
        target = rng.choice([p for p in paths if _get(doc, p, dict)] or [()])
        node = _get(doc, target, dict)
        if isinstance(node, dict):
            node[rng.choice(["extra", "learning_rate", "epochs", "x" * 300])] = rng.choice(
                ODD_VALUES[:20]
            )
    elif kind == "nest":
        doc = _set(doc, path, json.loads(deep(rng.choice([2, 70, 900]))))
    text = json.dumps(doc, allow_nan=True)
    if kind == "text":
        cut = rng.randrange(len(text) + 1)
        text = rng.choice(
            [
                text[:cut],
                text[:cut] + "\ufffd" + text[cut:],
                text[:cut] + "}" + text[cut:],
                text.replace("1", "1" * rng.choice([50, 5000]), 1),
            ]
        )
    return text


def _get(doc: Any, path: tuple, kind: type) -> Any:
    node = doc
    try:
        for part in path:
            node = node[part]
    except (KeyError, IndexError, TypeError):
        return None
    return node if isinstance(node, kind) else None


def mutate_text(text: str, rng: random.Random) -> bytes:
    """A byte-level mutation of a text file (CSV, log, TOML)."""
    data = text.encode()
    kind = rng.choice(["cut", "flip", "insert", "long", "bad-utf8", "row"])
    at = rng.randrange(len(data) + 1)
    if kind == "cut":
        return data[:at]
    if kind == "flip" and data:
        at = min(at, len(data) - 1)
        return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1 :]
    if kind == "insert":
        return (
            data[:at]
            + rng.choice([b",", b"\n", b'"', b"nan", b"inf", b"-", b"\x00", b"[", b"="])
            + data[at:]
        )
    if kind == "long":
        return data[:at] + b"9" * rng.choice([400, 5000, 140_000]) + data[at:]
    if kind == "bad-utf8":
        return data[:at] + b"\xff\xfe" + data[at:]
    lines = data.split(b"\n")
    row = rng.randrange(len(lines))
    lines[row] = lines[row][: len(lines[row]) // 2]
    return b"\n".join(lines)


def mutants(n: int, seed: int = 0) -> list[Case]:
    """``n`` cases from mutated example files, spread over the commands."""
    rng = random.Random(seed)
    profiles = sorted((EXAMPLES / "profiles").glob("*.json"))
    plans = sorted((EXAMPLES / "plans").glob("*.json"))
    csv_history = (EXAMPLES / "histories/keras_csvlogger_healthy.csv").read_text()
    lightning = (EXAMPLES / "histories/lightning_metrics_diverged.csv").read_text()
    text_log = (EXAMPLES / "histories/keras_console_lr_too_low.log").read_text()
    # the shipped rules under new ids, so that only the mutation can make them wrong
    rule_text = (ROOT / "rules/35_training_config.toml").read_text().replace("\n[", "\n[fuzz_")
    real = ROOT / "tests/data/histories/real"
    real_docs = [json.loads(p.read_text()) for p in sorted(real.glob("*.ipynb"))] + [
        json.loads(p.read_text()) for p in sorted(real.glob("hf_*.json"))
    ]
    real_texts = [
        p.read_text()
        for p in sorted(real.glob("*"))
        if p.suffix in (".md", ".log", ".csv") or p.name.startswith("detectron2")
        if not p.name.endswith(".source.txt")
    ]
    iris_csv = "a,b,c,d,y\n" + "".join(
        f"{i % 7}.1,{i % 3},{i % 5}.5,{i % 2},{i % 3}\n" for i in range(30)
    )
    makers: list[tuple[int, str, Callable[[random.Random], Build]]] = [
        (
            10,
            "recommend",
            lambda r: _doc_build(
                mutate_doc(json.loads(r.choice(profiles).read_text()), r),
                "profile.json",
                lambda p: ["recommend", p, "-o", "plan.json"],
            ),
        ),
        (
            5,
            "explain",
            lambda r: _doc_build(
                mutate_doc(json.loads(r.choice(plans).read_text()), r),
                "plan.json",
                lambda p: ["explain", p],
            ),
        ),
        (
            8,
            "diagnose",
            lambda r: _doc_build(
                mutate_doc(r.choice([native_history(), hf_history(), keras_history()]), r),
                "history.json",
                lambda p: ["diagnose", p, "-o", "next.json"],
            ),
        ),
        (
            6,
            "diagnose",
            lambda r: _doc_build(
                mutate_text(r.choice([csv_history, lightning, text_log]), r),
                "history.txt",
                lambda p: ["diagnose", p, "-o", "next.json"],
            ),
        ),
        (
            3,
            "diagnose",
            lambda r: _doc_build(
                mutate_doc(r.choice(real_docs), r) if real_docs else "{}",
                "history.ipynb",
                lambda p: ["diagnose", p],
            ),
        ),
        (
            3,
            "diagnose",
            lambda r: _doc_build(
                mutate_text(r.choice(real_texts), r) if real_texts else b"",
                "history.txt",
                lambda p: ["diagnose", p],
            ),
        ),
        (
            3,
            "diagnose",
            lambda r: _two_build(
                keras_history(), mutate_doc(json.loads(r.choice(plans).read_text()), r)
            ),
        ),
        (
            5,
            "profile",
            lambda r: _doc_build(
                mutate_text(iris_csv, r),
                "data.csv",
                lambda p: ["profile", p, "--target", "y", "-o", "profile.json"],
            ),
        ),
        (
            3,
            "rules check",
            lambda r: _doc_build(
                mutate_text(rule_text, r), "team.toml", lambda p: ["rules", "check", "--rules", p]
            ),
        ),
        (
            2,
            "run",
            lambda r: _doc_build(
                mutate_doc(tiny_plan(), r), "plan.json", lambda p: ["run", p, "--out", "out"]
            ),
        ),
        (
            1,
            "search",
            lambda r: _doc_build(
                mutate_doc(tiny_search_plan(), r),
                "plan.json",
                lambda p: ["search", p, "--out", "out", "--quiet"],
            ),
        ),
        (
            1,
            "lr-find",
            lambda r: _doc_build(
                mutate_doc(tiny_plan(), r),
                "plan.json",
                lambda p: [
                    "lr-find",
                    p,
                    "--steps",
                    "2",
                    "--points",
                    "3",
                    "--seeds",
                    "2",
                    "--out",
                    "out",
                ],
            ),
        ),
        (
            2,
            "import-base",
            lambda r: _doc_build(
                _mutate_bytes(safetensors_bytes({"conv1.weight": [0.0] * 8}), r),
                "w.safetensors",
                lambda p: ["import-base", p, "-o", "out"],
            ),
        ),
    ]
    weights = [m[0] for m in makers]
    cases = []
    for i in range(n):
        _, command, make = rng.choices(makers, weights)[0]
        case_rng = random.Random(rng.getrandbits(64))
        cases.append(
            Case(f"mutant/{i}/{command}", "mutant", command, make(case_rng), expect_error=False)
        )
    return cases


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    return rng.choice(
        [
            data[:at],
            data[:at] + os.urandom(rng.randrange(1, 9)) + data[at + 8 :],
            data[:8] + data[at:],
            struct.pack("<Q", rng.getrandbits(64)) + data[8:],
        ]
    )


def _doc_build(content: str | bytes, name: str, argv: Callable[[str], list[str]]) -> Build:
    return lambda f: argv(str(write(f, name, content)))


def _two_build(history: Any, plan_text: str) -> Build:
    return lambda f: [
        "diagnose",
        str(write(f, "h.json", history)),
        "--plan",
        str(write(f, "p.json", plan_text)),
        "-o",
        "next.json",
    ]
