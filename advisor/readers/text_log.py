"""Plain-text training logs: Keras' console output (``Epoch 3/50`` then
``... - loss: 0.5213 - accuracy: 0.81 - val_loss: 0.6120``), Lightning's progress
bar (``Epoch 3: 100%|...| train_loss=0.52, val_loss=0.61``) and the lines
hand-written loops print (``epoch 3 | train loss: 0.52 | val acc: 0.77``, with ``:`` or ``=``).

Every ``name: number`` or ``name=number`` pair after an epoch marker belongs to
that epoch; a later value of the same name replaces an earlier one, so the
progress updates inside an epoch give way to its closing line.
"""

from __future__ import annotations

import re

from advisor.readers.names import normalise
from advisor.readers.table import Content, HistoryBuilder
from advisor.schemas import History

FORMAT = "text_log"

_EPOCH = re.compile(r"(?i)\bepoch\b\s*[:#]?\s*\[?\s*(\d+)\s*(?:/\s*(\d+))?\s*\]?")
_NUMBER = r"(?:nan|[-+]?inf(?:inity)?|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_PAIR = re.compile(
    r"(?i)(?<![\w.])([a-z][\w/\-]*(?: [a-z][\w/\-]*){0,2})\s*[:=]\s*"
    r"(tensor\(\s*" + _NUMBER + r"[^)]*\)|" + _NUMBER + r")(?![\w.])"
)
_SPLIT = re.compile(r"[\r\x08]+|\n")


def sniff(content: Content) -> bool:
    """Text with an epoch marker and a loss or accuracy value after it."""
    text = content.text
    if not text or text.lstrip()[:1] in ("{", "["):
        return False
    head = text[:200_000]
    marker = _EPOCH.search(head)
    return marker is not None and any(
        (name := normalise(m.group(1))) is not None and name.series.endswith(("loss", "accuracy"))
        for m in _PAIR.finditer(head, marker.start())
    )


def read(content: Content) -> History:
    """Attach each pair to the epoch of the latest marker."""
    builder = HistoryBuilder(FORMAT, content.path)
    text = content.text or ""
    first_marker = _EPOCH.search(text)
    offset = 1 if first_marker is not None and int(first_marker.group(1)) == 0 else 0
    epoch: int | None = None
    seen_values: set[int] = set()
    for number, line in enumerate(_SPLIT.split(text), start=1):
        markers = list(_EPOCH.finditer(line))
        start = 0
        if markers:  # pairs on a marker line come after it ("Epoch 3: loss=...")
            epoch = int(markers[-1].group(1)) + offset
            start = markers[-1].end()
        if epoch is None:
            continue
        for pair in _PAIR.finditer(line, start):
            name, value = pair.group(1), pair.group(2)
            if name.lower().strip() == "epoch":
                continue
            builder.add(epoch, name.strip(), value, where=f"line {number}")
            seen_values.add(epoch)
    if text and not text.endswith(("\n", "\r")):
        builder.skip(
            "the log ends inside a line (truncated); its last values were read as far as they go"
        )
    markers = {int(m.group(1)) + offset for m in _EPOCH.finditer(text)}
    empty = sorted(markers - seen_values)
    if empty and seen_values and max(empty) > max(seen_values):
        builder.skip(f"epoch {max(empty)}: started but no values were logged (log ends early)")
    return builder.build()
