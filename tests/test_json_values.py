"""Plain JSON values per column (``tracetool._json.plain_column``) are the values ``plain`` gives
one at a time: on every column of the frames migtrace writes from real traces, and on the
missing-value forms each dtype has."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import tracetool
from parsers.segment import NO_TIME
from tests.conftest import sample
from tracetool._json import plain, plain_column


def _typed(values: list[Any]) -> list[tuple[type, Any]]:
    # True == 1 and 1.0 == 1 in Python: the type is part of what must agree
    return [(type(v), v) for v in values]


def _frames_of(path: str) -> dict[str, pd.DataFrame]:
    trace = tracetool.load(path)
    tl = tracetool.build_timeline(trace)
    # the events frame's dtypes are all in its first rows; the per-value side is slow on all
    frames = {"events": trace.events.head(20_000), "threads": trace.threads}
    frames |= {"spans": tl.spans, "instants": tl.instants}
    bql = tracetool.analyze_bql(trace)
    for label, p in bql.processes.items():
        if p.mutex is not None:
            frames[f"{label} holds"] = p.holds
            frames[f"{label} waits"] = p.waits
            frames[f"{label} bql threads"] = p.threads
    phases = tracetool.analyze_phases(trace)
    frames["phases"] = phases.phases
    frames["devices"] = phases.devices
    return frames


@pytest.mark.parametrize(
    "rel",
    [
        "qemu-threadify/e-precopy-mutex",
        "qemu-7.2/e-precopy-mutex",
        "qemu-threadify/d-postcopy-preempt",
        "qemu-threadify-lttng/a-precopy-mutex",
    ],
)
def test_every_column_of_real_frames_converts_as_value_by_value(rel: str) -> None:
    checked = 0
    for name, frame in _frames_of(sample(*rel.split("/"))).items():
        for c in frame.columns:
            want = [plain(v) for v in frame[c].tolist()]
            assert _typed(plain_column(frame[c])) == _typed(want), (name, c, str(frame[c].dtype))
            checked += 1
    assert checked > 50


@pytest.mark.parametrize(
    "column",
    [
        pd.Series([1, NO_TIME, 3], dtype=np.int64),
        pd.Series([1, 2, -5], dtype=np.int32),
        pd.Series([2**63 + 5, 0], dtype=np.uint64),
        pd.Series([1.5, np.nan, 0.0]),
        pd.Series([True, False]),
        pd.Series([1, None, NO_TIME], dtype="Int64"),
        pd.Series([1.5, None], dtype="Float64"),
        pd.Series([True, None], dtype="boolean"),
        pd.Series(["a", None], dtype="string"),
        pd.Series(["a", None], dtype=pd.StringDtype(na_value=np.nan)),
        pd.Series(["x", None, "y", "x"], dtype="category"),
        pd.Series(pd.Categorical([3, None, NO_TIME])),  # a category that is the no-time mark
        pd.Series([np.int64(4), None, np.float64("nan"), "s", NO_TIME, np.bool_(True)], dtype=object),
        pd.Series([], dtype=np.int64),
    ],
    ids=lambda s: str(s.dtype),
)
def test_missing_forms_of_each_dtype(column: pd.Series) -> None:
    assert _typed(plain_column(column)) == _typed([plain(v) for v in column.tolist()])
