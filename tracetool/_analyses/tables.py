"""A trace and its analyses as flat tables, for pandas, DuckDB or spreadsheets.

``trace_tables(trace, timeline, bql)`` gives ``events``, ``spans``, ``instants``, ``threads`` and
``processes``, plus ``bql_holds``/``bql_waits`` (every process's) when a BQL report is given.
:mod:`reports.tables` writes them as parquet or CSV files.
"""

from __future__ import annotations

import pandas as pd

from tracetool._analyses.bql.bql import BqlReport
from tracetool._model.trace import Trace
from tracetool._timeline.result import Timeline

TABLES = ("events", "spans", "instants", "threads", "processes")
BQL_TABLES = ("bql_holds", "bql_waits")


def trace_tables(trace: Trace, timeline: Timeline, bql: BqlReport | None = None) -> dict[str, pd.DataFrame]:
    """The tables of ``trace`` by name (see module docstring)."""
    out = {
        "events": trace.events,
        "spans": timeline.spans,
        "instants": timeline.instants,
        "threads": trace.threads,
        "processes": trace.processes,
    }
    if bql is not None:
        procs = [p for p in bql.processes.values() if p.mutex is not None]
        out["bql_holds"] = _concat([p.holds for p in procs])
        out["bql_waits"] = _concat([p.waits for p in procs])
    return out


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame()
    if len(frames) == 1:
        return frames[0]
    # Categoricals with different categories per process: plain values concatenate cleanly.
    plain = [
        f.astype({c: object for c in f.columns if isinstance(f[c].dtype, pd.CategoricalDtype)})
        for f in frames
    ]
    return pd.concat(plain, ignore_index=True)
