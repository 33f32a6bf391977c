"""Live logs a run writes as it goes: ``history.csv`` and TensorBoard scalars.

Both files are appended to after each epoch and flushed, so ``tail -f`` and
``tensorboard --logdir`` can follow a run while it trains.  The event file is
written without TensorFlow, in the TFRecord framing that
``advisor.readers.tfevents`` reads (length, masked CRC-32C of the length,
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

from advisor.tfrecord import masked_crc

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
