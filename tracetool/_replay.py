"""Trace replay: call a handler method for every event, in time order, with typed arguments.

This is the ``Analyzer`` idea of QEMU's ``scripts/simpletrace.py`` for every trace format
migtrace reads: a handler has one method per event it cares about, named after the event, and
``replay(trace, handler)`` calls them in time order across threads, and across the source and
destination when both are loaded. Each call gets an :class:`EventContext` (time, thread, role,
process, where in which file) and the event's arguments as typed keyword arguments (the names
from trace-events: ``mutex``, ``file``, ``line`` for ``qemu_mutex_lock``). Optional hooks:
``begin()`` before the first event, ``end()`` after the last one (its return value is what
``replay`` returns) and ``catchall(ctx, **args)`` for events without a method of their own.
Only the events the handler handles are decoded, one event name at a time, when it first
occurs.

Example: how long the main loop waited for the BQL while the threaded load held it to load a
device (the risk the threadify series names: a device load holding the BQL stalls QMP)::

    import collections
    import tracetool

    class MainLoopStalls:
        def __init__(self, bql: int) -> None:
            self.bql, self.device = bql, None
            self.since: dict[str, int] = {}  # "load": hold start, "main": wait start
            self.holds: list[tuple[int, int, str | None]] = []  # load-thread holds
            self.waits: list[tuple[int, int]] = []  # main-thread waits

        def qemu_loadvm_state_section_startfull(self, ctx, idstr, **_):
            self.device = idstr

        def qemu_mutex_lock(self, ctx, mutex, **_):
            if mutex == self.bql and ctx.role == "main":
                self.since["main"] = ctx.ts_ns

        def qemu_mutex_locked(self, ctx, mutex, **_):
            if mutex == self.bql and ctx.role == "load":
                self.since["load"] = ctx.ts_ns
            elif mutex == self.bql and ctx.role == "main" and "main" in self.since:
                self.waits.append((self.since.pop("main"), ctx.ts_ns))

        def qemu_mutex_unlock(self, ctx, mutex, **_):
            if mutex == self.bql and ctx.role == "load" and "load" in self.since:
                self.holds.append((self.since.pop("load"), ctx.ts_ns, self.device))

        def end(self):
            stalled = collections.Counter()
            for ws, we in self.waits:
                for hs, he, device in self.holds:
                    if min(we, he) > max(ws, hs):
                        stalled[device] += (min(we, he) - max(ws, hs)) / 1000
            return stalled.most_common()  # [(device, µs the main loop waited), ...]

    run = "sample_traces/qemu-threadify/e-precopy-mutex/per-thread"
    trace = tracetool.load(run, threads=[f"{run}/dst-threads.json"])
    bql = tracetool.analyze_bql(trace).processes["dst"].mutex
    tracetool.replay(trace, MainLoopStalls(bql), events=["qemu_mutex_*", "*_startfull"])
    # -> [('0000:00:1f.2/ich9_ahci', 9281.0), ('0000:00:1f.0/ICH9LPC', 4456.0), ...]

Replay is a Python call per event by design; for figures over millions of events, use the
vectorised analyses (:func:`tracetool.analyze_bql`, :mod:`tracetool._timeline.builder`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._model.trace import Trace

HOOKS = frozenset({"begin", "end", "catchall"})
"""Handler method names that are not event names."""


@dataclass(frozen=True, slots=True)
class EventContext:
    """When, where and in which thread an event happened."""

    ts_ns: int | None  # time in ns on the trace's clock; None when the line had none
    tid: int | None  # thread id; None when the format has none
    thread: str | None  # thread name
    role: str  # thread role: main, load, vcpu, ... (see tracetool/_model/threads.toml)
    process: str  # process label: dst, src, ...
    event: str  # event name
    source: str  # input file
    line: int  # line number in it (byte offset for binary formats)
    row: int  # row in trace.events
    decoded: bool  # False when the arguments matched no known format (they are then None)


class _Arguments:
    """Typed arguments of one event name, decoded on first use, handed out in row order."""

    def __init__(self, trace: Trace, name: str) -> None:
        frame = trace.fields(name)
        self.decoded: list[bool] = frame["decoded"].to_numpy(dtype=bool).tolist()
        self.columns = [
            (str(c), [_plain(v) for v in frame[c].tolist()]) for c in frame.columns if c != "decoded"
        ]
        self.next = 0

    def take(self) -> tuple[dict[str, Any], bool]:
        i = self.next
        self.next += 1
        return {c: values[i] for c, values in self.columns}, self.decoded[i]


def _plain(v: Any) -> Any:
    """pandas' missing values as None; numpy scalars as Python ones."""
    if v is pd.NA or v is None:
        return None
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def _selected(names: list[str], patterns: Iterable[str] | None) -> list[str]:
    if patterns is None:
        return names
    pats = list(patterns)
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in pats)]


def replay(trace: Trace, handler: Any, *, events: Iterable[str] | None = None) -> Any:
    """Calls ``handler.<event>(ctx, **args)`` for every event of the trace, in time order.

    ``events``: names or glob patterns (``qemu_mutex_*``) to replay; default all. Events with no
    method of their own go to ``handler.catchall(ctx, **args)`` when it exists, else they are
    skipped (and not decoded). Returns what ``handler.end()`` returns (None without ``end``).
    """
    names = _selected(list(trace.event_names), events)
    methods: dict[str, Callable[..., Any]] = {}
    catchall = getattr(handler, "catchall", None)
    for name in names:
        method = getattr(handler, name, None) if name not in HOOKS else None
        if callable(method):
            methods[name] = method
        elif callable(catchall):
            methods[name] = catchall
    begin = getattr(handler, "begin", None)
    if callable(begin):
        begin()
    rows = trace.rows(list(methods))
    if len(rows):
        _dispatch(trace, rows, methods)
    end = getattr(handler, "end", None)
    return end() if callable(end) else None


def _dispatch(trace: Trace, rows: np.ndarray, methods: dict[str, Callable[..., Any]]) -> None:
    th = trace.threads
    t_of_row = trace.row_thread[rows]
    thread_names = [None if pd.isna(n) else str(n) for n in th["name"].astype(object)]
    roles = [str(r) for r in th["role"].astype(str)]
    procs = [str(p) for p in th["process"].astype(str)]
    paths = trace.inputs["path"].astype(str).tolist()
    names = trace.event_names
    ts = trace.ts[rows]
    args: dict[int, _Arguments] = {}
    for row, code, t, stamp, tid, src, line in zip(
        rows.tolist(),
        trace.name_codes[rows].tolist(),
        t_of_row.tolist(),
        ts.tolist(),
        trace.tid[rows].tolist(),
        trace.source[rows].tolist(),
        trace.line[rows].tolist(),
        strict=True,
    ):
        decoder = args.get(code)
        if decoder is None:
            decoder = args[code] = _Arguments(trace, names[code])
        values, ok = decoder.take()
        ctx = EventContext(
            ts_ns=None if stamp == NO_TIME else stamp,
            tid=None if tid < 0 else tid,
            thread=thread_names[t],
            role=roles[t],
            process=procs[t],
            event=names[code],
            source=paths[src],
            line=line,
            row=row,
            decoded=ok,
        )
        methods[names[code]](ctx, **values)
