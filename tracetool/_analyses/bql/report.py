"""The Big QEMU Lock: which mutex it is, who held it and for how long, who waited for it.

Input is the ``qemu_mutex_lock`` / ``qemu_mutex_locked`` / ``qemu_mutex_unlock`` events of a
trace (``-trace 'qemu_mutex_*'``). Per process:

* **Identification.** The BQL is the mutex released from the BQL unlock function in
  ``*/cpus.c`` (``bql.toml``); ``bql_addr`` overrides it.
* **Holds** are ``locked`` -> ``unlock`` on the BQL, **waits** ``lock`` -> ``locked``, both on the
  same thread. A condition-variable wait on the BQL emits ``unlock`` and later ``locked`` with
  the caller's site and no ``lock``: it ends one hold and starts the next.
* **Without thread ids** (QEMU >= 10.1 log lines, the simple backend) holds are still exact,
  since one thread holds the BQL at a time: each ``locked`` pairs with the next ``unlock``. The
  hold is attributed to a thread role by the call site that took it (``attribution`` is
  ``"call-site"``); waits pair ``lock`` with the next ``locked`` at the same call site.
* Events that do not fit (an ``unlock`` without a hold, a second ``locked`` while held, a
  ``locked`` without ``lock``, lines out of time order, two holders at once, the BQL address
  used at a site that never takes the BQL) are counted as inconsistencies with file and line
  (:class:`~tracetool._analyses.bql.issues.IssueTable`), and the analysis still answers. Holds
  and waits cut by the start or the end of the trace are listed apart as ``edges``: traces
  normally start and end with the BQL held.
* Each hold is placed in the incoming phase, load section and device its holder was in when it
  took the lock (:mod:`tracetool._timeline.builder`).

The pairing is numpy over the mutex rows (shift-based, per thread); no Python loop per event.
The statistics are computed from the paired arrays; the per-hold and per-wait DataFrames
(``holds``, ``waits``) are built the first time they are asked for.

    >>> import tracetool
    >>> report = tracetool.analyze_bql(tracetool.load("dst.trace"))
    >>> report.primary.threads          # per-thread hold/wait statistics
    >>> report.primary.longest_holds(5) # with lock site, phase, section, device
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tracetool._analyses.bql.at_end import AtEnd, MutexState, at_end_by_call_site
from tracetool._analyses.bql.context import make_context
from tracetool._analyses.bql.document import report_json
from tracetool._analyses.bql.events import MUTEX_EVENTS, UNLOCK, MutexPart, read_mutex_texts
from tracetool._analyses.bql.frames import HOLD_COLUMNS, WAIT_COLUMNS, HoldFrames, empty_frame
from tracetool._analyses.bql.identify import SiteTable, identify_bql, parse_address
from tracetool._analyses.bql.issues import IssueTable
from tracetool._analyses.bql.pairing import ATTRIBUTION_THREAD
from tracetool._analyses.bql.process import Selected, analyze_events, no_bql_note, select_bql
from tracetool._analyses.bql.stats import PHASE_COLUMNS, THREAD_COLUMNS
from tracetool._model.trace import Trace
from tracetool.errors import UsageError

NOT_IN_TRACE = "not in this trace: enable qemu_mutex_lock, qemu_mutex_locked, qemu_mutex_unlock"
TOP_HOLDS = 10
"""How many of the longest holds a BQL document lists unless told otherwise."""


def _no_issues() -> IssueTable:
    return IssueTable([], SiteTable.of([]))


@dataclass
class BqlProcess:
    """The BQL analysis of one QEMU process.

    ``holds``: one row per hold; ``tid``, ``thread``, ``role``, ``start_ns``, ``end_ns``,
    ``duration_us`` (NaN unless ``complete``), ``status`` (complete, held-at-start,
    held-at-end, missing-unlock), ``started_by`` (lock, condvar wake, no-lock, trace-start),
    ``ended_by`` (unlock, condvar-wait), ``lock_site``, ``source`` and ``line`` of the event that
    started it (or ended it, when it began before the trace), ``end_line``, and the ``phase``,
    ``section`` and ``device`` its holder was in when it took the lock.
    ``waits``: ``tid``, ``thread``, ``role``, ``start_ns``, ``end_ns``, ``duration_us``,
    ``site``, ``source``, ``line``. Both are built the first time they are read.
    ``threads``: per-thread statistics (per role when ``attribution`` is ``call-site``).
    ``by_phase``: hold time inside each phase. ``inconsistencies`` / ``edges``: ``path``,
    ``line``, ``kind``, ``message`` in file order (``issues`` / ``edge_table`` hold them as
    numpy columns, with the messages made only for the entries shown). ``at_end``: who held
    the BQL and who waited for it when the trace ended, and any deadlock.
    """

    process: str
    side: str | None
    mutex: int | None = None
    identified_by: str | None = None
    attribution: str | None = None
    threads: pd.DataFrame = field(default_factory=lambda: empty_frame(THREAD_COLUMNS))
    by_phase: pd.DataFrame = field(default_factory=lambda: empty_frame(PHASE_COLUMNS))
    issues: IssueTable = field(default_factory=_no_issues)
    edge_table: IssueTable = field(default_factory=_no_issues)
    notes: list[str] = field(default_factory=list)
    at_end: AtEnd | None = None
    frames: HoldFrames | None = field(default=None, repr=False)
    _built: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def _frame(self, name: str) -> pd.DataFrame:
        if name not in self._built:
            if name == "holds":
                built = self.frames.hold_frame() if self.frames else empty_frame(HOLD_COLUMNS)
            elif name == "waits":
                built = self.frames.wait_frame() if self.frames else empty_frame(WAIT_COLUMNS)
            elif name == "inconsistencies":
                built = self.issues.frame()
            else:
                built = self.edge_table.frame()
            self._built[name] = built
        return self._built[name]

    @property
    def holds(self) -> pd.DataFrame:
        """One row per hold, in start order (see the class docstring)."""
        return self._frame("holds")

    @property
    def waits(self) -> pd.DataFrame:
        """One row per wait, in start order."""
        return self._frame("waits")

    @property
    def inconsistencies(self) -> pd.DataFrame:
        """Events that do not fit the lock protocol: ``path``, ``line``, ``kind``, ``message``."""
        return self._frame("inconsistencies")

    @property
    def edges(self) -> pd.DataFrame:
        """Holds and waits cut by the start or the end of the trace, as ``inconsistencies``."""
        return self._frame("edges")

    @property
    def inconsistency_count(self) -> int:
        """How many inconsistencies (without building their messages)."""
        return len(self.issues)

    def longest_holds(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` longest complete holds with a duration, longest first (ties: earlier first)."""
        if self.frames is None:
            return self.holds.head(0)
        h = self.frames.holds
        done = np.flatnonzero(h.complete & ~np.isnan(h.duration_us))
        if 0 < n < len(done):  # only the holds at least as long as the n-th longest can be in it
            d = h.duration_us[done]
            done = done[d >= np.partition(d, len(d) - n)[len(d) - n]]
        top = done[np.lexsort((h.start_ns[done], -h.duration_us[done]))[:n]]
        return self.frames.hold_frame(top)


@dataclass
class BqlReport:
    """The BQL analysis of every process of a trace that has mutex events."""

    processes: dict[str, BqlProcess]
    note: str | None = None
    top: int = TOP_HOLDS

    @property
    def primary(self) -> BqlProcess | None:
        """The destination process if analysed, else the first process with a BQL."""
        found = [p for p in self.processes.values() if p.mutex is not None]
        for p in found:
            if p.side == "dst":
                return p
        return found[0] if found else next(iter(self.processes.values()), None)

    @property
    def inconsistent(self) -> bool:
        """True when any process has inconsistencies (``--strict`` fails on this)."""
        return self.issue_count > 0

    @property
    def empty(self) -> bool:
        """True when the trace has no mutex events, or none on a BQL."""
        return self.note is not None or not self.processes

    @property
    def issue_count(self) -> int:
        """Mutex events that do not fit the lock protocol, in every process."""
        return sum(p.inconsistency_count for p in self.processes.values())

    def to_json(self, top: int | None = None) -> dict[str, Any]:
        """``{"bql": <primary process>, "processes": {label: ...}, "note": ...}`` with the
        ``top`` longest holds of each process (default: ``self.top``); see the README."""
        return report_json(self, self.top if top is None else top)


def analyze_bql(
    trace: Trace, bql_addr: str | int | None = None, *, context: str = "auto", top: int = TOP_HOLDS
) -> BqlReport:
    """BQL holds and waits per thread, for every process that has mutex events.

    ``bql_addr`` names the BQL mutex instead of finding it from ``*/cpus.c`` releases; it
    applies to every process whose events use that address. ``context`` says where phases,
    sections and devices come from: ``auto`` / ``timeline`` (:mod:`tracetool._timeline.builder`) or
    ``none``. ``top``: how many of the longest holds the JSON document lists. Raises
    UsageError when ``bql_addr`` occurs nowhere.
    """
    th = trace.threads
    labels = [str(c) for c in th["process"].cat.categories]
    procs = trace.processes
    side_of = {
        str(lab): (str(side) if isinstance(side, str) else None)
        for lab, side in zip(procs["label"].tolist(), procs["side"].tolist(), strict=True)
    }
    present = [trace.code_of(name) is not None for name in MUTEX_EVENTS]
    if not any(present):
        return BqlReport(
            {lab: _empty(lab, side_of.get(lab), [NOT_IN_TRACE]) for lab in labels}, note=NOT_IN_TRACE, top=top
        )
    wanted = parse_address(bql_addr) if bql_addr is not None else None
    ctx = make_context(trace, context)  # first: its peak memory comes before ours
    proc_of_thread = th["process"].cat.codes.to_numpy()
    site_codes: dict[str, int] = {}
    texts = read_mutex_texts(trace, site_codes)
    sites = SiteTable.of(list(site_codes))
    found = _identify(trace, texts.part(UNLOCK), sites, proc_of_thread, len(labels))
    addresses = [f[0] for f in found.values() if f is not None]
    keep = np.array(addresses + ([wanted] if wanted is not None else []), dtype=np.uint64)
    ev = texts.select(keep)
    unreadable = texts.unreadable_rows()
    state = MutexState(trace, texts, sites) if trace.has_tids else None
    del texts
    if wanted is not None and not ev.of_mutex(wanted).any():
        raise UsageError(f"--bql-addr {wanted:#x}: no qemu_mutex events on that mutex in this trace")
    ev_proc = proc_of_thread[trace.row_thread[ev.row]]
    bad_proc = proc_of_thread[trace.row_thread[unreadable]]
    paths = trace.inputs["path"].astype(str).tolist()
    missing = [name for name, seen in zip(MUTEX_EVENTS, present, strict=True) if not seen]
    # Every process's BQL events first, then the pairing: the mutex events of the whole trace
    # are freed before the pairing's working memory is needed.
    chosen: list[tuple[BqlProcess, Selected | None]] = []
    for p, label in enumerate(labels):
        in_proc = ev_proc == p
        if found[p] is None and not in_proc.any() and not (bad_proc == p).any():
            continue
        res = _empty(label, side_of.get(label), [], IssueTable(paths, sites), IssueTable(paths, sites))
        chosen.append((res, select_bql(res, trace, ev, sites, in_proc, wanted, found[p])))
    del ev, ev_proc
    out: dict[str, BqlProcess] = {}
    span = _process_span(trace)
    for res, selected in chosen:
        if selected is not None:
            analyze_events(res, trace, selected, sites, ctx)
            p = labels.index(res.process)
            if res.attribution == ATTRIBUTION_THREAD and state is not None and res.mutex is not None:
                res.at_end = state.at_end(p, res.mutex, *span[p])
            else:
                res.at_end = at_end_by_call_site(selected.bql, sites, res.side, *span[p])
        bad = unreadable[bad_proc == labels.index(res.process)]
        res.issues.add("unreadable", trace.source[bad], trace.line[bad])
        if missing:
            res.notes.append(
                "not in this trace: "
                + ", ".join(missing)
                + (" (no wait times)" if "qemu_mutex_lock" in missing else "")
            )
        out[res.process] = res
    del chosen
    if not out:  # mutex events, but no process has a BQL among them
        note = no_bql_note()
        return BqlReport({lab: _empty(lab, side_of.get(lab), [note]) for lab in labels}, note=note, top=top)
    return BqlReport(out, top=top)


def _empty(
    label: str,
    side: str | None,
    notes: list[str],
    issues: IssueTable | None = None,
    edges: IssueTable | None = None,
) -> BqlProcess:
    return BqlProcess(
        label,
        side,
        notes=list(notes),
        issues=_no_issues() if issues is None else issues,
        edge_table=_no_issues() if edges is None else edges,
    )


def _process_span(trace: Trace) -> list[tuple[int | None, int | None]]:
    """First and last event time of each process (by index), None without timestamps."""
    th = trace.threads
    first = th.groupby(th["process"].cat.codes, sort=True)["first_ns"].min()
    last = th.groupby(th["process"].cat.codes, sort=True)["last_ns"].max()
    out = []
    for p in range(len(th["process"].cat.categories)):
        f, e = first.get(p, pd.NA), last.get(p, pd.NA)
        out.append((None if pd.isna(f) else int(f), None if pd.isna(e) else int(e)))
    return out


def _identify(
    trace: Trace, unlocks: MutexPart | None, sites: SiteTable, proc_of_thread: np.ndarray, n_procs: int
) -> dict[int, tuple[int, str] | None]:
    """The BQL of each process (by index), from the releases in the BQL unlock function."""
    if unlocks is None:
        return dict.fromkeys(range(n_procs))
    if n_procs == 1:
        return {0: identify_bql(unlocks, sites, None)}
    row_proc = proc_of_thread[trace.row_thread[unlocks.rows]]
    return {p: identify_bql(unlocks, sites, row_proc == p) for p in range(n_procs)}
