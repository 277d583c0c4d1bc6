"""What is in a trace: its inputs (format, clock, line counts), processes, threads with names
and roles, and event counts. ``migtrace summary --format json`` is ``summarize(trace).to_json()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tracetool._analyses.merge import process_mask
from tracetool._json import integer, text
from tracetool._model.trace import Trace


@dataclass
class TraceSummary:
    """The result of :func:`summarize` (see ``to_json`` for the stable keys)."""

    inputs: list[dict[str, Any]]
    processes: list[dict[str, Any]]
    threads: list[dict[str, Any]]
    skipped_inputs: list[dict[str, str]]
    event_counts: dict[str, int]
    clock: str
    totals: dict[str, int]
    other_processes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """A loaded trace always has something to summarise."""
        return False

    @property
    def issue_count(self) -> int:
        """Lines the readers kept but did not fully understand."""
        return self.totals["warnings"]

    def to_json(self) -> dict[str, Any]:
        """The ``migtrace summary --format json`` document (see README)."""
        return {
            "inputs": self.inputs,
            "processes": self.processes,
            "threads": self.threads,
            "skipped_inputs": self.skipped_inputs,
            "event_counts": self.event_counts,
            "clock": self.clock,
            "other_processes": self.other_processes,
            "totals": self.totals,
        }


def _not_qemu(trace: Trace) -> set[str]:
    """Processes that are not QEMU: none of their events is a QEMU trace event and no sidecar
    names their threads (the tracer's own process, kernel threads seen by sched/task events
    of an ftrace capture)."""
    labels = [str(x) for x in trace.processes["label"]]
    if len(labels) < 2:
        return set()
    qemu_code = np.array([n in trace.catalog for n in trace.event_names] or [False], dtype=bool)
    qemu_row = qemu_code[trace.name_codes] if len(trace) else np.zeros(0, dtype=bool)
    threads = trace.threads
    named = {str(p) for p in threads.loc[threads["name_source"] == "sidecar", "process"]}
    return {p for p in labels if p not in named and not qemu_row[process_mask(trace, p)].any()}


def _other(label: str, threads: pd.DataFrame) -> dict[str, Any]:
    mine = threads[threads["process"].astype(str) == label]
    firsts = mine["first_ns"].dropna()
    return {
        "label": label,
        "threads": len(mine),
        "events": int(mine["events"].sum()),
        "names": sorted({str(n) for n in mine["name"].dropna()}),
        "first_ns": integer(firsts.min()) if len(firsts) else None,
    }


def summarize(trace: Trace) -> TraceSummary:
    """Inputs, processes, threads and event counts of ``trace``; processes that are not QEMU
    are left out of the process and thread lists and counted in ``other_processes``."""
    infos = trace.input_info
    others = _not_qemu(trace)
    threads = trace.threads
    other_threads = threads[threads["process"].astype(str).isin(others)]
    return TraceSummary(
        inputs=[
            {
                "path": i.path,
                "format": i.format,
                "variant": i.variant,
                "clock": i.clock,
                "lines": i.lines,
                "events": i.events,
                "other_lines": i.other_lines,
                "set_aside": dict(i.set_aside),
                "dropped_events": sum(n for _, n in i.dropped_events),
                "warnings": [str(w) for w in i.warnings],
            }
            for i in infos
        ],
        processes=[
            {
                "label": r["label"],
                "side": text(r["side"]),
                "pid": integer(r["pid"]),
                "load_tid": integer(r["load_tid"]),
            }
            for r in trace.processes.to_dict("records")
            if str(r["label"]) not in others
        ],
        threads=[
            {
                "process": str(r["process"]),
                "tid": integer(r["tid"]),
                "name": text(r["name"]),
                "name_source": text(r["name_source"]),
                "role": str(r["role"]),
                "carries_load": bool(r["carries_load"]),
                "events": int(r["events"]),
                "first_ns": integer(r["first_ns"]),
                "last_ns": integer(r["last_ns"]),
            }
            for r in threads.to_dict("records")
            if str(r["process"]) not in others
        ],
        other_processes=[_other(label, other_threads) for label in sorted(others)],
        skipped_inputs=[{"path": f.path, "reason": f.reason} for f in trace.skipped_inputs],
        event_counts=trace.event_counts(),
        clock=trace.clock,
        totals={
            "lines": sum(i.lines for i in infos),
            "events": len(trace),
            "other_lines": sum(i.other_lines for i in infos),
            "warnings": len(trace.warnings),
            "dropped_events": sum(n for i in infos for _, n in i.dropped_events),
        },
    )
