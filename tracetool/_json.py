"""Values for JSON documents: the one place that turns pandas/numpy missing values and scalars
into plain Python, and writes JSON text the way every migtrace document is written.

Missing is ``None`` whatever its form (``None``, ``pd.NA``, NaN, ``NaT``, or ``NO_TIME``, the
time of an event whose line had none); numpy scalars become ``int``/``float``/``bool``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME


def is_missing(v: Any) -> bool:
    """True for None, pd.NA, NaT, NaN and NO_TIME."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float | np.floating):
        return math.isnan(v)
    if isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_):
        return int(v) == NO_TIME
    return False


def plain(v: Any) -> Any:
    """``v`` as a plain JSON value (None where missing, see module docstring)."""
    if is_missing(v):
        return None
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def plain_column(column: pd.Series) -> list[Any]:
    """``[plain(v) for v in column.tolist()]``, worked out for the whole column where its dtype
    allows: the document of a million BQL holds converts a few columns, not millions of values
    one at a time."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        table = [plain(v) for v in dtype.categories.tolist()] + [None]  # code -1 (missing): None
        return [table[k] for k in column.cat.codes.to_numpy().tolist()]
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        values = column.to_numpy()
        out: list[Any] = values.tolist()
        if dtype.kind == "f":
            missing = np.isnan(values)
        elif dtype == np.int64:
            missing = values == NO_TIME
        else:
            return out
    elif isinstance(dtype, pd.StringDtype | pd.BooleanDtype):
        out = column.astype(object).tolist()
        missing = column.isna().to_numpy(dtype=bool)
    elif isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "iuf":  # Int64, Float64...
        numbers = column.to_numpy(dtype=np.float64 if dtype.kind == "f" else np.int64, na_value=0)
        out = numbers.tolist()
        missing = column.isna().to_numpy(dtype=bool) | (
            np.isnan(numbers) if dtype.kind == "f" else numbers == NO_TIME
        )
    else:
        return [plain(v) for v in column.tolist()]
    for i in np.flatnonzero(missing).tolist():
        out[i] = None
    return out


def number(v: Any) -> float | None:
    """A float, or None where missing."""
    return None if is_missing(v) else float(v)


def integer(v: Any) -> int | None:
    """An int, or None where missing."""
    return None if is_missing(v) else int(v)


def text(v: Any) -> str | None:
    """A str, or None where missing."""
    return None if is_missing(v) else str(v)


def records(
    frame: pd.DataFrame, keys: Sequence[str] | None = None, *, keep: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Rows of ``frame`` as JSON-ready dicts.

    ``keys``: the keys of every record, in order (a key the frame lacks is None); default: all
    columns. ``keep``: when given, a key whose value is None on a row is left out of that row's
    record unless it is in ``keep`` (for frames with sparse attribute columns).
    """
    cols = list(frame.columns) if keys is None else list(keys)
    n = len(frame)
    values = [plain_column(frame[c]) if c in frame else [None] * n for c in cols]
    kept = None if keep is None else set(keep)
    out: list[dict[str, Any]] = []
    for i in range(n):
        rec = {c: values[j][i] for j, c in enumerate(cols)}
        if kept is not None:
            rec = {k: v for k, v in rec.items() if v is not None or k in kept}
        out.append(rec)
    return out


def dumps(doc: Any) -> str:
    """JSON text as every migtrace document is written: indented, UTF-8, no NaN, newline-ended."""
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
