"""The pieces of a Trace Event Format document (see :mod:`reports.perfetto`): the clock that
turns trace nanoseconds into the document's microseconds, tracks, complete events of spans and
page requests, nesting layers, argument and metadata records."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast

import numpy as np
import pandas as pd

from reports.perfetto_colo import ARGS as COLO_ARGS
from tracetool._json import plain, plain_column

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
    *COLO_ARGS,
)
HOLD_ARGS = ("status", "started_by", "ended_by", "lock_site", "phase", "section", "device")
INSTANT_SKIP_COLS = ("process", "tid", "thread", "role", "kind", "name", "ts_ns", "row")
LANE_SORT = 100  # sort index step per thread: its overflow tracks and BQL track sort within
PAGES_SORT = 1_000_000
SYNTHETIC_TID = 1_000_000_000
"""First tid of the tracks that are not threads (phases, BQL, overflow, page requests)."""


@dataclass
class Track:
    """A track and its events, in the order they were added: lists of event dicts and rows of
    span blocks (:class:`SpanBlock`), whose dicts are made only when the document is written."""

    pid: int
    tid: int
    name: str
    sort: int
    chunks: list[list[dict[str, Any]] | tuple[SpanBlock, np.ndarray]] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)  # more of the thread_name metadata

    def add(self, event: dict[str, Any]) -> None:
        if not self.chunks or not isinstance(self.chunks[-1], list):
            self.chunks.append([])
        cast(list[dict[str, Any]], self.chunks[-1]).append(event)

    def add_rows(self, block: SpanBlock, rows: np.ndarray) -> None:
        if len(rows):
            self.chunks.append((block, rows))


GRID = 1 << 16
"""Nanosecond traces: times are multiples of 1/GRID µs (exact sums in binary floating point
up to 2**37 µs, 38 hours; the rounding to the grid is below 0.01 ns)."""


class Clock:
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


@dataclass
class SpanBlock:
    """The complete events of one frame of spans, as columns: a BQL track holds hundreds of
    thousands of holds, and a million event dicts take a gigabyte. :meth:`event` makes one."""

    names: list[str]
    cats: list[str]
    ts: list[Any]  # int µs, or float on the grid (see Clock)
    dur: list[Any]
    closed: list[bool]
    arg_columns: list[tuple[str, list[Any]]]  # (column, its plain JSON values; None: left out)
    exact_end: dict[int, int] = field(default_factory=dict)  # cut spans: row -> args.end_ns

    @cached_property
    def order_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """``ts`` and ``-dur`` as float64: what the document's events are sorted by (once per
        block, whose rows may lie on several tracks)."""
        return np.asarray(self.ts, dtype=np.float64), -np.asarray(self.dur, dtype=np.float64)

    def event(self, i: int) -> dict[str, Any]:
        """Row ``i`` as a complete event (``args`` in the order: columns, closed, end_ns)."""
        args = {c: arg_value(c, v) for c, column in self.arg_columns if (v := column[i]) is not None}
        if not self.closed[i]:
            args["closed"] = False
        if i in self.exact_end:
            args["end_ns"] = self.exact_end[i]
        return {
            "name": self.names[i],
            "cat": self.cats[i],
            "ph": "X",
            "ts": self.ts[i],
            "dur": self.dur[i],
            "args": args,
        }


def span_block(frame: pd.DataFrame, clock: Clock, starts: np.ndarray, ends: np.ndarray) -> SpanBlock:
    """Complete events for spans (timeline spans or BQL holds/waits frames), column by column."""
    extra = [c for c in SPAN_ARGS + HOLD_ARGS if c in frame.columns]
    closed = frame["closed"].to_numpy(dtype=bool) if "closed" in frame else np.ones(len(frame), bool)
    idstrs = frame["idstr"].tolist() if "idstr" in frame else [None] * len(frame)
    kinds = frame["kind"].tolist()
    names = []
    for name, kind, idstr, ok in zip(frame["name"].tolist(), kinds, idstrs, closed.tolist(), strict=True):
        shown = span_name(name, kind, idstr)
        names.append(shown if ok else shown + " (unclosed)")
    a_list, z_list = starts.tolist(), ends.tolist()
    return SpanBlock(
        names,
        [str(k) for k in kinds],
        [clock.us(a) for a in a_list],
        [clock.dur(a, z) for a, z in zip(a_list, z_list, strict=True)],
        closed.tolist(),
        [(c, plain_column(frame[c])) for c in extra],
    )


def page_block(frame: pd.DataFrame, clock: Clock, starts: np.ndarray, ends: np.ndarray) -> SpanBlock:
    """Complete events for postcopy page requests, named by host address."""
    out = span_block(frame, clock, starts, ends)
    addrs = frame["addr"].tolist() if "addr" in frame else [None] * len(frame)
    for i, addr in enumerate(addrs):
        if addr is not None and not pd.isna(addr):
            unclosed = " (unclosed)" if out.names[i].endswith("(unclosed)") else ""
            out.names[i] = f"page {int(addr):#x}" + unclosed
    return out


def layer_name(name: str, k: int, on_thread: bool) -> str:
    """Track name of layer ``k``: the thread's own track, then ``· overlapping k``; for tracks
    of their own (phases, page requests): ``name``, ``name 2``, ..."""
    if on_thread:
        return f"{name} · overlapping {k}"
    return name if k == 0 else f"{name} {k + 1}"


def span_name(name: Any, kind: Any, idstr: Any) -> str:
    """A span's event name: a section's with its device id when that says more."""
    name = str(name)
    if kind == "section" and isinstance(idstr, str) and idstr and idstr != name:
        return f"{name} {idstr}"
    return name


def bql_frame(frame: pd.DataFrame, name: str, kind: str) -> pd.DataFrame:
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


def by_thread(frame: pd.DataFrame, by_role: bool = False) -> Iterable[tuple[tuple[str, Any], pd.DataFrame]]:
    """Groups of a frame per (process, tid) — or (process, role) for call-site attribution."""
    if not len(frame):
        return []
    key = frame["role"].astype(str) if by_role else frame["tid"].astype("Int64").fillna(-1)
    groups = frame.groupby([frame["process"].astype(str), key], sort=False)
    out = []
    for (process, k), g in groups:
        out.append(((str(process), None if not by_role and int(cast(int, k)) < 0 else k), g))
    return out


def plain_label(r: dict[str, Any]) -> str:
    """The lane label without the process prefix (Perfetto groups tracks by process)."""
    label = str(r["label"])
    prefix = f"{r['process']} · "
    return label[len(prefix) :] if label.startswith(prefix) else label


def args_of(r: dict[str, Any], cols: Iterable[str]) -> dict[str, Any]:
    """The event's ``args``: the row's values of ``cols`` as plain JSON, missing ones left out."""
    return {c: arg_value(c, v) for c in cols if (v := plain(r.get(c))) is not None}


def arg_value(column: str, v: Any) -> Any:
    """A plain value as ``args`` shows it: as text unless it is a JSON number, boolean or
    string; an address (``addr``) in hex."""
    if not isinstance(v, (int, float, bool, str)):
        v = str(v)
    if column == "addr" and isinstance(v, int):
        v = f"{v:#x}"
    return v


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts keyed by column name (NA stays NA)."""
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def meta_event(name: str, pid: int, tid: int | None, args: dict[str, Any]) -> dict[str, Any]:
    e: dict[str, Any] = {"name": name, "ph": "M", "pid": pid, "args": args}
    if tid is not None:
        e["tid"] = tid
    return e
