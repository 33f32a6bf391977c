"""Write TensorBoard event files with the real ``tensorboard`` writer (no TensorFlow needed).

Run once with a Python that has ``pip install tensorboard``; the files it writes in
real/ are committed, so the tests need neither tensorboard nor this script:

    python tests/data/histories/make_tensorboard_fixture.py

Two runs, as the two common writers lay them out:
- real/tb_pytorch/: one file, ``simple_value`` scalars (what torch's SummaryWriter
  and Lightning's TensorBoardLogger write), tags Loss/train, Loss/val, Accuracy/val,
  step = epoch;
- real/tb_keras/: train/ and validation/ folders, scalars as one-element float
  tensors of the ``scalars`` plugin (what the Keras TensorBoard callback writes),
  tags epoch_loss, epoch_accuracy, epoch_learning_rate.
The values are in real/tb_expected.json for the test to compare with.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

HERE = Path(__file__).parent / "real"
N = 12
LOSS = [round(2.3 * math.exp(-e / 3) + 0.1, 6) for e in range(N)]
VAL = [round(2.3 * math.exp(-e / 3) + 0.25 + 0.01 * max(0, e - 8), 6) for e in range(N)]
ACC = [round(0.1 + 0.85 * (1 - math.exp(-e / 3)), 6) for e in range(N)]
LR = [1e-3 if e < 6 else 1e-4 for e in range(N)]


def simple(tag: str, value: float) -> summary_pb2.Summary.Value:
    return summary_pb2.Summary.Value(tag=tag, simple_value=value)


def tensor(tag: str, value: float) -> summary_pb2.Summary.Value:
    return summary_pb2.Summary.Value(
        tag=tag,
        metadata=scalar_metadata.create_summary_metadata("", ""),
        tensor=tensor_util.make_tensor_proto(value, dtype="float32"),
    )


def write(folder: Path, rows: list[list[summary_pb2.Summary.Value]]) -> None:
    writer = EventFileWriter(str(folder))
    for step, values in enumerate(rows):
        writer.add_event(
            event_pb2.Event(
                step=step, wall_time=1.7e9 + step, summary=summary_pb2.Summary(value=values)
            )
        )
    writer.close()


def main() -> None:
    for name in ("tb_pytorch", "tb_keras"):
        shutil.rmtree(HERE / name, ignore_errors=True)
    write(
        HERE / "tb_pytorch",
        [
            [
                simple("Loss/train", LOSS[e]),
                simple("Loss/val", VAL[e]),
                simple("Accuracy/val", ACC[e]),
            ]
            for e in range(N)
        ],
    )
    write(
        HERE / "tb_keras" / "train",
        [
            [
                tensor("epoch_loss", LOSS[e]),
                tensor("epoch_accuracy", ACC[e]),
                tensor("epoch_learning_rate", LR[e]),
            ]
            for e in range(N)
        ],
    )
    write(HERE / "tb_keras" / "validation", [[tensor("epoch_loss", VAL[e])] for e in range(N)])
    expected = {"loss": LOSS, "val_loss": VAL, "accuracy": ACC, "lr": LR}
    (HERE / "tb_expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
