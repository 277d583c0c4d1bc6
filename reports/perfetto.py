"""A trace as Trace Event Format JSON, for ui.perfetto.dev and chrome://tracing.

Layout of the document (``{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}``):

* One process per QEMU process (``dst``, ``src``), with its real pid when the trace has it,
  else 1, 2, ...; ``process_name`` / ``process_sort_index`` metadata (``"ph": "M"``).
* One track per thread, in the lane order of the Gantt chart
  (:func:`tracetool._model.lanes.thread_lanes`: main, load, listen, preempt, fault, recv_N,
  vCPU, others), with ``thread_name`` (the thread's own name, as ``thread.name`` queries want
  it, and its role in the metadata's args) / ``thread_sort_index``.
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
* With a downtime analysis: each side's steps of the switchover pause on a ``downtime`` track
  of its process (``args.critical``: on the critical path), and flow arrows (``"ph": "s"`` /
  ``"f"``) from the source's VM stop to the destination's VM start and from each device's save
  to its load.
* COLO checkpoints, their pauses and the parts of each pause as slices (``cat`` ``colo``) on
  the COLO thread's track, nesting with its sections and device loads
  (:mod:`reports.perfetto_colo`).

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
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from reports.atomic import atomic_writer
from reports.perfetto_colo import colo_spans
from reports.perfetto_events import (
    INSTANT_SKIP_COLS,
    LANE_SORT,
    PAGE_KINDS,
    PAGES_SORT,
    PROCESS_TRACK_KINDS,
    SYNTHETIC_TID,
    Clock,
    SpanBlock,
    Track,
    args_of,
    bql_frame,
    by_thread,
    layer_name,
    meta_event,
    nest_layers,
    page_block,
    plain_label,
    records,
    span_block,
    touching,
)
from tracetool._analyses.bql.report import BqlReport
from tracetool._analyses.colo.colo import ColoReport
from tracetool._analyses.downtime.result import DowntimeReport
from tracetool._model.lanes import thread_lanes, trace_end_ns, trace_start_ns
from tracetool._model.trace import Trace
from tracetool._timeline.result import Timeline


def chrome_trace(
    trace: Trace,
    timeline: Timeline,
    bql: BqlReport | None = None,
    downtime: DowntimeReport | None = None,
    colo: ColoReport | None = None,
) -> dict[str, Any]:
    """The Trace Event Format document of ``trace`` with its ``timeline`` (see module
    docstring), and when given: the BQL holds and waits of ``bql``, the switchover pause of
    ``downtime``, the COLO checkpoints of ``colo`` (:mod:`reports.perfetto_colo`). Raises
    NotInTrace for traces without timestamps.
    """
    events, rest = _document(trace, timeline, bql, downtime, colo)
    return {"traceEvents": list(events), **rest}


def write_chrome_trace(
    trace: Trace,
    path: str | os.PathLike[str],
    timeline: Timeline,
    bql: BqlReport | None = None,
    downtime: DowntimeReport | None = None,
    colo: ColoReport | None = None,
) -> Path:
    """Writes :func:`chrome_trace` to ``path`` atomically, its events made and written a block
    at a time; returns the path."""
    events, rest = _document(trace, timeline, bql, downtime, colo)
    with atomic_writer(os.fspath(path)) as f:
        _write_compact(events, rest, f)
    return Path(path)


def _document(
    trace: Trace,
    timeline: Timeline,
    bql: BqlReport | None,
    downtime: DowntimeReport | None,
    colo: ColoReport | None,
) -> tuple[Iterator[dict[str, Any]], dict[str, Any]]:
    """The document's events (made as they are read) and its other members."""
    start, end = trace_start_ns(trace), trace_end_ns(trace)
    tl = timeline
    ts = trace.ts
    whole_us = bool(((ts[ts != NO_TIME] - start) % 1000 == 0).all())
    builder = _Builder(trace, Clock(start, whole_us), end)
    spans = tl.spans
    if colo is not None and not colo.empty:
        extra = colo_spans(colo)
        spans = pd.concat([spans, extra], ignore_index=True) if len(extra) else spans
    builder.spans(spans)
    builder.instants(tl.instants)
    if bql is not None and not bql.empty:
        builder.bql(bql)
    if downtime is not None and downtime.end_to_end_us is not None:
        builder.downtime(downtime)
    rest = {
        "displayTimeUnit": "ms",
        "otherData": {
            "producer": "migtrace",
            "trace_start_ns": start,
            "clock": trace.clock,
            "inputs": [str(p) for p in trace.inputs["path"].tolist()],
        },
    }
    return builder.events(), rest


EVENTS_PER_WRITE = 20_000


def _write_compact(events: Iterator[dict[str, Any]], rest: dict[str, Any], f: IO[str]) -> None:
    """``{"traceEvents": events, **rest}`` as compact JSON and a newline, the text ``json.dump``
    writes, encoded by the C encoder a block of events at a time: ``json.dump`` encodes every
    value in Python (a minute for a million events), and one ``json.dumps`` would hold the
    whole document in memory."""
    encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    f.write('{"traceEvents":[')
    sep = ""
    while block := list(islice(events, EVENTS_PER_WRITE)):
        f.write(sep + encoder.encode(block)[1:-1])
        sep = ","
    f.write("]")
    for key, value in rest.items():
        f.write("," + encoder.encode(key) + ":" + encoder.encode(value))
    f.write("}\n")


# ---------------------------------------------------------------------------------- building
class _Builder:
    def __init__(self, trace: Trace, clock: Clock, end: int) -> None:
        self.trace = trace
        self.clock = clock
        self.start, self.end = clock.start, end
        self.lanes = thread_lanes(trace)
        self.pids = self._pids()
        self.tracks: dict[tuple[int, int], Track] = {}
        self.next_tid = SYNTHETIC_TID
        self.processes: dict[str, int] = {
            p: i for i, p in enumerate(dict.fromkeys(self.lanes["process"].tolist()))
        }
        self.thread_track: dict[tuple[str, int], Track] = {}
        for rank, r in enumerate(records(self.lanes)):
            pid = self.pids[r["process"]]
            tid = pid if pd.isna(r["tid"]) else int(r["tid"])
            # Perfetto shows the tid itself and queries by the thread's own name
            # (thread.name = 'mig/dst/main'): the name as QEMU set it, the role in args.
            label = plain_label(r) if pd.isna(r["name"]) else str(r["name"])
            t = self._track(pid, tid, label, LANE_SORT * (rank + 1))
            t.args = {"role": r["role"]}
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

    def _track(self, pid: int, tid: int | None, name: str, sort: int) -> Track:
        if tid is None:
            tid = self.next_tid
            self.next_tid += 1
        t = Track(pid, tid, name, sort)
        self.tracks[(pid, tid)] = t
        return t

    def _lane(self, process: str, tid: Any) -> Track | None:
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
                self._layered(pid, "phases", 1, group, span_block)
        for process, group in s[kinds.isin(PAGE_KINDS).to_numpy()].groupby("process", sort=False):
            pid = self.pids.get(str(process))
            if pid is not None:
                self._layered(pid, "page requests", PAGES_SORT, group, page_block)
                self._in_flight(pid, group)
        rest = s[~kinds.isin(PROCESS_TRACK_KINDS + PAGE_KINDS).to_numpy()]
        for (process, tid), group in by_thread(rest):
            track = self._lane(process, tid)
            if track is not None:
                self._layered(track.pid, track.name, track.sort, group, span_block, track)

    def _layered(
        self, pid: int, name: str, sort: int, frame: pd.DataFrame, make: Any, base: Track | None = None
    ) -> None:
        """Complete events of ``frame`` on ``base`` (or a new track), overflow on more tracks."""
        starts = frame["start_ns"].to_numpy(dtype=np.int64)
        ends = np.maximum(frame["end_ns"].to_numpy(dtype=np.int64), starts)
        layer = nest_layers(starts, ends)
        shown = ends if self.clock.whole_us else ends - touching(starts, ends, layer)
        block = make(frame, self.clock, starts, shown)
        if shown is not ends:
            cut = np.flatnonzero(shown != ends)
            block.exact_end = dict(zip(cut.tolist(), ends[cut].tolist(), strict=True))
        tracks: list[Track] = [base] if base is not None else []
        for k in range(int(layer.max()) + 1 if len(layer) else 0):
            if k == len(tracks):
                tracks.append(self._track(pid, None, layer_name(name, k, base is not None), sort + k))
            tracks[k].add_rows(block, np.flatnonzero(layer == k))

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
            frames = [bql_frame(p.holds, "BQL held", "bql"), bql_frame(p.waits, "BQL wait", "bql-wait")]
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
            for (process, tid), group in by_thread(both, by_role=by_site):
                lane = self._lane(str(process), None if by_site else tid)
                if lane is None:
                    continue
                name = f"BQL · {tid} (by call site)" if by_site else f"{lane.name} · BQL"
                self._layered(lane.pid, name, lane.sort + LANE_SORT // 2, group, span_block)

    # -- the switchover pause -------------------------------------------------------------
    def downtime(self, report: DowntimeReport) -> None:
        """Each side's pause steps on a ``downtime`` track of its process, and flow arrows from
        the source to the destination: the VM stop to the VM start, each device's save to its
        load. The report's times are on the destination's clock; the source's go back to its
        own clock (``alignment.offset_ns``), as its other tracks are."""
        offset = int(report.alignment.get("offset_ns") or 0)
        side_label = {
            str(side): str(label)
            for label, side in zip(self.trace.processes["label"], self.trace.processes["side"], strict=True)
            if isinstance(side, str)
        }
        placed: dict[str, list[tuple[dict[str, Any], int, int, Track]]] = {}
        for side in ("src", "dst"):
            pid = self.pids.get(side_label.get(side, ""))
            steps = report.steps.get(side) or []
            if pid is None or not steps:
                continue
            track = self._track(pid, None, "downtime", 2)
            shift = offset if side == "src" else 0
            critical = {
                (c["step"], c["device"], c["start_ns"]) for c in report.critical_path if c["side"] == side
            }
            for st in steps:
                a, z = int(st["start_ns"]) - shift, int(st["end_ns"]) - shift
                name = st["step"] + (f" {st['device']}" if st.get("device") else "")
                on_path = (st["step"], st.get("device"), st["start_ns"]) in critical
                track.add(
                    {
                        "name": name,
                        "cat": "downtime",
                        "ph": "X",
                        "ts": self.clock.us(a),
                        "dur": self.clock.dur(a, z),
                        "args": {"us": st["us"], "critical": on_path, "start_ns": a, "end_ns": z},
                    }
                )
                placed.setdefault(side, []).append((st, a, z, track))
        src, dst = placed.get("src", []), placed.get("dst", [])
        if not src or not dst:
            return
        pairs = [(src[0], dst[-1], "pause: VM stopped → VM running")]
        loads: dict[tuple[str, Any], list[Any]] = {}
        for d in dst:
            if d[0]["step"] == "load" and d[0].get("device"):
                loads.setdefault((d[0]["device"], d[0].get("instance_id")), []).append(d)
        for sv in src:
            if sv[0]["step"] == "save" and sv[0].get("device"):
                hit = loads.get((sv[0]["device"], sv[0].get("instance_id")))
                if hit:
                    pairs.append((sv, hit.pop(0), f"device {sv[0]['device']}"))
        for k, ((_, a0, z0, t0), (_, a1, z1, t1), name) in enumerate(pairs, start=1):
            # Each end sits inside its slice (at its middle) so viewers bind the arrow to it.
            for ph, (a, z, t) in (("s", (a0, z0, t0)), ("f", (a1, z1, t1))):
                flow = {
                    "name": name,
                    "cat": "downtime",
                    "ph": ph,
                    "id": k,
                    "pid": t.pid,
                    "tid": t.tid,
                    "ts": self.clock.us((a + z) // 2),
                }
                if ph == "f":
                    flow["bp"] = "e"
                self.instant_events.append(flow)

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
                    "args": args_of(r, extra),
                }
            )

    # -- output --------------------------------------------------------------------------
    def events(self) -> Iterator[dict[str, Any]]:
        """The document's events: metadata, then every timed event in time order (longer first
        at equal times, then in the order they were added). Events of span blocks are made as
        they are reached, so a writer holds a block of them at a time."""
        procs = self.trace.processes
        side = {str(a): b for a, b in zip(procs["label"], procs["side"], strict=True)}
        for label, pid in self.pids.items():
            what = {"dst": "incoming QEMU", "src": "outgoing QEMU"}.get(str(side.get(label)), "QEMU")
            yield meta_event("process_name", pid, None, {"name": f"{label} ({what})"})
            yield meta_event("process_sort_index", pid, None, {"sort_index": self.processes.get(label, 0)})
        parts: list[tuple[list[dict[str, Any]] | tuple[SpanBlock, np.ndarray], Track | None]] = []
        for t in self.tracks.values():
            yield meta_event("thread_name", t.pid, t.tid, {"name": t.name, **t.args})
            yield meta_event("thread_sort_index", t.pid, t.tid, {"sort_index": t.sort})
            parts += [(chunk, t) for chunk in t.chunks]
        parts += [(self.instant_events, None), (self.counters, None)]
        ts, longer = [], []
        for chunk, _ in parts:
            if isinstance(chunk, list):
                ts.append(np.array([e["ts"] for e in chunk], dtype=np.float64))
                longer.append(np.array([-e.get("dur", 0) for e in chunk], dtype=np.float64))
            else:
                block, rows = chunk
                block_ts, block_longer = block.order_keys
                ts.append(block_ts[rows])
                longer.append(block_longer[rows])
        first = np.cumsum([0] + [len(x) for x in ts])
        order = np.lexsort((np.concatenate(longer), np.concatenate(ts)))  # stable: ties keep order
        where = np.searchsorted(first, order, side="right") - 1
        for position, part in zip((order - first[where]).tolist(), where.tolist(), strict=True):
            chunk, track = parts[part]
            if isinstance(chunk, list):
                e = chunk[position]
                if track is not None:
                    e["pid"], e["tid"] = track.pid, track.tid
            else:
                assert track is not None
                block, rows = chunk
                e = block.event(int(rows[position]))
                e["pid"], e["tid"] = track.pid, track.tid
            yield e


__all__ = ["chrome_trace", "nest_layers", "write_chrome_trace"]
