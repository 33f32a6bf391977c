"""Live logs a run writes as it goes: ``history.csv`` and TensorBoard scalars.

Both files are appended to after each epoch and flushed (``LiveLogCallback``), so ``tail -f`` and
``tensorboard --logdir`` can follow a run while it trains.  The event file is
written without TensorFlow, in the TFRecord framing that
``advisor.readers.tensorboard.tfevents`` reads (length, masked CRC-32C of the length,
serialized ``Event``, masked CRC-32C of the data); each scalar is an ``Event``
with ``wall_time``, ``step`` and one ``Summary.Value`` holding ``tag`` and
``simple_value``.
"""

from __future__ import annotations

import csv
import os
import socket
import struct
import time
from pathlib import Path

from advisor.contract.tfrecord import masked_crc

# ----------------------------------------------------------------------------- protobuf encoding


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _bytes_field(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _varint(len(data)) + data


def _event(wall_time: float, step: int, extra: bytes) -> bytes:
    return _key(1, 1) + struct.pack("<d", wall_time) + _key(2, 0) + _varint(step) + extra


def scalar_event(tag: str, value: float, step: int, wall_time: float) -> bytes:
    """A serialized ``Event`` holding one ``simple_value`` scalar."""
    summary_value = _bytes_field(1, tag.encode("utf-8")) + _key(2, 5) + struct.pack("<f", value)
    summary = _bytes_field(1, summary_value)
    return _event(wall_time, step, _bytes_field(5, summary))


def record(payload: bytes) -> bytes:
    """One TFRecord: framed and checksummed as TensorFlow writes it."""
    header = struct.pack("<Q", len(payload))
    return (
        header
        + struct.pack("<I", masked_crc(header))
        + payload
        + struct.pack("<I", masked_crc(payload))
    )


class EventWriter:
    """Appends scalar events to one ``events.out.tfevents.*`` file in ``logdir``."""

    def __init__(self, logdir: str | Path) -> None:
        logdir = Path(logdir)
        logdir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self.path = logdir / f"events.out.tfevents.{int(now)}.{socket.gethostname()}"
        # the first event names the file version (field 3, file_version), as TensorFlow does
        version = _event(now, 0, _bytes_field(3, b"brain.Event:2"))
        self._file = open(self.path, "ab")  # noqa: SIM115 - held open for the run
        os.chmod(self.path, 0o644)
        self._file.write(record(version))
        self._file.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        now = time.time()
        for tag, value in values.items():
            self._file.write(record(scalar_event(tag, float(value), step, now)))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class CsvLog:
    """``history.csv`` with Keras CSVLogger columns: ``epoch`` then the sorted logs."""

    def __init__(self, path: str | Path, append: bool = False) -> None:
        self.path = Path(path)
        self._columns: list[str] | None = None
        if append and self.path.exists():
            with open(self.path, newline="") as handle:
                header = next(csv.reader(handle), None)
            self._columns = header[1:] if header else None
        elif self.path.exists():
            self.path.unlink()

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        new = self._columns is None
        if new:
            self._columns = sorted(logs)
        with open(self.path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["epoch", *self._columns])
            writer.writerow([epoch, *(logs.get(name, "") for name in self._columns)])
        os.chmod(self.path, 0o644)


# ----------------------------------------------------------------------------- the run's live logs

# History series shown on the plain per-epoch line, in this order (then the plan's metrics, lr).
_LINE_FIRST = ("loss", "val_loss", "d_loss", "g_loss", "val_d_loss", "val_g_loss")


def epoch_line(epoch: int, total: int, logs: dict, metrics: list[str], samples: int | None) -> str:
    """One plain line for an epoch: losses, metrics, lr, seconds and samples/s."""
    names = [k for k in _LINE_FIRST if k in logs]
    for metric in metrics:
        names += [k for k in (metric, f"val_{metric}") if k in logs and k not in names]
    parts = [f"epoch {epoch}/{total}"]
    parts += [f"{k} {logs[k]:.4g}" for k in names if logs[k] is not None]
    if logs.get("lr") is not None:
        parts.append(f"lr {logs['lr']:.3g}")
    seconds = logs.get("epoch_time")
    if seconds is not None:
        parts.append(f"{seconds:.2f}s")
        if samples and seconds > 0:
            parts.append(f"{samples / seconds:,.0f} samples/s")
    return "  ".join(parts)


class LiveLogCallback:
    """After each epoch: a ``history.csv`` row, TensorBoard scalars, and (outside a TTY) a line.

    Epochs are written 0-based in both files, as Keras' CSVLogger and
    TensorBoard callback write them.  A resumed run starts both files again
    from the checkpoint's history, so neither holds the epochs that are run again.
    """

    def __init__(
        self,
        run_dir: str | Path,
        total_epochs: int,
        metrics: list[str],
        samples: int | None = None,
        report=None,
        resumed=None,
    ) -> None:
        run_dir = Path(run_dir)
        for old in run_dir.glob("events.out.tfevents.*"):
            old.unlink()
        self.csv = CsvLog(run_dir / "history.csv")
        self.events = EventWriter(run_dir)
        self.total, self.metrics, self.samples, self.report = (
            total_epochs,
            metrics,
            samples,
            report,
        )
        if resumed is not None:
            for epoch in resumed.epochs:
                self._write(epoch, resumed.at(epoch))

    def _write(self, epoch: int, logs: dict) -> None:
        self.csv.append(epoch - 1, logs)
        self.events.scalars(epoch - 1, {k: v for k, v in logs.items() if v is not None})

    def on_epoch_end(self, state, logs: dict) -> bool:
        self._write(state.epoch, logs)
        if self.report is not None:
            self.report(epoch_line(state.epoch, self.total, logs, self.metrics, self.samples))
        return False

    def close(self) -> None:
        self.events.close()
