"""The TensorBoard event-file format, read without TensorFlow.

An events file is a sequence of TFRecords: ``uint64 length``, ``uint32 masked
CRC-32C of the length``, ``length`` bytes of a serialized ``Event`` protobuf,
``uint32 masked CRC-32C of the data`` (all little-endian).  Of the protobuf we
need a handful of fields, decoded here by a minimal wire-format reader:

    Event:          1 wall_time (double), 2 step (int64), 5 summary (Summary)
    Summary:        1 value (repeated Value)
    Value:          1 tag, 2 simple_value (float), 8 tensor (TensorProto), 9 metadata
    SummaryMetadata 1 plugin_data { 1 plugin_name }
    TensorProto:    1 dtype, 2 tensor_shape, 4 tensor_content, 5 float_val, 6 double_val,
                    7 int_val, 10 int64_val, 13 half_val

PyTorch's and Lightning's writers use ``simple_value``; Keras writes scalars as
one-element tensors of the ``scalars`` plugin.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from advisor.contract.tfrecord import masked_crc


def is_events_file(head: bytes) -> bool:
    """Whether the first bytes are a TFRecord header with a valid length checksum."""
    if len(head) < 12:
        return False
    return struct.unpack("<I", head[8:12])[0] == masked_crc(head[:8])


def records(data: bytes) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(offset, payload, problem) per record; payload None when the record is unusable.

    Stops at a record whose header is cut off or corrupt (its length cannot be trusted).
    """
    offset = 0
    while offset < len(data):
        header = data[offset : offset + 12]
        if len(header) < 12:
            yield offset, None, "record header cut off (file truncated)"
            return
        (length,) = struct.unpack("<Q", header[:8])
        if struct.unpack("<I", header[8:12])[0] != masked_crc(header[:8]):
            yield (
                offset,
                None,
                "record header fails its checksum; the rest of the file is unreadable",
            )
            return
        end = offset + 12 + length + 4
        if end > len(data):
            yield offset, None, "record cut off (file truncated)"
            return
        payload = data[offset + 12 : offset + 12 + length]
        (stored,) = struct.unpack("<I", data[end - 4 : end])
        if stored != masked_crc(payload):
            yield offset, None, "record fails its data checksum; skipped"
        else:
            yield offset, payload, None
        offset = end


# ----------------------------------------------------------------------------- protobuf wire format


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("varint runs past the end")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field of a serialized message.

    Varints come back as ints; fixed64/fixed32 and length-delimited fields as bytes.
    """
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("field runs past the end")
        yield number, wire, value


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Scalar:
    """One scalar of one event."""

    tag: str
    step: int
    wall_time: float
    value: float


# dtype enum -> (struct code, size) for tensor_content; repeated-field number for the value
_DTYPES = {1: ("f", 4, 5), 2: ("d", 8, 6), 3: ("i", 4, 7), 9: ("q", 8, 10), 19: ("e", 2, 13)}


def scalars(payload: bytes) -> list[Scalar]:
    """The scalar summaries of one serialized Event (empty for other events).

    Raises:
        ValueError: the payload is not a well-formed protobuf message.
    """
    step, wall_time, summary = 0, 0.0, None
    for number, _, value in fields(payload):
        if number == 1 and isinstance(value, bytes):
            (wall_time,) = struct.unpack("<d", value)
        elif number == 2 and isinstance(value, int):
            step = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 5 and isinstance(value, bytes):
            summary = value
    if summary is None:
        return []
    out = []
    for number, _, value in fields(summary):
        if number == 1 and isinstance(value, bytes):
            found = _summary_value(value)
            if found is not None:
                out.append(Scalar(found[0], step, wall_time, found[1]))
    return out


def _summary_value(buf: bytes) -> tuple[str, float] | None:
    tag, simple, tensor = None, None, None
    for number, _, value in fields(buf):
        if number == 1 and isinstance(value, bytes):
            tag = value.decode("utf-8", "replace")
        elif number == 2 and isinstance(value, bytes):
            (simple,) = struct.unpack("<f", value)
        elif number == 8 and isinstance(value, bytes):
            tensor = value
    if tag is None:
        return None
    if simple is not None:
        return tag, float(simple)
    if tensor is not None:
        number = _tensor_scalar(tensor)
        if number is not None:
            return tag, number
    return None


def _tensor_scalar(buf: bytes) -> float | None:
    """The value of a one-element numeric TensorProto; None for anything else."""
    dtype, content, repeated = 0, b"", {}
    n_elements = 1
    for number, wire, value in fields(buf):
        if number == 1 and isinstance(value, int):
            dtype = value
        elif number == 2 and isinstance(value, bytes):
            for dim_number, _, dim in fields(value):
                if dim_number == 2 and isinstance(dim, bytes):
                    size = next((v for n, _, v in fields(dim) if n == 1 and isinstance(v, int)), 1)
                    n_elements *= size
        elif number == 4 and isinstance(value, bytes):
            content = value
        else:
            repeated.setdefault(number, []).append((wire, value))
    if dtype not in _DTYPES or n_elements != 1:
        return None
    code, size, field_number = _DTYPES[dtype]
    if len(content) == size:
        return float(struct.unpack("<" + code, content)[0])
    entries = repeated.get(field_number)
    if not entries:
        return None
    wire, value = entries[0]
    if wire == 2:  # packed
        if field_number in (5, 6):
            return float(struct.unpack("<" + code, value[:size])[0])
        raw, _ = _varint(value, 0)
    elif wire == 5:
        return float(struct.unpack("<f", value)[0])
    elif wire == 1:
        return float(struct.unpack("<d", value)[0])
    else:
        raw = value
    if dtype == 19:  # half_val holds the float16 bits in an int32
        return float(struct.unpack("<e", struct.pack("<H", raw & 0xFFFF))[0])
    if dtype in (3, 9) and raw >= 1 << 63:
        raw -= 1 << 64
    return float(raw)
