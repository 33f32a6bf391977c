"""This project's own ``history.json`` (``schemas.History``, written by the engine).

Read as is; a file that was cut off keeps the epochs every series still covers.
"""

from __future__ import annotations

from pydantic import ValidationError

from advisor.contract import versions
from advisor.contract.errors import InputError
from advisor.contract.io import describe_validation_error
from advisor.contract.schemas import History, HistorySource
from advisor.readers.table import Content

FORMAT = "native"


def sniff(content: Content) -> bool:
    """A JSON object with ``epochs`` and ``series``."""
    data = content.json
    return isinstance(data, dict) and isinstance(data.get("series"), dict) and "epochs" in data


def read(content: Content) -> History:
    """Validate the History; trim a truncated one to the epochs all its series reach."""
    data = dict(content.json)
    skipped = list((data.get("source") or {}).get("skipped", []))
    if content.json_cut is not None:
        skipped.append(
            f"file ends early (cut at character {content.json_cut}); read what was complete"
        )
        epochs = data.get("epochs") or []
        series = data.get("series") or {}
        complete = min([len(epochs), *(len(v) for v in series.values() if isinstance(v, list))])
        if complete < len(epochs):
            skipped.append(f"epochs {complete + 1}-{len(epochs)}: not every series reached them")
        data["epochs"] = epochs[:complete]
        data["series"] = {k: v[:complete] for k, v in series.items() if isinstance(v, list)}
    source = dict(data.get("source") or {"format": FORMAT})
    source.update(format=FORMAT, path=content.label, skipped=skipped)
    data["source"] = source
    try:
        history = History.model_validate(versions.as_file(data))
    except ValidationError as err:
        raise InputError(f"{content.label}: {describe_validation_error(err, History)}") from None
    if not any(v is not None for values in history.series.values() for v in values):
        raise InputError(
            f"{content.label}: no usable series (native format); every value is missing"
        )
    return history.model_copy(update={"source": HistorySource(**source)})
