"""Rendering the summary document (``summarize(trace).to_json()``): inputs, threads, event counts."""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console

from reports.console import table
from reports.timezero import TimeZero

PID_ONLY_FORMATS = ("simple", "simpletrace-stap", "stap")


def summary_zero(summary: dict[str, Any]) -> TimeZero:
    """The time zero of a summary document: the first event of any thread (of the processes
    listed and of those left out as not QEMU), as :meth:`TimeZero.of` finds it on the trace."""
    listed = summary["threads"] + summary.get("other_processes", [])
    firsts = [t["first_ns"] for t in listed if t["first_ns"] is not None]
    return TimeZero(min(firsts) if firsts else None, summary["clock"])


def not_qemu_line(others: list[dict[str, Any]]) -> str:
    """The one line that counts the processes left out of the thread table as not QEMU."""
    threads = sum(o["threads"] for o in others)
    events = sum(o["events"] for o in others)
    names = sorted({n for o in others for n in o["names"]})
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return (
        f"not listed: {threads} thread(s) of {len(others)} process(es) that are not QEMU "
        f"(no QEMU events, no sidecar; {events} kernel or tracer events{': ' + shown if shown else ''})"
    )


def render_summary_text(
    summary: dict[str, Any], out: Console, top_events: int = 15, borrowed: bool = False
) -> None:
    """Prints the summary as readable tables; ``borrowed``: --borrow-from was given (its hint
    is then not repeated)."""
    inputs = summary["inputs"]
    out.print(
        table(
            "Inputs",
            ["path", "format", "clock", "lines", "events", "other", "set aside", "dropped"],
            [
                [
                    i["path"],
                    i["format"],
                    i["clock"],
                    i["lines"],
                    i["events"],
                    i["other_lines"],
                    sum(i.get("set_aside", {}).values()),
                    i["dropped_events"],
                ]
                for i in inputs
            ],
            right=["lines", "events", "other", "set aside", "dropped"],
            tail=["path"],
        )
    )
    for fmt, variant in dict.fromkeys((i["format"], i["variant"]) for i in inputs):
        out.print(f"{fmt}: {variant}")
    aside: dict[str, int] = {}
    for i in inputs:
        for kind, n in i.get("set_aside", {}).items():
            aside[kind] = aside.get(kind, 0) + n
    if aside:
        out.print(
            "set aside (not events, not other lines): "
            + ", ".join(f"{n} {kind}" for kind, n in aside.items())
        )
    by_reason: dict[str, list[str]] = {}
    for f in summary.get("skipped_inputs", []):
        by_reason.setdefault(f["reason"], []).append(f["path"])
    for reason, paths in by_reason.items():
        if len(paths) == 1:
            out.print(f"not read: {paths[0]}: {reason}")
        else:
            names = ", ".join(os.path.basename(p) for p in paths)
            out.print(f"not read ({reason}): {len(paths)} files in {os.path.dirname(paths[0])}: {names}")
    zero = summary_zero(summary)
    out.print(zero.header())
    others = summary.get("other_processes", [])
    if others:
        out.print(not_qemu_line(others))
    out.print(
        table(
            "Threads",
            ["process", "tid", "name", "role", "load", "events", "first", "last"],
            [
                [
                    t["process"],
                    t["tid"] if t["tid"] is not None else "-",
                    t["name"] or "-",
                    t["role"],
                    "yes" if t["carries_load"] else "",
                    t["events"],
                    zero.at(t["first_ns"]),
                    zero.at(t["last_ns"]),
                ]
                for t in summary["threads"]
            ],
            right=["tid", "events", "first", "last"],
        )
    )
    if not any(t["tid"] is not None for t in summary["threads"]):
        if borrowed:
            out.print("No thread ids, even with --borrow-from: the log had none to lend to these events.")
        elif all(i["format"] in PID_ONLY_FORMATS for i in inputs):
            out.print(
                "No thread ids: the simple backend and SystemTap record only the process id. "
                "Borrow them from a log file of the same run with --borrow-from."
            )
        else:
            out.print(
                "No thread ids in this trace (QEMU >= 10.1 log lines carry none): record "
                "with -d tid -D trace.%d for one file per thread, or use ftrace/LTTng."
            )
    counts = list(summary["event_counts"].items())
    shown = counts[:top_events]
    out.print(
        table(
            f"Events ({len(counts)} names, top {len(shown)})",
            ["event", "count"],
            shown,
            right=["count"],
        )
    )
    for i in inputs:
        for w in i["warnings"]:
            out.print(f"warning: {w}")
