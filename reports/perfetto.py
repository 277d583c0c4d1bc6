"""A trace as Trace Event Format JSON, for ui.perfetto.dev and chrome://tracing.

Layout of the document (``{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}``):

* One process per QEMU process (``dst``, ``src``), with its real pid when the trace has it,
  else 1, 2, ...; ``process_name`` / ``process_sort_index`` metadata (``"ph": "M"``).
* One track per thread, in the lane order of the Gantt chart
  (:func:`tracetool._model.lanes.thread_lanes`: main, load, listen, preempt, fault, recv_N,
  vCPU, others), with ``thread_name`` / ``thread_sort_index``.
  Traces without thread ids get one track, ``all threads (no thread ids)``, per process.
* Spans of the timeline (sections, device loads, commands, postcopy steps, thread lifetimes,
  QMP commands, waits) as complete events (``"ph": "X"``, ``cat`` = the span kind) on their
  thread's track. Complete events on one track must nest; spans that would overlap partially
  go to extra tracks named ``THREAD · overlapping N``.
* The incoming/outgoing phases on a ``phases`` track per process, sorted first.
* BQL holds (``BQL held``) and waits (``BQL wait``) on a ``THREAD · BQL`` track next to each
  holder's track, so they never break the nesting of the thread's own spans.
* Postcopy page requests on ``page requests`` tracks of their process (one request per slice,
  stacked over as many tracks as were in flight at once), and a counter (``"ph": "C"``)
  ``page requests in flight``.
* Instants (checkpoints, state changes, ...) as thread-scoped instant events (``"ph": "i"``).

Timestamps are microseconds since the trace start (``otherData.trace_start_ns`` is that start
in the trace's own clock, ns). A trace with whole-microsecond times (QEMU's log backend) gets
integers. Nanosecond traces (ftrace, LTTng, simple backend) get binary fractions chosen so that
both kinds of readers get the nesting right: Perfetto truncates ``µs × 1000`` to integer ns,
so each time carries half a nanosecond more and reads back as the exact nanosecond;
chrome://tracing and DevTools add ``ts + dur`` in floating point, so every value lies on a
2⁻¹⁶ µs grid where those sums are exact and spans that end on the same nanosecond end on the
same number. The two readings cannot agree on a span that ends on the very nanosecond the
next one on its track begins; such spans end 1 ns early in nanosecond traces (``args.end_ns``
keeps the exact end). Events are written in time order, longer first at equal times.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from reports.atomic import atomic_writer
from tracetool._analyses.bql.bql import BqlReport
from tracetool._model.lanes import thread_lanes, trace_end_ns, trace_start_ns
from tracetool._model.trace import Trace
from tracetool._timeline.result import Timeline

PROCESS_TRACK_KINDS = ("phase",)
PAGE_KINDS = ("page-request",)
SPAN_ARGS = (
    "idstr",
    "instance_id",
    "section_id",
    "section_type",
    "version_id",
    "downtime",
    "command",
    "len",
    "ret",
    "length",
    "succeeded",
    "channel",
    "addr",
)
HOLD_ARGS = ("status", "started_by", "ended_by", "lock_site", "phase", "section", "device")
INSTANT_SKIP_COLS = ("process", "tid", "thread", "role", "kind", "name", "ts_ns", "row")
LANE_SORT = 100  # sort index step per thread: its overflow tracks and BQL track sort within
PAGES_SORT = 1_000_000
SYNTHETIC_TID = 1_000_000_000
"""First tid of the tracks that are not threads (phases, BQL, overflow, page requests)."""


@dataclass
class _Track:
    pid: int
    tid: int
    name: str
    sort: int
    events: list[dict[str, Any]] = field(default_factory=list)


GRID = 1 << 16
"""Nanosecond traces: times are multiples of 1/GRID µs (exact sums in binary floating point
up to 2**37 µs, 38 hours; the rounding to the grid is below 0.01 ns)."""


class _Clock:
    """Absolute ns -> Trace Event Format µs relative to the trace start (see module doc)."""

    def __init__(self, start: int, whole_us: bool) -> None:
        self.start = start
        self.whole_us = whole_us

    def _grid(self, twice_ns: int) -> float:
        """(twice_ns / 2) ns in µs, rounded to the grid: integer arithmetic, one exact division."""
        return ((twice_ns * GRID + 1000) // 2000) / GRID

    def us(self, ns: int) -> int | float:
        """A time: exact µs, or half a nanosecond late on the grid."""
        rel = int(ns) - self.start
        return rel // 1000 if self.whole_us else self._grid(2 * rel + 1)

    def dur(self, start_ns: int, end_ns: int) -> int | float:
        """The duration from ``start_ns`` to ``end_ns`` such that ``ts + dur`` is the end's own
        value: read by Perfetto as whole ns, and the same float for every span ending then."""
        a, z = int(start_ns), max(int(end_ns), int(start_ns))
        if self.whole_us:
            return (z - a) // 1000
        return self._grid(2 * (z - self.start) + 2) - self._grid(2 * (a - self.start) + 1)


def chrome_trace(trace: Trace, timeline: Timeline, bql: BqlReport | None = None) -> dict[str, Any]:
    """The Trace Event Format document of ``trace`` with its ``timeline`` (see module
    docstring), and the BQL holds and waits of ``bql`` when given. Raises NotInTrace for traces
    without timestamps.
    """
    start, end = trace_start_ns(trace), trace_end_ns(trace)
    tl = timeline
    ts = trace.ts
    whole_us = bool(((ts[ts != NO_TIME] - start) % 1000 == 0).all())
    builder = _Builder(trace, _Clock(start, whole_us), end)
    builder.spans(tl.spans)
    builder.instants(tl.instants)
    if bql is not None and not bql.empty:
        builder.bql(bql)
    return {
        "traceEvents": builder.finish(),
        "displayTimeUnit": "ms",
        "otherData": {
            "producer": "migtrace",
            "trace_start_ns": start,
            "clock": trace.clock,
            "inputs": [str(p) for p in trace.inputs["path"].tolist()],
        },
    }


def write_chrome_trace(
    trace: Trace, path: str | os.PathLike[str], timeline: Timeline, bql: BqlReport | None = None
) -> Path:
    """Writes :func:`chrome_trace` to ``path`` atomically; returns the path."""
    doc = chrome_trace(trace, timeline, bql)
    with atomic_writer(os.fspath(path)) as f:
        json.dump(doc, f, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        f.write("\n")
    return Path(path)


# ---------------------------------------------------------------------------------- building
class _Builder:
    def __init__(self, trace: Trace, clock: _Clock, end: int) -> None:
        self.trace = trace
        self.clock = clock
        self.start, self.end = clock.start, end
        self.lanes = thread_lanes(trace)
        self.pids = self._pids()
        self.tracks: dict[tuple[int, int], _Track] = {}
        self.next_tid = SYNTHETIC_TID
        self.processes: dict[str, int] = {
            p: i for i, p in enumerate(dict.fromkeys(self.lanes["process"].tolist()))
        }
        self.thread_track: dict[tuple[str, int], _Track] = {}
        for rank, r in enumerate(records(self.lanes)):
            pid = self.pids[r["process"]]
            tid = pid if pd.isna(r["tid"]) else int(r["tid"])
            label = _plain_label(r)
            t = self._track(pid, tid, label, LANE_SORT * (rank + 1))
            self.thread_track[(r["process"], -1 if pd.isna(r["tid"]) else int(r["tid"]))] = t
        self.counters: list[dict[str, Any]] = []
        self.instant_events: list[dict[str, Any]] = []

    # -- identities ----------------------------------------------------------------------
    def _pids(self) -> dict[str, int]:
        procs = self.trace.processes
        real = {
            str(lab): int(pid)
            for lab, pid in zip(procs["label"], procs["pid"], strict=True)
            if not pd.isna(pid)
        }
        out: dict[str, int] = {}
        taken = set(real.values())
        n = 1
        for lab in dict.fromkeys(self.lanes["process"].tolist()):
            if lab in real:
                out[lab] = real[lab]
                continue
            while n in taken:
                n += 1
            out[lab] = n
            taken.add(n)
        return out

    def _track(self, pid: int, tid: int | None, name: str, sort: int) -> _Track:
        if tid is None:
            tid = self.next_tid
            self.next_tid += 1
        t = _Track(pid, tid, name, sort)
        self.tracks[(pid, tid)] = t
        return t

    def _lane(self, process: str, tid: Any) -> _Track | None:
        key = (process, -1 if tid is None or pd.isna(tid) else int(tid))
        return self.thread_track.get(key)

    # -- spans ---------------------------------------------------------------------------
    def spans(self, spans: pd.DataFrame) -> None:
        s = spans[
            (spans["start_ns"].to_numpy(dtype=np.int64) != NO_TIME)
            & (spans["end_ns"].to_numpy(dtype=np.int64) != NO_TIME)
        ]
        kinds = s["kind"].astype(str)
        for process, group in s[kinds.isin(PROCESS_TRACK_KINDS).to_numpy()].groupby("process", sort=False):
            pid = self.pids.get(str(process))
            if pid is not None:
                self._layered(pid, "phases", 1, group, span_events)
        for process, group in s[kinds.isin(PAGE_KINDS).to_numpy()].groupby("process", sort=False):
            pid = self.pids.get(str(process))
            if pid is not None:
                self._layered(pid, "page requests", PAGES_SORT, group, page_events)
                self._in_flight(pid, group)
        rest = s[~kinds.isin(PROCESS_TRACK_KINDS + PAGE_KINDS).to_numpy()]
        for (process, tid), group in _by_thread(rest):
            track = self._lane(process, tid)
            if track is not None:
                self._layered(track.pid, track.name, track.sort, group, span_events, track)

    def _layered(
        self, pid: int, name: str, sort: int, frame: pd.DataFrame, make: Any, base: _Track | None = None
    ) -> None:
        """Complete events of ``frame`` on ``base`` (or a new track), overflow on more tracks."""
        starts = frame["start_ns"].to_numpy(dtype=np.int64)
        ends = np.maximum(frame["end_ns"].to_numpy(dtype=np.int64), starts)
        layer = nest_layers(starts, ends)
        shown = ends if self.clock.whole_us else ends - touching(starts, ends, layer)
        events = make(frame, self.clock, starts, shown)
        if shown is not ends:
            for e, exact, cut in zip(events, ends.tolist(), (shown != ends).tolist(), strict=True):
                if cut:
                    e["args"]["end_ns"] = exact
        tracks: list[_Track] = [base] if base is not None else []
        for k in range(int(layer.max()) + 1 if len(layer) else 0):
            if k == len(tracks):
                tracks.append(self._track(pid, None, _layer_name(name, k, base is not None), sort + k))
            tracks[k].events.extend(e for e, lay in zip(events, layer.tolist(), strict=True) if lay == k)

    def _in_flight(self, pid: int, req: pd.DataFrame) -> None:
        starts = req["start_ns"].to_numpy(dtype=np.int64)
        closed = req["closed"].to_numpy(dtype=bool)
        ends = req["end_ns"].to_numpy(dtype=np.int64)[closed]
        times = np.r_[starts, ends]
        delta = np.r_[np.ones(len(starts), np.int64), -np.ones(len(ends), np.int64)]
        order = np.lexsort((delta, times))  # at equal times, resolve before adding
        times, level = times[order], np.cumsum(delta[order])
        last = np.r_[times[1:] != times[:-1], True]  # one value per timestamp: the last
        for t, n in zip(times[last].tolist(), level[last].tolist(), strict=True):
            self.counters.append(
                {
                    "name": "page requests in flight",
                    "ph": "C",
                    "pid": pid,
                    "ts": self.clock.us(t),
                    "args": {"in_flight": int(n)},
                }
            )

    # -- BQL -----------------------------------------------------------------------------
    def bql(self, report: Any) -> None:
        for p in report.processes.values():
            if p.mutex is None:
                continue
            frames = [_bql_frame(p.holds, "BQL held", "bql"), _bql_frame(p.waits, "BQL wait", "bql-wait")]
            both = (
                pd.concat([f for f in frames if len(f)], ignore_index=True)
                if any(len(f) for f in frames)
                else None
            )
            if both is None:
                continue
            both["start_ns"] = both["start_ns"].fillna(self.start).astype(np.int64)
            both["end_ns"] = both["end_ns"].fillna(self.end).astype(np.int64)
            by_site = p.attribution != "thread"
            for (process, tid), group in _by_thread(both, by_role=by_site):
                lane = self._lane(str(process), None if by_site else tid)
                if lane is None:
                    continue
                name = f"BQL · {tid} (by call site)" if by_site else f"{lane.name} · BQL"
                self._layered(lane.pid, name, lane.sort + LANE_SORT // 2, group, span_events)

    # -- instants ------------------------------------------------------------------------
    def instants(self, inst: pd.DataFrame) -> None:
        inst = inst[inst["ts_ns"].to_numpy(dtype=np.int64) != NO_TIME]
        extra = [c for c in inst.columns if c not in INSTANT_SKIP_COLS]
        for r in records(inst):
            track = self._lane(str(r["process"]), r["tid"])
            if track is None:
                continue
            self.instant_events.append(
                {
                    "name": str(r["name"]),
                    "cat": str(r["kind"]),
                    "ph": "i",
                    "s": "t",
                    "ts": self.clock.us(r["ts_ns"]),
                    "pid": track.pid,
                    "tid": track.tid,
                    "args": _args(r, extra),
                }
            )

    # -- output --------------------------------------------------------------------------
    def finish(self) -> list[dict[str, Any]]:
        meta: list[dict[str, Any]] = []
        procs = self.trace.processes
        side = {str(a): b for a, b in zip(procs["label"], procs["side"], strict=True)}
        for label, pid in self.pids.items():
            what = {"dst": "incoming QEMU", "src": "outgoing QEMU"}.get(str(side.get(label)), "QEMU")
            meta.append(_meta("process_name", pid, None, {"name": f"{label} ({what})"}))
            meta.append(_meta("process_sort_index", pid, None, {"sort_index": self.processes.get(label, 0)}))
        timed: list[dict[str, Any]] = []
        for t in self.tracks.values():
            meta.append(_meta("thread_name", t.pid, t.tid, {"name": t.name}))
            meta.append(_meta("thread_sort_index", t.pid, t.tid, {"sort_index": t.sort}))
            for e in t.events:
                e["pid"], e["tid"] = t.pid, t.tid
            timed.extend(t.events)
        timed.extend(self.instant_events)
        timed.extend(self.counters)
        timed.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
        return meta + timed


# ---------------------------------------------------------------------------------- helpers
def nest_layers(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per interval, the first layer where it nests properly (inside or after every interval
    already there): within a layer no two intervals overlap partially.

    Intervals are taken longest first at equal starts; an interval that starts where another
    ends is after it. Most tracks need one layer, which is checked without a loop.
    """
    n = len(starts)
    out = np.zeros(n, dtype=np.int64)
    if n < 2:
        return out
    order = np.lexsort((-ends, starts))
    s, e = starts[order], ends[order]
    if bool((s[1:] >= e[:-1]).all()):  # one after another: no nesting at all
        return out
    stacks: list[list[int]] = []  # per layer: ends of the open intervals, innermost last
    for i in order.tolist():  # tracks with nesting hold few spans (sections, devices...)
        a, z = int(starts[i]), int(ends[i])
        for k, stack in enumerate(stacks):
            while stack and stack[-1] <= a:
                stack.pop()
            if not stack or z <= stack[-1]:
                stack.append(z)
                out[i] = k
                break
        else:
            stacks.append([z])
            out[i] = len(stacks) - 1
    return out


def touching(starts: np.ndarray, ends: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """1 for each span that ends on the nanosecond another span of its track begins, else 0.

    Floating-point readers see such a pair overlap by half a nanosecond (see module doc):
    these spans are shown 1 ns shorter. Zero-length spans are never touched.
    """
    long = ends > starts
    begins = set(zip(layer[long].tolist(), starts[long].tolist(), strict=True))
    hit = [lay_end in begins for lay_end in zip(layer.tolist(), ends.tolist(), strict=True)]
    return (np.array(hit, dtype=bool) & long).astype(np.int64)


def span_events(
    frame: pd.DataFrame, clock: _Clock, starts: np.ndarray, ends: np.ndarray
) -> list[dict[str, Any]]:
    """Complete events for spans (timeline spans or BQL holds/waits frames)."""
    extra = [c for c in SPAN_ARGS + HOLD_ARGS if c in frame.columns]
    closed = frame["closed"].to_numpy(dtype=bool) if "closed" in frame else np.ones(len(frame), bool)
    out = []
    for r, a, z, ok in zip(records(frame), starts.tolist(), ends.tolist(), closed.tolist(), strict=True):
        args = _args(r, extra)
        name = _span_name(r)
        if not ok:
            args["closed"] = False
            name += " (unclosed)"
        out.append(
            {
                "name": name,
                "cat": str(r["kind"]),
                "ph": "X",
                "ts": clock.us(a),
                "dur": clock.dur(a, z),
                "args": args,
            }
        )
    return out


def page_events(
    frame: pd.DataFrame, clock: _Clock, starts: np.ndarray, ends: np.ndarray
) -> list[dict[str, Any]]:
    """Complete events for postcopy page requests, named by host address."""
    out = span_events(frame, clock, starts, ends)
    addrs = frame["addr"].tolist() if "addr" in frame else [None] * len(frame)
    for e, addr in zip(out, addrs, strict=True):
        if addr is not None and not pd.isna(addr):
            e["name"] = f"page {int(addr):#x}" + (" (unclosed)" if e["name"].endswith("(unclosed)") else "")
    return out


def _layer_name(name: str, k: int, on_thread: bool) -> str:
    """Track name of layer ``k``: the thread's own track, then ``· overlapping k``; for tracks
    of their own (phases, page requests): ``name``, ``name 2``, ..."""
    if on_thread:
        return f"{name} · overlapping {k}"
    return name if k == 0 else f"{name} {k + 1}"


def _span_name(r: dict[str, Any]) -> str:
    name = str(r["name"])
    idstr = r.get("idstr")
    if r["kind"] == "section" and isinstance(idstr, str) and idstr and idstr != name:
        return f"{name} {idstr}"
    return name


def _bql_frame(frame: pd.DataFrame, name: str, kind: str) -> pd.DataFrame:
    if not len(frame):
        return frame
    out = frame.copy()
    out["name"] = name
    out["kind"] = kind
    out["start_ns"] = out["start_ns"].astype("Int64")
    out["end_ns"] = out["end_ns"].astype("Int64")
    if "site" in out and "lock_site" not in out:
        out["lock_site"] = out["site"]
    return out


def _by_thread(frame: pd.DataFrame, by_role: bool = False) -> Iterable[tuple[tuple[str, Any], pd.DataFrame]]:
    """Groups of a frame per (process, tid) — or (process, role) for call-site attribution."""
    if not len(frame):
        return []
    key = frame["role"].astype(str) if by_role else frame["tid"].astype("Int64").fillna(-1)
    groups = frame.groupby([frame["process"].astype(str), key], sort=False)
    out = []
    for (process, k), g in groups:
        out.append(((str(process), None if not by_role and int(cast(int, k)) < 0 else k), g))
    return out


def _plain_label(r: dict[str, Any]) -> str:
    """The lane label without the process prefix (Perfetto groups tracks by process)."""
    label = str(r["label"])
    prefix = f"{r['process']} · "
    return label[len(prefix) :] if label.startswith(prefix) else label


def _args(r: dict[str, Any], cols: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in cols:
        v = r.get(c)
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            continue
        if isinstance(v, (np.integer,)):
            v = int(v)
        elif isinstance(v, (np.floating,)):
            v = float(v)
        elif isinstance(v, (np.bool_,)):
            v = bool(v)
        elif not isinstance(v, (int, float, bool, str)):
            v = str(v)
        if c == "addr" and isinstance(v, int):
            v = f"{v:#x}"
        out[c] = v
    return out


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts keyed by column name (NA stays NA)."""
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def _meta(name: str, pid: int, tid: int | None, args: dict[str, Any]) -> dict[str, Any]:
    e: dict[str, Any] = {"name": name, "ph": "M", "pid": pid, "args": args}
    if tid is not None:
        e["tid"] = tid
    return e


__all__ = ["chrome_trace", "nest_layers", "write_chrome_trace"]
