"""When the trace ended: what each thread did last, for runs that stop without a final
migration state (a hung, killed or cut run).

Per thread: its last event, how long before the end of the trace that was, and the spans it had
open (begun, never ended: :mod:`tracetool._timeline.builder`, ``spans[~closed]``). The end of
the trace is its last timestamp; the final state of each side is the last ``migrate_set_state``
state the timeline saw there. A trace whose every traced side ends in a final state
(``completed``, ``failed``, ``cancelled``: the ``[outcome]`` table of ``spans.toml``) has nothing
to show (``empty``).

    >>> end = analyze_trace_end(tracetool.load("dst.trace.xz"))
    >>> end.final_state, [t.last_event for t in end.threads]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._analyses.merge import process_of_side
from tracetool._json import integer, number, text
from tracetool._model.trace import Trace
from tracetool._timeline.builder import build_timeline
from tracetool._timeline.rules import rules

SIDES = ("src", "dst")


@dataclass
class OpenSpan:
    """A span that began on the thread and never ended."""

    kind: str
    name: str
    start_ns: int | None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "start_ns": integer(self.start_ns)}


@dataclass
class ThreadEnd:
    """One thread at the end of the trace (``since_us``: from its last event to the end)."""

    process: str
    tid: int | None
    thread: str | None
    role: str
    last_event: str
    last_ns: int | None
    since_us: float | None
    open_spans: list[OpenSpan] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "process": self.process,
            "tid": integer(self.tid),
            "thread": text(self.thread),
            "role": self.role,
            "last_event": self.last_event,
            "last_ns": integer(self.last_ns),
            "since_us": number(self.since_us),
            "open_spans": [s.to_json() for s in self.open_spans],
        }


@dataclass
class TraceEnd:
    """The end of a trace; see the module docstring."""

    ended_ns: int | None
    final_state: dict[str, str | None]  # per traced side (or process label when its side is unknown)
    threads: list[ThreadEnd]
    sides: tuple[str, ...]  # the keys of final_state: what was traced

    @property
    def finished(self) -> bool:
        """True when every traced side ends in a final migration state."""
        final = {s for values in rules().outcome.values() for s in values}
        return bool(self.sides) and all(self.final_state.get(s) in final for s in self.sides)

    @property
    def empty(self) -> bool:
        """True when the trace ends with a final migration state on every traced side."""
        return self.finished

    @property
    def issue_count(self) -> int:
        """Always 0: a trace that stops early is not an inconsistency of the input."""
        return 0

    def to_json(self) -> dict[str, Any]:
        """``{"ended_ns", "final_state": {"src", "dst", ...}, "threads": [...]}``; see the README."""
        return {
            "ended_ns": integer(self.ended_ns),
            "final_state": {**{s: None for s in SIDES}, **self.final_state},
            "threads": [t.to_json() for t in self.threads],
        }

    def not_in_trace(self) -> str:
        """Why there is nothing to show: the final state of every traced side."""
        states = ", ".join(f"{s}: {self.final_state[s]}" for s in self.sides)
        return f"the trace ends with a final migration state ({states})"


def analyze_trace_end(trace: Trace) -> TraceEnd:
    """What each thread did last when ``trace`` ended (see the module docstring)."""
    tl = build_timeline(trace)
    timed = trace.ts[trace.ts != NO_TIME]
    ended = int(timed.max()) if len(timed) else None
    inst = tl.instants
    states = inst[(inst["kind"] == "state").to_numpy(dtype=bool)].sort_values("row", kind="stable")
    procs = trace.processes
    # Each side's process; when no process has a known side (no pids to tell), each process.
    traced = [(side, label) for side in SIDES if (label := process_of_side(trace, side)) is not None]
    if not traced:
        traced = [(str(lab), str(lab)) for lab in procs["label"]]
    final: dict[str, str | None] = {}
    sides = []
    for key, label in traced:
        sides.append(key)
        mine = states[(states["process"].astype(str) == label).to_numpy(dtype=bool)]
        final[key] = str(mine["name"].iloc[-1]) if len(mine) else None
    return TraceEnd(ended, final, _threads(trace, tl.spans, ended), tuple(sides))


def _threads(trace: Trace, spans: pd.DataFrame, ended: int | None) -> list[ThreadEnd]:
    th = trace.threads
    last_row = np.full(len(th), -1, dtype=np.int64)
    if len(trace):
        np.maximum.at(last_row, trace.row_thread, np.arange(len(trace), dtype=np.int64))
    open_spans = spans[~spans["closed"].to_numpy(dtype=bool)].sort_values("start_ns", kind="stable")
    by_thread: dict[tuple[str, int | None], list[OpenSpan]] = {}
    for s in open_spans.to_dict("records"):  # open spans are few: one step each
        tid = None if pd.isna(s["tid"]) else int(s["tid"])
        start = None if pd.isna(s["start_ns"]) or s["start_ns"] == NO_TIME else int(s["start_ns"])
        by_thread.setdefault((str(s["process"]), tid), []).append(
            OpenSpan(str(s["kind"]), str(s["name"]), start)
        )
    out = []
    for i, t in enumerate(th.to_dict("records")):  # threads are few: one step each
        row = int(last_row[i])
        if row < 0:
            continue
        tid = None if pd.isna(t["tid"]) else int(t["tid"])
        ts = int(trace.ts[row])
        last_ns = None if ts == NO_TIME else ts
        out.append(
            ThreadEnd(
                str(t["process"]),
                tid,
                None if pd.isna(t["name"]) else str(t["name"]),
                str(t["role"]),
                trace.event_names[int(trace.name_codes[row])],
                last_ns,
                None if last_ns is None or ended is None else (ended - last_ns) / 1000.0,
                by_thread.get((str(t["process"]), tid), []),
            )
        )
    out.sort(key=lambda t: (t.process, t.last_ns if t.last_ns is not None else 0))
    return out
