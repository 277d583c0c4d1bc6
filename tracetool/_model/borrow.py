"""Borrowing thread ids and the wall clock from a log-backend twin of a simple-backend trace.

QEMU built with ``log,simple`` writes every event twice: to the binary simple file (monotonic
nanoseconds, the process id only) and to the log (wall-clock microseconds; thread ids in QEMU
<= 10.0 ``TID@`` lines, the thread-info prefix, or per-thread ``-d tid`` files). This module
pairs the two event sequences and gives the simple trace what only the log has.

Matching works per process. Events are keyed by (name, argument text); the simple side's text
is what the log backend would have printed (``tracetool._events.decode_simple``), so equal keys mean
equal decoded arguments. The one exception: the simple backend writes a NULL string as an
empty one, which the log printed as ``(null)``, so ``(null)`` is ignored in both texts.

1. Clock offset: among keys that occur equally often on both sides, the i-th occurrence (in
   time order) pairs with the i-th; the offset (log time - simple time) is the median of their
   differences, refined on the pairs within 5 median absolute deviations. Keys with unequal
   counts (dropped events, events outside the other backend's lifetime) are left out of this
   step, so a few mismatches cannot move the median.
2. Event pairs: every simple event is matched to the log event with the same key nearest in
   time after the offset, within a tolerance (20 deviations, at least 1 ms); each log event is
   used once (nearest wins, losers try again). Events still unpaired then get a second pass
   within 100 ms: a thread preempted between the two backends' clock reads shifts one side by
   whole scheduler ticks. Without log timestamps the i-th occurrences of
   each key are paired instead and no clock is borrowed.
3. Matched simple events take the log event's thread id; thread names come from the log's
   threads table; every event of the process is moved to the wall clock with the offset.

Neither side is reordered to make them agree: the result is sorted by the borrowed times like
any other trace. ``BorrowResult.report`` says what was matched and how well the clocks agree.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._model.assemble import Columns
from tracetool._model.sidecar import ThreadMap
from tracetool._model.threads import build_thread_table
from tracetool._model.timeorder import stable_time_order
from tracetool._model.trace import Trace

MIN_TOLERANCE_NS = 1_000_000
TOLERANCE_DEVIATIONS = 20
# A thread preempted between the two backends' clock reads puts its simple timestamp a few
# scheduler ticks (4-12 ms seen on the shipped traces) after the log's: a second, wide pass.
WIDE_TOLERANCE_NS = 100_000_000
INLIER_DEVIATIONS = 5
MATCH_ROUNDS = 256  # rounds of "nearest wins, losers look again"; stops early when done
NULL_TEXT = "(null)"  # glibc's printf of a NULL %s


@dataclass(frozen=True)
class ClockFit:
    """How the simple trace's monotonic clock maps to the log's wall clock."""

    offset_ns: int  # add to a simple timestamp to get the log's time
    pairs: int  # occurrence pairs the offset was estimated from
    mad_ns: float  # median absolute deviation of their differences
    p05_ns: float  # 5th / 95th percentile of the residuals of all matched events
    p95_ns: float
    max_abs_ns: float


@dataclass(frozen=True)
class ProcessMatch:
    """One simple-trace process paired with one log process."""

    simple_process: str
    simple_pid: int | None
    log_process: str
    simple_events: int
    log_events: int
    matched: int
    tids_borrowed: int
    clock: ClockFit | None
    tolerance_ns: int | None

    @property
    def simple_match_rate(self) -> float:
        """Fraction of the simple events that found their log event."""
        return self.matched / self.simple_events if self.simple_events else 0.0

    @property
    def log_match_rate(self) -> float:
        """Fraction of the log events that found their simple event."""
        return self.matched / self.log_events if self.log_events else 0.0


@dataclass
class BorrowResult:
    """The simple trace with borrowed thread ids and clock, and how they were obtained."""

    trace: Trace
    processes: list[ProcessMatch]
    log_row: np.ndarray  # per row of the original simple trace: matched log row, or -1

    def report(self) -> dict[str, Any]:
        """A JSON-ready account of the matching, per process."""
        out = []
        for p in self.processes:
            d: dict[str, Any] = {
                "simple_process": p.simple_process,
                "simple_pid": p.simple_pid,
                "log_process": p.log_process,
                "simple_events": p.simple_events,
                "log_events": p.log_events,
                "matched": p.matched,
                "simple_match_rate": round(p.simple_match_rate, 6),
                "log_match_rate": round(p.log_match_rate, 6),
                "tids_borrowed": p.tids_borrowed,
                "tolerance_ns": p.tolerance_ns,
                "clock": dataclasses.asdict(p.clock) if p.clock else None,
            }
            out.append(d)
        return {"processes": out}


# ------------------------------------------------------------------------------ keys


def _keys(simple: Trace, log: Trace) -> tuple[np.ndarray, np.ndarray]:
    """One int64 key per row of each trace: equal keys = same event name and argument text."""
    names = pd.Index(simple.event_names).append(pd.Index(log.event_names))
    name_codes, _ = pd.factorize(names)
    ns = len(simple.event_names)
    sname = np.asarray(name_codes[:ns], dtype=np.int64)[simple.name_codes]
    lname = np.asarray(name_codes[ns:], dtype=np.int64)[log.name_codes]
    sargs = simple.events["args"].array
    largs = log.events["args"].array
    # A NULL string is written as length 0 by the simple backend (shown as "") and printed as
    # "(null)" by the log backend: compare the texts with "(null)" removed on both sides.
    scats = pd.Index(sargs.categories.astype(str).str.replace(NULL_TEXT, "", regex=False))
    lcats = pd.Index(largs.categories.astype(str).str.replace(NULL_TEXT, "", regex=False))
    text_codes, _ = pd.factorize(scats.append(lcats))
    stext = np.asarray(text_codes[: len(scats)], dtype=np.int64)[sargs.codes]
    ltext = np.asarray(text_codes[len(scats) :], dtype=np.int64)[largs.codes]
    both, _ = pd.factorize(np.concatenate([sname << 32 | stext, lname << 32 | ltext]))
    both = np.asarray(both, dtype=np.int64)
    return both[: len(sname)], both[len(sname) :]


def _occurrence_rank(key: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by (key, time) and each one's occurrence number within its key."""
    order = np.lexsort((np.arange(len(key)), t, key))
    k = key[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    first = np.repeat(starts, np.diff(np.r_[starts, len(k)]))
    return order, np.arange(len(k)) - first


def _rank_pairs(
    skey: np.ndarray, st: np.ndarray, lkey: np.ndarray, lt: np.ndarray, equal_counts_only: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(simple index, log index) of the i-th occurrences of each key on both sides."""
    nkeys = int(max(skey.max(initial=-1), lkey.max(initial=-1))) + 1
    scount = np.bincount(skey, minlength=nkeys)
    lcount = np.bincount(lkey, minlength=nkeys)
    sorder, srank = _occurrence_rank(skey, st)
    lorder, lrank = _occurrence_rank(lkey, lt)
    if equal_counts_only:
        good = (scount == lcount) & (scount > 0)
        sel_s = good[skey[sorder]]
        sel_l = good[lkey[lorder]]
        return sorder[sel_s], lorder[sel_l]
    common = np.minimum(scount, lcount)
    sel_s = srank < common[skey[sorder]]
    sel_l = lrank < common[lkey[lorder]]
    return sorder[sel_s], lorder[sel_l]


# ------------------------------------------------------------------------------ clock


def _fit_offset(d: np.ndarray) -> tuple[int, float, int]:
    """Robust offset of int64 differences ``d``: median, refined on inliers.

    Returns (offset, median absolute deviation, pairs used). Wall-clock differences are near
    1.8e18 ns, beyond float64's integer precision, so the median is taken around ``d[0]``.
    """
    base = int(d[0])
    rel = (d - base).astype(np.float64)
    med = float(np.median(rel))
    mad = float(np.median(np.abs(rel - med)))
    inliers = rel[np.abs(rel - med) <= max(INLIER_DEVIATIONS * mad, 1.0)]
    if len(inliers):
        med = float(np.median(inliers))
        mad = float(np.median(np.abs(inliers - med)))
    return base + round(med), mad, len(inliers)


def _nearest_matches(
    skey: np.ndarray,
    st: np.ndarray,
    lkey: np.ndarray,
    lt: np.ndarray,
    tolerance: int,
    match: np.ndarray | None = None,
) -> np.ndarray:
    """For each simple row, the log row with the same key nearest in time (or -1).

    ``st`` is already on the log's clock. Each log row is used at most once: when several
    simple rows pick one, the nearest keeps it and the others look again among the rest.
    Rows already paired in ``match`` (and their log rows) are kept as they are.
    """
    n = len(skey)
    match = np.full(n, -1, dtype=np.int64) if match is None else match.copy()
    if not n or not len(lkey):
        return match
    t0 = int(min(st.min(), lt.min())) - tolerance - 1
    span = int(max(st.max(), lt.max())) - t0 + tolerance + 2
    nkeys = int(max(skey.max(), lkey.max())) + 1
    shift = 0
    while (span >> shift) * nkeys >= 1 << 62:
        shift += 1
    width = (span >> shift) + 1
    scomb = skey * width + ((st - t0) >> shift)
    free_l = np.ones(len(lkey), dtype=bool)
    free_l[match[match >= 0]] = False
    pending = np.flatnonzero(match < 0)
    for _ in range(MATCH_ROUNDS):
        lidx = np.flatnonzero(free_l)
        if not len(pending) or not len(lidx):
            break
        lcomb = lkey[lidx] * width + ((lt[lidx] - t0) >> shift)
        lorder = np.argsort(lcomb, kind="stable")
        lsorted = lcomb[lorder]
        pos = np.searchsorted(lsorted, scomb[pending])
        best = np.full(len(pending), -1, dtype=np.int64)
        best_d = np.full(len(pending), np.iinfo(np.int64).max, dtype=np.int64)
        for cand in (pos - 1, pos):
            okc = (cand >= 0) & (cand < len(lsorted))
            c = np.where(okc, cand, 0)
            row = lidx[lorder[c]]
            okc &= lkey[row] == skey[pending]
            dist = np.abs(lt[row] - st[pending])
            okc &= dist <= tolerance
            better = okc & (dist < best_d)
            best = np.where(better, row, best)
            best_d = np.where(better, dist, best_d)
        has = best >= 0
        if not has.any():
            break
        cand_rows = pending[has]
        cand_l = best[has]
        cand_d = best_d[has]
        order = np.lexsort((cand_d, cand_l))
        first = np.r_[True, cand_l[order][1:] != cand_l[order][:-1]]
        win = order[first]
        match[cand_rows[win]] = cand_l[win]
        free_l[cand_l[win]] = False
        lost = np.ones(len(cand_rows), dtype=bool)
        lost[win] = False
        pending = cand_rows[lost]
    return match


# ------------------------------------------------------------------------------ processes


def _process_rows(trace: Trace) -> tuple[list[str], np.ndarray, list[int | None]]:
    """Process labels, the process index of every row, and each process's pid."""
    th = trace.threads
    labels = [str(x) for x in th["process"].cat.categories]
    codes = th["process"].cat.codes.to_numpy()[trace.row_thread]
    pids: list[int | None] = []
    procs = trace.processes
    for label in labels:
        row = procs[procs["label"].astype(str) == label]
        pid = row["pid"].iloc[0] if len(row) else pd.NA
        pids.append(None if pd.isna(pid) else int(pid))
    return labels, codes.astype(np.int64), pids


def _pick_log_process(skey: np.ndarray, lkeys: list[np.ndarray]) -> int:
    """The log process sharing the most (key, occurrence) pairs with a simple process."""
    best, best_score = -1, 0
    for j, lk in enumerate(lkeys):
        if not len(lk) or not len(skey):
            continue
        nkeys = int(max(skey.max(), lk.max())) + 1
        score = int(np.minimum(np.bincount(skey, minlength=nkeys), np.bincount(lk, minlength=nkeys)).sum())
        if score > best_score:
            best, best_score = j, score
    return best


def match_events(simple: Trace, log: Trace) -> tuple[np.ndarray, list[ProcessMatch]]:
    """Pairs the events of ``simple`` with those of ``log``.

    Returns, per row of ``simple``, the matched row of ``log`` (-1 when none), and one
    ProcessMatch per simple process.
    """
    skey, lkey = _keys(simple, log)
    slabels, sproc, spids = _process_rows(simple)
    llabels, lproc, _ = _process_rows(log)
    s_ts, l_ts = simple.ts, log.ts
    log_rows_by_proc = [np.flatnonzero(lproc == j) for j in range(len(llabels))]
    match = np.full(len(skey), -1, dtype=np.int64)
    results: list[ProcessMatch] = []
    for i, label in enumerate(slabels):
        srows = np.flatnonzero(sproc == i)
        j = _pick_log_process(skey[srows], [lkey[r] for r in log_rows_by_proc])
        if j < 0:
            results.append(ProcessMatch(label, spids[i], "", len(srows), 0, 0, 0, None, None))
            continue
        lrows = log_rows_by_proc[j]
        sk, lk = skey[srows], lkey[lrows]
        st, lt = s_ts[srows], l_ts[lrows]
        timed = bool(len(lt)) and bool((lt != NO_TIME).all()) and bool((st != NO_TIME).all())
        clock: ClockFit | None = None
        tolerance: int | None = None
        if timed:
            ps, pl = _rank_pairs(sk, st, lk, lt, equal_counts_only=True)
            if not len(ps):
                ps, pl = _rank_pairs(sk, st, lk, lt, equal_counts_only=False)
            offset, mad, used = _fit_offset(lt[pl] - st[ps])
            tolerance = int(max(TOLERANCE_DEVIATIONS * mad, MIN_TOLERANCE_NS))
            local = _nearest_matches(sk, st + offset, lk, lt, tolerance)
            local = _nearest_matches(sk, st + offset, lk, lt, max(tolerance, WIDE_TOLERANCE_NS), local)
            hit = local >= 0
            resid = (lt[local[hit]] - (st[hit] + offset)).astype(np.float64)
            clock = ClockFit(
                offset_ns=offset,
                pairs=used,
                mad_ns=mad,
                p05_ns=float(np.percentile(resid, 5)) if len(resid) else 0.0,
                p95_ns=float(np.percentile(resid, 95)) if len(resid) else 0.0,
                max_abs_ns=float(np.abs(resid).max()) if len(resid) else 0.0,
            )
        else:
            order_s = np.argsort(simple.line[srows], kind="stable")
            order_l = np.argsort(log.line[lrows], kind="stable")
            fake_s = np.empty(len(srows), dtype=np.int64)
            fake_s[order_s] = np.arange(len(srows))
            fake_l = np.empty(len(lrows), dtype=np.int64)
            fake_l[order_l] = np.arange(len(lrows))
            ps, pl = _rank_pairs(sk, fake_s, lk, fake_l, equal_counts_only=False)
            local = np.full(len(srows), -1, dtype=np.int64)
            local[ps] = pl
        hit = local >= 0
        match[srows[hit]] = lrows[local[hit]]
        borrowed = int((log.tid[lrows[local[hit]]] >= 0).sum())
        results.append(
            ProcessMatch(
                label,
                spids[i],
                llabels[j],
                len(srows),
                len(lrows),
                int(hit.sum()),
                borrowed,
                clock,
                tolerance,
            )
        )
    return match, results


# ------------------------------------------------------------------------------ the new trace


def _thread_maps(log: Trace, results: list[ProcessMatch], log_path: str) -> list[ThreadMap]:
    th = log.threads
    maps = []
    for p in results:
        if not p.log_process or not p.tids_borrowed:
            continue
        rows = th[
            (th["process"].astype(str) == p.log_process)
            & th["tid"].notna()
            & th["name"].notna()
            & th["name_source"].isin(["line", "sidecar"])
        ]
        names = {int(t): str(nm) for t, nm in zip(rows["tid"], rows["name"], strict=True)}
        procs = log.processes
        side = procs.loc[procs["label"].astype(str) == p.log_process, "side"]
        maps.append(
            ThreadMap(
                path=f"{log_path} (borrowed)",
                names=names,
                pid=p.simple_pid,
                side=str(side.iloc[0]) if len(side) and side.iloc[0] else None,
            )
        )
    return maps


def borrow(simple: Trace, log: Trace) -> BorrowResult:
    """``simple`` with thread ids and wall-clock times taken from its ``log`` twin.

    Both traces must be loaded already (``tracetool.load``). Thread ids come from matched log
    events; every event of a process whose offset could be estimated moves to the log's clock.
    The inputs of the new trace say what was borrowed in their ``variant``.
    """
    match, results = match_events(simple, log)
    c: Columns = simple._c
    slabels, sproc, _ = _process_rows(simple)
    tid = c.tid.copy()
    hit = match >= 0
    borrowed_tid = log.tid[np.where(hit, match, 0)]
    take = hit & (borrowed_tid >= 0)
    tid[take] = borrowed_tid[take]
    fits = {r.simple_process: r.clock for r in results}
    all_fitted = all(fits.get(label) is not None for label in slabels)
    ts = c.ts.copy()
    if all_fitted:
        offsets = np.array(
            [fits[label].offset_ns for label in slabels],  # type: ignore[union-attr]
            dtype=np.int64,
        )
        timed = ts != NO_TIME
        ts[timed] += offsets[sproc[timed]]
    log_paths = ", ".join(os.path.basename(i.path) for i in log._c.inputs)
    what = [w for w, ok in (("thread ids", bool(take.any())), ("wall clock", all_fitted)) if ok]
    note = f"; {' and '.join(what)} borrowed from {log_paths}" if what else ""
    inputs = [
        dataclasses.replace(
            i, variant=i.variant + note, clock="wall" if all_fitted and i.clock != "none" else i.clock
        )
        for i in c.inputs
    ]
    # New tids and a new time order: which rows moved is no longer known.
    columns = dataclasses.replace(c, ts=ts, tid=tid, inputs=inputs, moved=None)
    order = stable_time_order(ts)
    if order is not None:
        per_row = ("ts", "tid", "pid", "source", "name", "args", "line_thread", "line", "flags")
        columns = dataclasses.replace(
            columns,
            **{k: getattr(columns, k)[order] for k in per_row},
            extra={k: v[order] for k, v in columns.extra.items()},
        )
    table = build_thread_table(columns, _thread_maps(log, results, log_paths))
    new = Trace(columns, table, simple.catalog)
    log_row = match
    return BorrowResult(new, results, log_row)
