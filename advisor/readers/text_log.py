"""Plain-text training logs: Keras' console output (``Epoch 3/50`` then
``... - loss: 0.5213 - accuracy: 0.81 - val_loss: 0.6120``), Lightning's progress
bar (``Epoch 3: 100%|...| train_loss=0.52, val_loss=0.61``), the lines hand-written
loops print (``epoch 3 | train loss: 0.52 | val acc: 0.77``, with ``:`` or ``=``),
Python ``logging`` lines (``2021-03-02 10:11:12,345 - INFO - epoch 3 train loss:
0.8421``) and pipe-separated ``name value`` fields (PyTorch's word-language-model
example: ``| epoch 3 | 200/2983 batches | lr 20.00 | loss 5.66 |``).

Every pair after an epoch marker belongs to that epoch.  On a line that also counts
batches or steps inside the epoch (``Step [100/600]``, ``200/2983 batches``) the
values are per-step and the epoch's value is their mean; elsewhere a later value of
the same name replaces an earlier one, so the progress updates inside an epoch give
way to its closing line.  A value-less line that announces an evaluation (``testing in
eval mode``, ``Validating...``) puts the evaluation phase on the names of the next line
with values that carry no phase of their own (``epoch: 3,  loss is: 0.29``).  A log
with step numbers but no epoch numbers gives one point per logging line, in order, and
says so in ``source.notes``.  ``nan`` and
``inf`` are values, never dropped.  Chinese metric names (``训练损失``, ``验证损失``) are read
as the English names they mean.
"""

from __future__ import annotations

import re

from advisor.contract.errors import InputError
from advisor.contract.schemas import History
from advisor.readers.names import KNOWN_METRICS, PHASE_WORDS, normalise
from advisor.readers.table import Content, HistoryBuilder, last_run, note_partial_epoch

FORMAT = "text_log"

_EPOCH = re.compile(r"(?i)\bepoch\b\s*[:#=]?\s*\[?\s*(\d+)\s*(?:/\s*(\d+))?\s*\]?")
# "E5" standing alone (loguru trainers: "| E5 iter[ 14/ 15] | [Loss] 0.52 |"), used only
# in a log that never writes the word epoch.
_EPOCH_SHORT = re.compile(r"(?<![\w.\-])E(\d+)(?![\w.\-])")
# "#320/1500 - Training Loss: 0.29" (nntrainer): a numbered line, in the same kind of log.
_EPOCH_HASH = re.compile(r"^\s*#(\d+)\s*/\s*(\d+)\b")
# The PyTorch tutorials' progress lines, with the loss as the only unnamed number:
# "5000 5% (0m 12s) 2.4177 Coelho / Portuguese" and "0m 5s (5000 5%) 3.1569".
_TUTORIAL = re.compile(
    r"^\s*(?:(\d+)\s+\d+%\s+\((?:\d+m\s*)?\d+s\)|(?:\d+m\s*)?\d+s\s+\((\d+)\s+\d+%\))\s+"
    r"(nan|[-+]?inf|[-+]?\d+\.?\d*(?:[eE][-+]?\d+)?)(?!\S)"
)
_STEP = re.compile(r"(?i)\b(?:global[_ ]step|step|iter|iteration)\b\s*[:#=]?\s*\[?\s*(\d+)")
# A position inside an epoch: "Step [100/600]", "200/ 2983 batches", "[640/60000 (1%)]", "batch 30".
_PROGRESS = re.compile(
    r"(?i)\b(?:step|iter|iteration|batch)\b\s*[:#=]?\s*\[?\s*\d+"
    r"|\b\d+\s*/\s*\d+\s*(?:batches|steps|iters|iterations)\b"
    r"|\[\s*\d+\s*/\s*\d+\s*\(\s*\d+%\s*\)\s*\]"
)
_NUMBER = r"(?:nan|[-+]?inf(?:inity)?|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_PAIR = re.compile(
    r"(?i)(?<![\w.])([a-z][\w/\-]*(?: [a-z][\w/\-]*){0,2})\s*[:=]\s*"
    r"(tensor\(\s*" + _NUMBER + r"[^)]*\)|" + _NUMBER + r")(?![\w.]|[-:/]\d)"  # not a date/time
)
# One field of a pipe-separated line: "valid loss  5.60" (a name, spaces, a number).
_FIELD = re.compile(r"(?i)([a-z][\w/\-]*(?: [a-z][\w/\-]*){0,2})\s+(" + _NUMBER + r")")
_NAME = re.compile(r"(?i)[a-z][\w/\-]*")
_BARE_NUMBER = re.compile(r"(?i)" + _NUMBER)
# Keras' progress bar: "237/422 [=====>....]": the steps done of the epoch's steps.
_BAR = re.compile(r"^\s*(\d+)/(\d+)\s*(?:\[|-\s)")  # verbose=2 writes "422/422 - 13s - ..."
_SPLIT = re.compile(r"[\r\x08]+|\n")
# "[Losses: x 0.02, y 0.03, conf 0.75, cls 0.1, total 0.9]" (PyTorch-YOLOv3's old log).
_LOSSES = re.compile(r"(?i)\blosses\s*:\s*([^\]]*)")
# Pairs that count epochs rather than measure them ("epoch_end=3 train_loss=0.08 ...").
_EPOCH_COUNTERS = {"epoch", "epochs", "epoch_end", "epoch_start", "epoch_idx", "epoch_num"}
# Python logging's prefixes: "2021-03-02 10:11:12,345 - name - INFO - ", "INFO:root:".
_LOGGING_PREFIX = re.compile(
    r"\s*(?:\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?\]?\s*(?:[-|:]\s*)?"
    r"(?:[\w.]+\s*[-|:]\s*)??(?:\[?(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\]?\s*[-|:]?\s*)?"
    r"|(?:DEBUG|INFO|WARNING|ERROR|CRITICAL):[\w.]*:\s*)"
)
_PHASE_START = re.compile(
    r"(?i)\s*[-|:>]*\s*(train(?:ing)?|val(?:id(?:ation)?)?|eval|test)\b(?![_/])"
)
# A line announcing an evaluation, without numbers ("testing in eval mode", "Validating...").
_EVAL_ANNOUNCED = re.compile(r"(?i)^\W*(?:testing|evaluating|validating)\b\D*$")
# "loss is: 0.29" (Paddle's example scripts): the verb is not part of the name.
_NAME_VERB = re.compile(r"(?i)\s+(?:is|was)$")
# Chinese metric names in hand-written loops ("训练损失: 4.61 | 验证损失: 6.01"): the longest
# first, so "验证损失" is "val loss" before "损失" alone is "loss".
_CJK_NAMES = {
    "训练损失": " train loss",
    "验证损失": " val loss",
    "测试损失": " test loss",
    "训练准确率": " train accuracy",
    "验证准确率": " val accuracy",
    "测试准确率": " test accuracy",
    "学习率": " lr",
    "损失": " loss",
    "准确率": " accuracy",
    "：": ":",  # full-width colon
}
_CJK = re.compile("|".join(map(re.escape, _CJK_NAMES)))


def _text(content: Content) -> str | None:
    """The log's text, with Chinese metric names spelled as the English ones they mean."""
    text = content.text
    return _CJK.sub(lambda m: _CJK_NAMES[m.group(0)], text) if text and _CJK.search(text) else text


def sniff(content: Content) -> bool:
    """Text with an epoch (or step) marker and a loss or accuracy value after it."""
    text = _text(content)
    if not text or _json_like(content):
        return False
    return _holds_log(text)


def sniff_printed(text: str) -> bool:
    """``sniff`` for what a program printed (a notebook cell's output), where a dict or
    list printed before the epochs (the hyper-parameters) does not make it a JSON file."""
    return bool(text) and _holds_log(text)


def _holds_log(text: str) -> bool:
    """An epoch (or step) marker with a loss or accuracy value after it."""
    head = text[:200_000]
    if sum(1 for line in head.splitlines()[:2000] if _TUTORIAL.match(line)) >= 2:
        return True
    marker = _epochs(head).search(head) or _STEP.search(head)
    if marker is None:
        return False
    for line in _SPLIT.split(head[marker.start() :])[:2000]:
        for name, _ in _pairs(line, 0):
            if _is_loss_or_accuracy(name):
                return True
    return False


def _is_loss_or_accuracy(name: str) -> bool:
    """A loss or an accuracy, also a loss head named after the word (GAN logs: ``Loss_D``,
    ``Loss Discriminator``)."""
    found = normalise(name)
    if found is None:
        return False
    return found.series.endswith(("loss", "accuracy")) or "loss" in found.series.split("_")


def _json_like(content: Content) -> bool:
    """JSON, or text that starts like it; a line opening with a bracketed time stamp or
    marker (``[2021-07-14 02:09:40] Train epoch: 0``, ``[Epoch 0/30, Batch 3/13]``) is a log."""
    first = content.text.lstrip()[:1] if content.text else ""
    return first == "{" or (first == "[" and content.json is not None)


def _epochs(text: str) -> re.Pattern:
    """The epoch marker this log writes: ``epoch N``, else ``#N/M`` lines, else a bare ``EN``."""
    if _EPOCH.search(text) is not None:
        return _EPOCH
    if sum(1 for line in text.splitlines()[:50] if _EPOCH_HASH.match(line)) >= 2:
        return _EPOCH_HASH
    if _EPOCH_SHORT.search(text) is not None:
        return _EPOCH_SHORT
    return _EPOCH


def _markers(pattern: re.Pattern, text: str) -> list[re.Match]:
    """Epoch markers, except a best epoch named after training ("the best epoch: 5")."""
    return [
        match
        for match in pattern.finditer(text)
        if "best" not in text[max(0, match.start() - 25) : match.start()].lower()
    ]


def _pairs(line: str, start: int) -> list[tuple[str, str]]:
    """(name, value) pairs of a line from ``start``.

    ``name: x`` and ``name=x`` anywhere; ``| name x |`` fields of a pipe-separated line;
    ``name, x`` of a comma-separated one; else bare ``name x`` pairs whose name is a
    known metric (``Train loss 0.71 accuracy 0.52``).  A logging prefix (time stamp,
    level, logger) is skipped, and a message that starts with a phase word (``Val
    loss 0.66 accuracy 0.64``) puts that phase on the names that carry none.
    """
    prefix = _LOGGING_PREFIX.match(line, start)
    if prefix is not None:
        start = prefix.end()
    found = [
        (_NAME_VERB.sub("", m.group(1).strip()), m.group(2)) for m in _PAIR.finditer(line, start)
    ]
    if line.count("|") >= 2:
        for field in line[start:].split("|"):
            match = _FIELD.fullmatch(re.sub(r"^\[([^\]]+)\]", r"\1", field.strip()))
            if match is not None:
                found.append((match.group(1).strip(), match.group(2)))
    if line.count(",") >= 2:  # "epoch 1, phase train, step 10, loss_train, 0.838"
        fields = [field.strip() for field in line[start:].split(",")]
        for name, value in zip(fields, fields[1:], strict=False):
            if _NAME.fullmatch(name) and _BARE_NUMBER.fullmatch(value):
                found.append((name, value))
    if not found:
        found = _loss_group(line, start)
    if not found:
        words = line[start:].replace(",", " ").split()
        for name, value in zip(words, words[1:], strict=False):
            if _NAME.fullmatch(name) and _BARE_NUMBER.fullmatch(value) and _known(name):
                found.append((name, value))
    elif line.count("|") < 2:  # pipe-separated fields were read whole above
        found.extend(_bare_losses(line[start:], found))
    phase = _PHASE_START.match(line, start)
    if phase is None:
        return found
    word = phase.group(1)
    return [(name if _has_phase(name) else f"{word} {name}", value) for name, value in found]


def _bare_losses(text: str, found: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Bare ``loss 0.69`` pairs on a line whose other values are named ``name: x``
    (``Epoch 1, loss 0.69, train accuracy: 54.67%``): a loss no other pair gave."""
    have = {normalise(name) for name, _ in found}
    words = text.replace(",", " ").split()
    extra = []
    for index, (name, value) in enumerate(zip(words, words[1:], strict=False)):
        known = normalise(name) if _NAME.fullmatch(name) else None
        if (
            known is not None
            and (index == 0 or words[index - 1].lower().strip(":") not in PHASE_WORDS)
            and known.series.endswith("loss")
            and known not in have
            and _BARE_NUMBER.fullmatch(value)
        ):
            extra.append((name, value))
            have.add(known)
    return extra


def _loss_group(line: str, start: int) -> list[tuple[str, str]]:
    """``[Losses: x 0.1, conf 0.75, total 0.9]``: every ``name value`` field after
    ``Losses:`` is a loss head (``x_loss``), its ``total`` the loss."""
    group = _LOSSES.search(line, start)
    if group is None:
        return []
    fields = (field.strip(" []") for field in group.group(1).split(","))
    matches = (_FIELD.fullmatch(field) for field in fields)
    return [(f"{m.group(1)} loss", m.group(2)) for m in matches if m is not None]


def _known(name: str) -> bool:
    """A bare name that is surely a metric: a loss or a name of the contract's vocabulary."""
    found = normalise(name)
    if found is None:
        return False
    base = found.series.removeprefix("val_").removeprefix("test_")
    return base.endswith("loss") or base in KNOWN_METRICS


def _has_phase(name: str) -> bool:
    return any(word.lower() in PHASE_WORDS for word in re.split(r"[\s_/\-.]+", name))


def read(content: Content) -> History:
    """The log's run (its last run, with a note, when the epoch count started again)."""
    runs = read_all(content)
    return last_run(runs, "the log holds {n} training runs (its epoch count starts again)")


def read_all(content: Content) -> dict[str, History]:
    """One History per run: the log is cut where its epoch count starts again."""
    text = _text(content) or ""
    parts = split_runs(text)
    if len(parts) <= 1:
        return {content.path.name if content.path else "history": _read_text(text, content)}
    runs: dict[str, History] = {}
    for number, part in enumerate(parts, start=1):
        try:
            history = _read_text(part, content)
        except InputError:
            continue  # a fragment without values (a "best epoch: 1" line)
        name = f"run {number}"
        source = history.source.model_copy(update={"run": name})
        runs[name] = history.model_copy(update={"source": source})
    if not runs:
        return {"history": _read_text(text, content)}
    return runs


def split_runs(text: str) -> list[str]:
    """The text cut at the lines where the epoch count starts again (a new run).

    A new run starts at epoch 0 or 1 after a higher epoch; ``Epoch 1/1`` (a
    one-epoch fit called in a loop) continues the run it is in.
    """
    pattern = _epochs(text)
    cuts = [0]
    highest: int | None = None
    for match in _markers(pattern, text):
        if match.re.groups > 1 and match.group(2) == "1":
            continue
        epoch = int(match.group(1))
        if highest is not None and epoch <= 1 and epoch < highest:
            cuts.append(text.rfind("\n", 0, match.start()) + 1)
            highest = epoch
        else:
            highest = epoch if highest is None else max(highest, epoch)
    cuts.append(len(text))
    return [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if text[a:b].strip()]


def _read_text(text: str, content: Content) -> History:
    """Attach each pair to the epoch of the latest marker (or to each step line)."""
    builder = HistoryBuilder(FORMAT, content.path)
    if _TUTORIAL.search(text.lstrip()) and _epochs(text).search(text) is None:
        _read_tutorial(text, builder)
    elif _epochs(text).search(text) is None:
        _read_steps(text, builder)
    else:
        _read_epochs(text, builder)
    if text and not text.endswith(("\n", "\r")):
        builder.skip(
            "the log ends inside a line (truncated); its last values were read as far as they go"
        )
    return builder.build()


def _read_epochs(text: str, builder: HistoryBuilder) -> None:
    pattern = _epochs(text)
    first_marker = pattern.search(text)
    offset = 1 if first_marker is not None and int(first_marker.group(1)) == 0 else 0
    epoch: int | None = None
    first = int(first_marker.group(1)) + offset if first_marker is not None else 1
    head = text[: first_marker.start()] if first_marker is not None else ""
    if first > 1 and any(_BAR.match(line) for line in _SPLIT.split(head)):
        epoch = first - 1  # a log cut just below "Epoch 1/N": the bar before "Epoch 2/N"
        builder.note(
            f"the log starts inside epoch {epoch} (its marker line is missing): the values "
            f"before 'epoch {first}' are read as epoch {epoch}"
        )
    seen_values: set[int] = set()
    marked: set[int] = set()
    steps: dict[int, int] = {}
    bar: dict[int, tuple[int, int]] = {}
    fresh = False  # a marker was seen and no value since
    looped = 0
    announced = False  # an evaluation was announced and no value since
    for number, line in enumerate(_SPLIT.split(text), start=1):
        markers = _markers(pattern, line)
        if not markers and _EVAL_ANNOUNCED.match(line):
            announced = True
            continue
        start = 0
        if markers:  # pairs on a marker line come after it ("Epoch 3: loss=...")
            last = markers[-1]
            marked.update(int(m.group(1)) + offset for m in markers)
            if last.re.groups > 1 and last.group(2) == "1" and epoch is not None:
                # "Epoch 1/1": fit(epochs=1) called in a loop; the next epoch of the run,
                # unless the loop just printed its own count ("epoch 7" then "Epoch 1/1").
                if not fresh:
                    epoch += 1
                    looped += 1
            else:
                epoch = int(last.group(1)) + offset
            fresh = True
            start = last.end()
        if epoch is None:
            continue
        progress = _BAR.match(line)
        if progress is not None:
            done, total = int(progress.group(1)), int(progress.group(2))
            if epoch in bar and (bar[epoch][1] != total or bar[epoch][0] == bar[epoch][1]):
                # Another bar after the epoch's own (of another length, or after it was
                # complete): evaluate() or predict() after training.
                builder.skip(
                    f"line {number}: a progress bar after epoch {epoch}'s own was complete "
                    "(an evaluation after training); its values left out"
                )
                continue
            bar[epoch] = (done, total)
        per_step = bool(markers) and _PROGRESS.search(line) is not None
        added = False
        pairs = _pairs(line, start)
        if pairs and announced:
            pairs = [(n if _has_phase(n) else f"eval {n}", v) for n, v in pairs]
            announced = False
        for name, value in pairs:
            if name.lower() in _EPOCH_COUNTERS:
                continue
            builder.add(epoch, name, value, where=f"line {number}", per_step=per_step)
            seen_values.add(epoch)
            added = True
            fresh = False
        if added and per_step:
            steps[epoch] = steps.get(epoch, 0) + 1
    if looped:
        builder.note("'Epoch 1/1' again and again (fit for one epoch in a loop): counted in order")
    if steps:
        builder.note("values logged per batch or step inside an epoch: each epoch's is their mean")
        note_partial_epoch(builder, steps)
    if bar and max(bar) in seen_values and bar[max(bar)][0] < bar[max(bar)][1]:
        done, total = bar[max(bar)]
        builder.note(
            f"epoch {max(bar)} is partial: the log stops at step {done} of {total}; "
            "its values are the running means shown there"
        )
    empty = sorted(marked - seen_values)
    if empty and seen_values and max(empty) > max(seen_values):
        builder.skip(f"epoch {max(empty)}: started but no values were logged (log ends early)")


def _read_steps(text: str, builder: HistoryBuilder) -> None:
    """No epoch numbers: every line with a step marker and values is one point."""
    point = 0
    steps: list[int] = []
    for number, line in enumerate(_SPLIT.split(text), start=1):
        marker = _STEP.search(line)
        if marker is None:
            continue
        pairs = [(n, v) for n, v in _pairs(line, marker.end()) if normalise(n) is not None]
        if not pairs:
            continue
        point += 1
        steps.append(int(marker.group(1)))
        for name, value in pairs:
            builder.add(point, name, value, where=f"line {number}")
    if steps:
        builder.note(
            f"no epoch numbers in the log: each of the {point} logged steps "
            f"({steps[0]} to {steps[-1]}) is one point"
        )


def _read_tutorial(text: str, builder: HistoryBuilder) -> None:
    """The PyTorch tutorials' progress lines: one point per line, its number the loss."""
    iterations = []
    for number, line in enumerate(_SPLIT.split(text), start=1):
        match = _TUTORIAL.match(line)
        if match is None:
            continue
        iterations.append(int(match.group(1) or match.group(2)))
        builder.add(len(iterations), "loss", match.group(3), where=f"line {number}")
    builder.note(
        f"no names in the log: the number after each progress mark is read as the loss; "
        f"each of the {len(iterations)} lines (iterations {iterations[0]} to {iterations[-1]}) "
        "is one point"
    )
