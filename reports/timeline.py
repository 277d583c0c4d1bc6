"""Rendering ``migtrace timeline``: spans and instants as tables."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from rich.console import Console

from reports.console import fmt_us, table, who
from reports.phases import render_notes_and_issues
from reports.timezero import TimeZero
from tracetool._timeline.result import Timeline, records


def _who(r: dict[str, Any]) -> str:
    return who(r.get("tid"), r.get("thread"))


def render_timeline_text(
    tl: Timeline, out: Console, limit: int, zero: TimeZero, offsets: Collection[str] = ()
) -> None:
    """Spans and instants in time order, times in seconds since ``zero``."""
    spans, instants, notes, issues = tl.spans, tl.instants, tl.notes, tl.issues
    span_rows = records(spans.head(limit))
    inst_rows = records(instants.head(limit))
    out.print(zero.header())
    more = "" if len(spans) <= limit else f", first {limit}"
    out.print(
        table(
            f"Spans ({len(spans)}{more})",
            ["start", "duration", "kind", "name", "process", "thread", "role", "idstr", ""],
            [
                [
                    zero.at(r["start_ns"]),
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
            omit_unknown=["thread"],
        )
    )
    if inst_rows:
        more = "" if len(instants) <= limit else f", first {limit}"
        out.print(
            table(
                f"Instants ({len(instants)}{more})",
                ["at", "kind", "name", "process", "thread", "role"],
                [
                    [zero.at(r["ts_ns"]), r["kind"], r["name"], r["process"], _who(r), r["role"]]
                    for r in inst_rows
                ],
                right=["at"],
                omit_unknown=["thread"],
            )
        )
    counts = {str(k): int(v) for k, v in issues["kind"].value_counts().items()}
    render_notes_and_issues(notes, counts, records(issues), out, records(tl.open_at_end), offsets)
