"""Reading a batch table back (``migtrace batch --out FILE.parquet|.csv``), for the history."""

from __future__ import annotations

import os

import pandas as pd

from tracetool._batch.work import BATCH_COLUMNS, ERROR_COLUMN, with_batch_dtypes
from tracetool._check.runmetrics import COLUMNS
from tracetool.errors import UsageError

TABLE_SUFFIXES = (".parquet", ".csv")


def is_table_file(path: str) -> bool:
    """Whether ``path`` names a batch table file (by its suffix) rather than a run."""
    return os.path.isfile(path) and os.path.splitext(path)[1].lower() in TABLE_SUFFIXES


def read_table(path: str) -> pd.DataFrame:
    """A batch table from a .parquet or .csv file, with the batch dtypes; UsageError for a
    file that cannot be read or lacks the columns."""
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        else:
            raise UsageError(f"{path}: a batch table is a .parquet or .csv file")
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the table: {' '.join(str(exc).split())[:200]}") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: not a migtrace batch table (no column {', '.join(missing)})")
    if ERROR_COLUMN not in frame.columns:
        frame[ERROR_COLUMN] = None
    try:
        if suffix == ".csv":
            frame["start_ns"] = pd.to_numeric(frame["start_ns"]).astype("Int64")
            frame["value"] = pd.to_numeric(frame["value"])
        return with_batch_dtypes(frame[list(BATCH_COLUMNS)])
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{path}: a value that is not a number: {exc}") from None
