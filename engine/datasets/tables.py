"""Tables (.csv, .parquet) read with pandas: numeric features, text features as category codes.

``read_frame(path, field)`` reads the whole file with pandas (the pyarrow CSV
engine when pyarrow is installed, pandas' C parser otherwise; Parquet through
pyarrow).  ``encode_features(frame, features, categories)`` turns the feature
columns into one float32 matrix: numeric columns as they are (an empty cell is
NaN, which ``engine.datasets.checks.check_finite`` refuses), text columns as the
position of the value in that column's category list.  The lists are learned
from the source (sorted distinct values) unless given; a run records them in
``preprocessing.json`` and new data is coded with the run's lists, so a value
the run never saw is an error naming it.  ``iter_frames`` reads a large table
in chunks for ``engine.training.streaming``.  Every failure is an InputError naming the
plan field.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from advisor.contract.errors import InputError

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
# Rows per chunk when a table is read piecewise (streamed, or its categories collected).
CHUNK_ROWS = 65_536


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _pandas():
    try:
        import pandas
    except ImportError:  # a declared dependency; this is for a broken install
        raise InputError(
            "data.source.path: reading tables needs pandas; pip install 'pandas>=2.1'"
        ) from None
    return pandas


def csv_engine() -> str:
    """pandas' fastest CSV parser here: pyarrow's multithreaded reader when installed."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return "c"
    return "pyarrow"


def read_frame(path: Path, field: str = "data.source.path"):
    """The whole table as a pandas DataFrame, header stripped of spaces."""
    pd = _pandas()
    try:
        if is_parquet(path):
            frame = pd.read_parquet(path)
        else:
            engine = csv_engine()
            frame = pd.read_csv(path, engine=engine, skip_blank_lines=True)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        kind = "Parquet" if is_parquet(path) else "CSV"
        # the parser's message can quote the file's lines: only its kind is shown
        raise InputError(
            f"{field}: {path} is not a readable {kind} file ({type(err).__name__}); "
            "expected a header row and one value per column in every row"
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    for name in frame.columns:  # pyarrow keeps cells that are not UTF-8 as bytes
        column = frame[name]
        if column.dtype == object and column.map(lambda v: isinstance(v, bytes)).any():
            raise InputError(
                f"{field}: column {name[:60]!r} of {path} is not UTF-8 text; "
                "expected a UTF-8 CSV file"
            )
    return frame


def header(path: Path) -> list[str]:
    """The table's column names, reading as little as the format allows."""
    if is_parquet(path):
        try:
            import pyarrow.parquet as pq

            return [str(c).strip() for c in pq.read_schema(path).names]
        except ImportError:
            return list(read_frame(path).columns)
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        return [h.strip() for h in next(csv.reader(handle), [])]


def is_numeric(column) -> bool:
    pd = _pandas()
    return pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
        column.dtype
    )


def learn_categories(frame, features: list[str]) -> dict[str, list[str]]:
    """Each text (or boolean) feature column's distinct values, sorted: its codes' order."""
    out = {}
    for name in features:
        column = frame[name]
        if not is_numeric(column):
            values = column.dropna().astype(str).str.strip()
            out[name] = sorted(set(values.tolist()))
    return out


def encode_features(
    frame, features: list[str], categories: dict[str, list[str]], where: str
) -> np.ndarray:
    """The feature columns as float32 [rows, features]: numbers as read, text as category codes.

    Raises:
        InputError: a text value outside its column's list, or a text column with no list.
    """
    x = np.empty((len(frame), len(features)), np.float32)
    for j, name in enumerate(features):
        column = frame[name]
        if name in categories:
            known = categories[name]
            text = column.astype(str).str.strip().where(column.notna(), None)
            codes = text.map({v: i for i, v in enumerate(known)})
            unseen = text.notna() & codes.isna()
            if unseen.any():
                value = text[unseen].iloc[0]
                raise InputError(
                    f"{where}: column {name!r} holds {value[:40]!r}, a value the run never saw; "
                    f"expected one of its {len(known)} categories (preprocessing.json)"
                )
            x[:, j] = codes.to_numpy(np.float32, na_value=np.nan)
        elif is_numeric(column):
            x[:, j] = column.to_numpy(np.float32, na_value=np.nan)
        else:
            raise InputError(
                f"{where}: column {name!r} is text but the run read it as numbers; "
                "expected numbers in it"
            )
    return x


def iter_frames(path: Path, columns: list[str], rows: int = CHUNK_ROWS) -> Iterator:
    """The table's ``columns`` in chunks of about ``rows`` rows (memory stays one chunk wide)."""
    pd = _pandas()
    if is_parquet(path):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns):
            frame = batch.to_pandas()
            frame.columns = [str(c).strip() for c in frame.columns]
            yield frame
        return
    # the C parser reads in chunks; pyarrow's reader has no chunked pandas form
    with pd.read_csv(path, chunksize=rows, skipinitialspace=True) as reader:
        for frame in reader:
            frame.columns = [str(c).strip() for c in frame.columns]
            yield frame[columns]
