"""Column sets of the timeline's frames and the helpers that assemble them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

SPAN_COLUMNS = [
    "process",
    "tid",
    "thread",
    "role",
    "kind",
    "name",
    "start_ns",
    "end_ns",
    "duration_us",
    "closed",
    "begin_row",
    "end_row",
]
"""Fixed columns of ``Timeline.spans``; attribute columns (idstr, section_id...) follow."""
INSTANT_COLUMNS = ["process", "tid", "thread", "role", "kind", "name", "ts_ns", "row"]
"""Fixed columns of ``Timeline.instants``; attribute columns follow."""
ISSUE_COLUMNS = ["kind", "path", "line", "message"]


def concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The frames of every rule as one, ``columns`` first, attribute columns typed and after
    them; an empty frame with typed columns when no rule matched."""
    if not frames:
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        for c in ("start_ns", "end_ns", "ts_ns", "begin_row", "row"):
            if c in empty:
                empty[c] = empty[c].astype(np.int64)
        if "duration_us" in empty:
            empty["duration_us"] = empty["duration_us"].astype(float)
        if "closed" in empty:
            empty["closed"] = empty["closed"].astype(bool)
        for c in ("tid", "end_row"):
            if c in empty:
                empty[c] = empty[c].astype("Int64")
        return empty
    out = pd.concat(frames, ignore_index=True, sort=False)
    for c in out.columns:
        if c in columns:
            continue
        out[c] = typed(out[c]).to_numpy() if out[c].dtype == object else out[c]
    attrs = [c for c in out.columns if c not in columns]
    out = out[columns + attrs]
    out["process"] = out["process"].astype(str)
    for c in ("thread", "role", "kind", "name"):
        out[c] = out[c].astype(str)
    out["tid"] = out["tid"].astype("Int64")
    if "end_row" in out:
        out["end_row"] = out["end_row"].astype("Int64")
    return out


def typed(values: pd.Series) -> pd.Series:
    """An object column as Int64 when every value is an integer, else as strings."""
    s = pd.Series(values, copy=False).reset_index(drop=True)
    present = s.dropna()
    if not len(present):
        return pd.Series(pd.array([pd.NA] * len(s), dtype="Int64"))
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in present.head(64)):
        try:
            return pd.Series(pd.array(s.tolist(), dtype="Int64"))
        except (TypeError, ValueError, OverflowError):
            pass
    if all(isinstance(v, (bool, np.bool_)) for v in present.head(64)):
        return pd.Series(pd.array(s.tolist(), dtype="boolean"))
    return pd.Series(pd.array([None if is_missing(v) else str(v) for v in s.tolist()], dtype="string"))


def dict_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain values (NA -> None), for loops over a handful of rows."""
    cols = list(frame.columns)
    return [
        {c: (None if is_missing(v) else v) for c, v in zip(cols, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]


def is_missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))


def fill_idstr(spans: pd.DataFrame) -> None:
    """PART/END sections name only their section id: take the idstr their START gave it."""
    if not len(spans) or "idstr" not in spans or "section_id" not in spans:
        return
    known = spans[spans["idstr"].notna() & spans["section_id"].notna()]
    if not len(known):
        return
    table = known.drop_duplicates(["process", "section_id"]).set_index(["process", "section_id"])["idstr"]
    need = spans["idstr"].isna() & spans["section_id"].notna()
    if need.any():
        keys = pd.MultiIndex.from_arrays([spans.loc[need, "process"], spans.loc[need, "section_id"]])
        spans.loc[need, "idstr"] = table.reindex(keys).to_numpy()
