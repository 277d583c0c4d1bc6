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
  used at a site that never takes the BQL) become :class:`Inconsistency` entries with file and
  line, and the analysis still answers. Holds and waits cut by the start or the end of the trace
  are listed apart as ``edges``: traces normally start and end with the BQL held.
* Each hold is placed in the incoming phase, load section and device its holder was in when it
  took the lock (:mod:`tracetool._timeline.timeline`).

The pairing is numpy over the mutex rows (shift-based, per thread); no Python loop per event.

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

from tracetool._analyses.bql.context import Context, attach_context, make_context
from tracetool._analyses.bql.document import report_json
from tracetool._analyses.bql.events import MUTEX_EVENTS, BqlEvents, MutexEvents, read_mutex_events, read_parts
from tracetool._analyses.bql.frames import (
    HOLD_COLUMNS,
    WAIT_COLUMNS,
    Holders,
    empty_frame,
    hold_frame,
    wait_frame,
)
from tracetool._analyses.bql.identify import SiteTable, identify_bql, parse_address
from tracetool._analyses.bql.issues import Inconsistency, Where, out_of_order, overlaps
from tracetool._analyses.bql.pairing import (
    ATTRIBUTION_CALL_SITE,
    ATTRIBUTION_THREAD,
    pair_by_call_site,
    pair_per_thread,
)
from tracetool._analyses.bql.rules import bql_rules, role_of_site
from tracetool._analyses.bql.stats import PHASE_COLUMNS, THREAD_COLUMNS, hold_time_by_phase, thread_stats
from tracetool._model.trace import Trace
from tracetool.errors import UsageError

NOT_IN_TRACE = "not in this trace: enable qemu_mutex_lock, qemu_mutex_locked, qemu_mutex_unlock"
TOP_HOLDS = 10
"""How many of the longest holds a BQL document lists unless told otherwise."""


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
    ``site``, ``source``, ``line``. ``threads``: per-thread statistics (per role when
    ``attribution`` is ``call-site``). ``by_phase``: hold time inside each phase.
    """

    process: str
    side: str | None
    mutex: int | None
    identified_by: str | None
    attribution: str | None
    holds: pd.DataFrame
    waits: pd.DataFrame
    threads: pd.DataFrame
    by_phase: pd.DataFrame
    inconsistencies: list[Inconsistency] = field(default_factory=list)
    edges: list[Inconsistency] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def longest_holds(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` longest complete holds with a duration, longest first."""
        done = self.holds[
            self.holds["complete"].to_numpy(dtype=bool)
            & self.holds["duration_us"].notna().to_numpy(dtype=bool)
        ]
        return done.sort_values(["duration_us", "start_ns"], ascending=[False, True], kind="stable").head(n)


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
        return any(p.inconsistencies for p in self.processes.values())

    @property
    def empty(self) -> bool:
        """True when the trace has no mutex events, or none on a BQL."""
        return self.note is not None or not self.processes

    @property
    def issue_count(self) -> int:
        """Mutex events that do not fit the lock protocol, in every process."""
        return sum(len(p.inconsistencies) for p in self.processes.values())

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
    sections and devices come from: ``auto`` / ``timeline`` (:mod:`tracetool._timeline.timeline`) or
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
    unlocks = read_mutex_events(trace, ("qemu_mutex_unlock",), sites=site_codes)
    sites = SiteTable.of(list(site_codes))
    unlock_proc = proc_of_thread[trace.row_thread[unlocks.row]]
    found = {p: identify_bql(unlocks, sites, unlock_proc == p) for p in range(len(labels))}
    addresses = [f[0] for f in found.values() if f is not None]
    keep = np.array(addresses + ([wanted] if wanted is not None else []), dtype=np.uint64)
    ev = MutexEvents.merge(
        [
            unlocks.take(np.isin(unlocks.mutex, keep)),
            *read_parts(trace, ("qemu_mutex_lock", "qemu_mutex_locked"), keep, site_codes),
        ]
    )
    del unlocks, unlock_proc
    sites = SiteTable.of(list(site_codes))
    if wanted is not None and not (ev.mutex == np.uint64(wanted)).any():
        raise UsageError(f"--bql-addr {wanted:#x}: no qemu_mutex events on that mutex in this trace")
    ev_thread = trace.row_thread[ev.row]
    ev_proc = proc_of_thread[ev_thread]
    bad_proc = proc_of_thread[trace.row_thread[ev.unreadable]]
    where = Where(trace, sites)
    missing = [name for name, seen in zip(MUTEX_EVENTS, present, strict=True) if not seen]
    out: dict[str, BqlProcess] = {}
    for p, label in enumerate(labels):
        in_proc = ev_proc == p
        if found[p] is None and not in_proc.any() and not (bad_proc == p).any():
            continue
        res = _analyze_process(
            trace, ev, sites, where, in_proc, ev_thread, label, side_of.get(label), wanted, found[p], ctx
        )
        res.inconsistencies.extend(
            where.issue(int(r), "unreadable") for r in ev.unreadable[bad_proc == p].tolist()
        )
        res.inconsistencies.sort(key=lambda x: (x.path, x.line))
        if missing:
            res.notes.append(
                "not in this trace: "
                + ", ".join(missing)
                + (" (no wait times)" if "qemu_mutex_lock" in missing else "")
            )
        out[label] = res
    if not out:  # mutex events, but no process has a BQL among them
        note = (
            "no BQL found: no qemu_mutex_unlock from "
            + " or ".join(bql_rules().unlock_files)
            + "; name it with --bql-addr"
        )
        return BqlReport({lab: _empty(lab, side_of.get(lab), [note]) for lab in labels}, note=note, top=top)
    return BqlReport(out, top=top)


def _empty(label: str, side: str | None, notes: list[str]) -> BqlProcess:
    return BqlProcess(
        label,
        side,
        None,
        None,
        None,
        empty_frame(HOLD_COLUMNS),
        empty_frame(WAIT_COLUMNS),
        empty_frame(THREAD_COLUMNS),
        empty_frame(PHASE_COLUMNS),
        notes=list(notes),
    )


def _analyze_process(
    trace: Trace,
    ev: MutexEvents,
    sites: SiteTable,
    where: Where,
    in_proc: np.ndarray,
    ev_thread: np.ndarray,
    label: str,
    side: str | None,
    wanted: int | None,
    identified: tuple[int, str] | None,
    ctx: Context,
) -> BqlProcess:
    res = _empty(label, side, [])
    found = identified
    if wanted is not None:
        if (in_proc & (ev.mutex == np.uint64(wanted))).any():
            found = (wanted, "given with --bql-addr")
        else:
            res.notes.append(f"--bql-addr {wanted:#x} does not occur in this process")
    if found is None:
        res.notes.append(
            "no BQL found: no qemu_mutex_unlock from "
            + " or ".join(bql_rules().unlock_files)
            + "; name it with --bql-addr"
        )
        return res
    res.mutex, res.identified_by = found
    mine = in_proc & (ev.mutex == np.uint64(found[0]))
    foreign = mine & sites.not_bql[ev.site]
    res.inconsistencies.extend(
        where.issue(int(ev.row[i]), "not-bql-site", site=where.site(ev, i), mutex=f"{found[0]:#x}")
        for i in np.flatnonzero(foreign).tolist()
    )
    sel = np.flatnonzero(mine & ~foreign)
    with_tid = trace.tid[ev.row[sel]] >= 0
    if with_tid.any() and not with_tid.all():
        res.inconsistencies.extend(
            where.issue(int(ev.row[i]), "no-thread-id") for i in sel[~with_tid].tolist()
        )
        sel = sel[with_tid]
    bql = BqlEvents(ev.row[sel], ev.kind[sel], ev.site[sel], ev.site_line[sel], ev_thread[sel])
    if with_tid.any():
        res.attribution = ATTRIBUTION_THREAD
        small = bql.thread.astype(np.int16) if len(trace.threads) < 2**15 else bql.thread
        bql = bql.take(np.argsort(small, kind="stable"))  # radix sort for small keys
        pairs = pair_per_thread(bql.kind, bql.site, bql.thread, bql.row, sites.unlock_fn)
        res.inconsistencies.extend(out_of_order(trace, where, bql))
        site_role = None
    else:
        res.attribution = ATTRIBUTION_CALL_SITE
        pairs = pair_by_call_site(bql.kind, bql.site)
        site_role = np.array([role_of_site(str(s), side) for s in sites.label], dtype=object)
        res.notes.append(
            "no thread ids: holds are exact (one holder at a time) and attributed "
            "to a thread role by the call site that took the BQL"
        )
        if pairs.unpaired_locks:
            res.notes.append(
                f"{pairs.unpaired_locks} lock events have no locked at the same "
                "call site (concurrent waiters cannot be told apart without thread "
                "ids): no wait time for them"
            )
    for idx, other, kind in pairs.issues:
        res.inconsistencies.extend(
            where.issue(int(bql.row[i]), kind, site=where.site(bql, i), other=int(trace.line[bql.row[o]]))
            for i, o in zip(idx.tolist(), other.tolist(), strict=True)
        )
    res.edges = sorted(
        (
            where.issue(int(bql.row[i]), kind, site=where.site(bql, i))
            for idx, kind in pairs.edges
            for i in idx.tolist()
        ),
        key=lambda x: (x.path, x.line),
    )
    holders = Holders(trace, bql, site_role, label)
    res.holds, hold_key = hold_frame(trace, bql, pairs, sites, holders)
    res.waits, wait_key = wait_frame(trace, bql, pairs, sites, holders)
    if res.attribution == ATTRIBUTION_THREAD:
        res.inconsistencies.extend(overlaps(res.holds))
    attach_context(ctx, label, res.holds, res.attribution)
    res.threads = thread_stats(res.holds, hold_key, res.waits, wait_key, holders)
    res.by_phase = hold_time_by_phase(ctx.phases(label), res.holds, hold_key, holders)
    if not trace.has_time:
        res.notes.append("no timestamps in this trace: counts only, no durations")
    return res
