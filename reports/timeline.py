"""Rendering ``migtrace timeline``: spans and instants as tables or JSON records."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from parsers.segment import NO_TIME
from reports.console import fmt_us, table
from reports.phases import fmt_offset, render_notes_and_issues


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


ALWAYS_KEPT = ("tid", "end_row", "start_ns", "end_ns", "ts_ns", "duration_us")


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts; attribute columns that are empty on a row are left out.

    Times of a trace without timestamps (``NO_TIME``) become null.
    """
    cols = list(frame.columns)
    values = [frame[c].tolist() for c in cols]
    times = {c for c in cols if c.endswith("_ns")}
    out = []
    for i in range(len(frame)):
        rec = {c: _plain(values[j][i]) for j, c in enumerate(cols)}
        for c in times:
            if rec[c] == NO_TIME:
                rec[c] = None
        out.append({k: v for k, v in rec.items() if v is not None or k in ALWAYS_KEPT})
    return out


def _who(r: dict[str, Any]) -> str:
    return f"{r['thread']} ({r['tid']})" if r.get("tid") is not None else str(r["thread"])


def render_timeline_text(spans: pd.DataFrame, instants: pd.DataFrame, notes: list[str],
                         issues: pd.DataFrame, out: Console, limit: int) -> None:
    """Spans and instants in time order, times relative to the first one."""
    span_rows = records(spans.head(limit))
    inst_rows = records(instants.head(limit))
    firsts = [r["start_ns"] for r in span_rows[:1]] + [r["ts_ns"] for r in inst_rows[:1]]
    origin = min(firsts) if firsts else None
    more = "" if len(spans) <= limit else f", first {limit}"
    out.print(table(
        f"Spans ({len(spans)}{more})",
        ["start", "duration", "kind", "name", "process", "thread", "role", "idstr", ""],
        [[fmt_offset(r["start_ns"], origin), fmt_us(r.get("duration_us")), r["kind"], r["name"],
          r["process"], _who(r), r["role"], r.get("idstr", ""), "" if r["closed"] else "not closed"]
         for r in span_rows],
        right=["start", "duration"],
    ))
    if inst_rows:
        more = "" if len(instants) <= limit else f", first {limit}"
        out.print(table(
            f"Instants ({len(instants)}{more})",
            ["at", "kind", "name", "process", "thread", "role"],
            [[fmt_offset(r["ts_ns"], origin), r["kind"], r["name"], r["process"], _who(r), r["role"]]
             for r in inst_rows],
            right=["at"],
        ))
    counts = {str(k): int(v) for k, v in issues["kind"].value_counts().items()}
    render_notes_and_issues(notes, counts, records(issues), out)
