"""Rendering the BQL analysis (its JSON document, ``BqlReport.to_json()``) as text tables."""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Any

from rich.console import Console

from reports.console import fmt_us, table, who
from reports.timezero import TimeZero
from reports.trace_end import at_end_lines, render_trace_end_text, wrapped
from tracetool._analyses.bql.document import MAX_LISTED
from tracetool._json import number


def _us(v: Any) -> str:
    f = number(v)
    return fmt_us(f) if f is not None else "-"


def holder(t: dict[str, Any]) -> str:
    """A BQL holder as ``name (tid)``; its role when the trace has neither (no thread ids)."""
    shown = who(t.get("tid"), t.get("thread"))
    return shown if shown != "-" else str(t.get("role") or "-")


def where(path: str, line: int | None, offsets: Collection[str] = ()) -> str:
    """An event's place: ``file:line``, or ``file@offset`` for a file of ``offsets`` (binary
    inputs, whose records have a byte offset, not a line)."""
    if line is None:
        return "-"
    return f"{os.path.basename(path)}{'@' if path in offsets else ':'}{line}"


def render_process_text(
    data: dict[str, Any], out: Console, zero: TimeZero, issues_shown: int = 20, offsets: Collection[str] = ()
) -> None:
    """One process (an entry of ``BqlReport.to_json()["processes"]``) as readable tables; times
    in seconds since ``zero``; ``offsets``: the input files whose ``line`` is a byte offset."""
    head = f"BQL in {data['process']}"
    if data["mutex"] is None:
        out.print(f"{head}: not found")
    else:
        how = "per thread" if data["attribution"] == "thread" else "by call site (no thread ids in the trace)"
        out.print(f"{head}: mutex {data['mutex']}, {data['identified_by']}; attributed {how}")
    if data["threads"]:
        columns = [
            "tid",
            "thread",
            "role",
            "holds",
            "total",
            "max",
            "p50",
            "p90",
            "p99",
            "open",
            "waits",
            "wait total",
            "wait max",
            "wait p99",
        ]
        rows = [
            [
                t["tid"] if t["tid"] is not None else "-",
                t["name"] or "-",
                t["role"],
                t["holds"],
                _us(t["hold_total_us"]),
                _us(t["hold_max_us"]),
                _us(t["hold_p50_us"]),
                _us(t["hold_p90_us"]),
                _us(t["hold_p99_us"]),
                t["open_holds"],
                t["waits"],
                _us(t["wait_total_us"]),
                _us(t["wait_max_us"]),
                _us(t["wait_p99_us"]),
            ]
            for t in data["threads"]
        ]
        out.print(
            table(
                "Holds and waits per thread"
                if data["attribution"] == "thread"
                else "Holds and waits per role (by call site)",
                columns,
                rows,
                right=[c for c in columns if c not in ("thread", "role")],
                # attributed by call site, the rows are roles: no thread id or name to show
                omit_unknown=["tid", "thread"],
                optional=["open", "p90", "wait p99", "wait max", "p50"],
            )
        )
    if data["longest_holds"]:
        out.print(
            table(
                f"Longest holds (top {len(data['longest_holds'])})",
                ["taken at", "held", "thread", "lock site", "phase", "section", "device", "where"],
                [
                    [
                        zero.at(h["start_ns"]),
                        _us(h["duration_us"]),
                        holder(h),
                        h["lock_site"] or "-",
                        h["phase"] or "-",
                        h["section"] or "-",
                        h["device"] or "-",
                        where(h["path"], h["line"], offsets),
                    ]
                    for h in data["longest_holds"]
                ],
                right=["taken at", "held"],
                optional=["where", "section"],
                tail=["device"],
            )
        )
    if data["by_phase"]:
        out.print(
            table(
                "BQL held, by migration phase",
                ["phase", "length", "holds", "held", "held %", "by"],
                [
                    [
                        ph["phase"],
                        _us(ph["duration_us"]),
                        ph["holds"],
                        _us(ph["hold_us"]),
                        "-" if ph["held_fraction"] is None else f"{100 * ph['held_fraction']:.1f}",
                        ", ".join(f"{holder(t)} {fmt_us(t['hold_us'])}" for t in ph["threads"][:3]),
                    ]
                    for ph in data["by_phase"]
                ],
                right=["length", "holds", "held", "held %"],
            )
        )
    n = data["inconsistency_count"]
    if n:
        out.print(f"{n} inconsistencies:")
        for i in data["inconsistencies"][:issues_shown]:
            out.print(f"  {i['path']}{'@' if i['path'] in offsets else ':'}{i['line']}: {i['message']}")
        if n > issues_shown:
            out.print(f"  ... {n - issues_shown} more (--format json lists up to {MAX_LISTED})")
    if data["edge_count"]:
        out.print(f"{data['edge_count']} holds or waits cut by the start or end of the trace:")
        for i in data["edges"][:5]:
            out.print(f"  {i['path']}{'@' if i['path'] in offsets else ':'}{i['line']}: {i['message']}")
    if offsets and (data["longest_holds"] or n or data["edge_count"]):
        out.print("file@N: byte offset N of a record in a binary (simple backend) trace file")
    for line in at_end_lines(data, zero):
        out.print(wrapped(line))
    for note in data["notes"]:
        out.print(f"note: {note}")


def render_bql_text(
    data: dict[str, Any],
    out: Console,
    zero: TimeZero,
    trace_end: dict[str, Any] | None = None,
    offsets: Collection[str] = (),
) -> None:
    """The whole document (``BqlReport.to_json()``), then, when given, what each thread did
    last (``TraceEnd.to_json()`` of a trace that ends without a final migration state)."""
    if data["note"]:
        out.print(data["note"])
    else:
        out.print(zero.header())
        for i, proc in enumerate(data["processes"].values()):
            if i:
                out.print("")
            render_process_text(proc, out, zero, offsets=offsets)
    if trace_end is not None:
        out.print("")
        render_trace_end_text(trace_end, out)
