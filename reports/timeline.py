"""Rendering ``migtrace timeline``: spans and instants as tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from reports.console import fmt_us, table
from reports.phases import fmt_offset, render_notes_and_issues
from tracetool._timeline.result import Timeline, records


def _who(r: dict[str, Any]) -> str:
    return f"{r['thread']} ({r['tid']})" if r.get("tid") is not None else str(r["thread"])


def render_timeline_text(tl: Timeline, out: Console, limit: int) -> None:
    """Spans and instants in time order, times relative to the first one."""
    spans, instants, notes, issues = tl.spans, tl.instants, tl.notes, tl.issues
    span_rows = records(spans.head(limit))
    inst_rows = records(instants.head(limit))
    # A trace without timestamps has none to measure from: its times print as "-".
    firsts = [r["start_ns"] for r in span_rows[:1]] + [r["ts_ns"] for r in inst_rows[:1]]
    firsts = [t for t in firsts if t is not None]
    origin = min(firsts) if firsts else None
    more = "" if len(spans) <= limit else f", first {limit}"
    out.print(
        table(
            f"Spans ({len(spans)}{more})",
            ["start", "duration", "kind", "name", "process", "thread", "role", "idstr", ""],
            [
                [
                    fmt_offset(r["start_ns"], origin),
                    fmt_us(r.get("duration_us")),
                    r["kind"],
                    r["name"],
                    r["process"],
                    _who(r),
                    r["role"],
                    r.get("idstr", ""),
                    "" if r["closed"] else "not closed",
                ]
                for r in span_rows
            ],
            right=["start", "duration"],
        )
    )
    if inst_rows:
        more = "" if len(instants) <= limit else f", first {limit}"
        out.print(
            table(
                f"Instants ({len(instants)}{more})",
                ["at", "kind", "name", "process", "thread", "role"],
                [
                    [fmt_offset(r["ts_ns"], origin), r["kind"], r["name"], r["process"], _who(r), r["role"]]
                    for r in inst_rows
                ],
                right=["at"],
            )
        )
    counts = {str(k): int(v) for k, v in issues["kind"].value_counts().items()}
    render_notes_and_issues(notes, counts, records(issues), out)
