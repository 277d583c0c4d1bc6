"""Pairing BQL events into holds (``locked`` -> ``unlock``) and waits (``lock`` -> ``locked``):
per thread when the trace has thread ids, else by call site. numpy shifts, no loop per event."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracetool._analyses.bql.events import LOCK, LOCKED, UNLOCK

START, END = -1, -2  # neighbour markers: no earlier / later BQL event in the group
HOLD_STATUS = ("complete", "held-at-start", "held-at-end", "missing-unlock")
ATTRIBUTION_THREAD = "thread"
ATTRIBUTION_CALL_SITE = "call-site"


@dataclass
class Pairs:
    """Index pairs into the BQL events of one process (-1: no such event)."""

    hold_start: np.ndarray  # the locked event
    hold_end: np.ndarray  # the unlock event
    hold_status: np.ndarray  # int8 into HOLD_STATUS
    wait_start: np.ndarray  # the lock event
    wait_end: np.ndarray  # the locked event
    issues: list[tuple[np.ndarray, np.ndarray | int, str]]  # (events, related events or offset, kind)
    edges: list[tuple[np.ndarray, str]]
    unpaired_locks: int = 0


def _neighbour(a: np.ndarray, same: np.ndarray, fill: int, step: int) -> np.ndarray:
    """``a`` shifted to the next (step -1) or previous (+1) element within a group."""
    out = np.full(len(a), fill, dtype=a.dtype)
    if len(a) > 1:
        if step < 0:
            out[:-1] = np.where(same, a[1:], fill)
        else:
            out[1:] = np.where(same, a[:-1], fill)
    return out


def _holds(
    complete: np.ndarray,
    complete_end: np.ndarray,
    missing: np.ndarray,
    at_end: np.ndarray,
    at_start: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hold start/end indices and status codes, in HOLD_STATUS order."""
    itype = complete.dtype
    start = np.concatenate([complete, np.full(len(at_start), -1, itype), at_end, missing])
    end = np.concatenate([complete_end, at_start, np.full(len(at_end) + len(missing), -1, itype)])
    status = np.repeat(np.arange(4, dtype=np.int8), [len(complete), len(at_start), len(at_end), len(missing)])
    return start.astype(itype), end.astype(itype), status


def index_type(n: int) -> type[np.signedinteger]:
    """The integer type for indices into ``n`` events (int32 saves memory on millions)."""
    return np.int32 if n < 2**31 - 1 else np.int64


def pair_per_thread(
    kind: np.ndarray, site: np.ndarray, group: np.ndarray, order: np.ndarray, unlock_fn: np.ndarray
) -> Pairs:
    """Pairs the BQL events of each thread; arrays sorted by (thread, time), ``order`` is each
    event's position in time across threads."""
    n = len(kind)
    same = group[1:] == group[:-1]
    k, s = kind, site
    nk, pk = _neighbour(k, same, END, -1), _neighbour(k, same, START, +1)
    del same
    idx = np.arange(n, dtype=index_type(n))
    locked, unlock, lock = k == LOCKED, k == UNLOCK, k == LOCK

    complete = idx[locked & (nk == UNLOCK)]
    missing = idx[locked & ((nk == LOCKED) | (nk == LOCK))]
    # A thread's last (first) BQL event may leave a hold open at the end (start) of the trace,
    # unless another thread takes the BQL after (before) it: then a release is missing (the
    # release has no hold). One holder at a time makes this checkable across threads.
    taken = idx[locked][np.argsort(order[locked], kind="stable")]
    taken_at = order[taken]
    at_end = idx[locked & (nk == END)]
    after = np.searchsorted(taken_at, order[at_end], side="right")
    lost_end, at_end = at_end[after < len(taken)], at_end[after == len(taken)]
    lost_end_by = taken[after[after < len(taken)]]
    at_start = idx[unlock & (pk == START)]
    before = np.searchsorted(taken_at, order[at_start], side="left")
    lost_start, at_start = at_start[before > 0], at_start[before == 0]
    lost_start_by = taken[before[before > 0] - 1]
    start, end, status = _holds(complete, complete + 1, np.r_[missing, lost_end], at_end, at_start)
    waits = idx[lock & (nk == LOCKED)]
    no_hold = idx[unlock & ((pk == UNLOCK) | (pk == LOCK))]
    no_locked = idx[lock & ((nk == LOCK) | (nk == UNLOCK))]
    mismatch = waits[s[waits] != s[waits + 1]]
    # A locked without a lock is a condvar wake when the thread's previous event released the
    # BQL at that same site (qemu_cond_wait passes its caller's file:line to both events).
    stray = idx[locked & (pk == UNLOCK)]  # the previous event is of the same thread
    stray = stray[s[stray - 1] != s[stray]]
    # A release outside the unlock function must be a condvar wait: re-taken at the same site.
    foreign = idx[unlock & ~unlock_fn[site] & (nk != END)]  # the next event is of the same thread
    foreign = foreign[~((nk[foreign] == LOCKED) & (s[foreign + 1] == s[foreign]))]
    issues: list[tuple[np.ndarray, np.ndarray | int, str]] = [
        (missing, 1, "missing-unlock"),
        (lost_end, lost_end_by, "missing-unlock"),
        (no_hold, -1, "unlock-without-hold"),
        (lost_start, lost_start_by, "unlock-without-hold"),
        (no_locked, 1, "lock-without-locked"),
        (mismatch, 1, "site-mismatch"),
        (stray, -1, "locked-without-lock"),
        (foreign, 0, "release-outside-unlock"),
    ]
    edges = [
        (at_end, "held-at-end"),
        (at_start, "held-at-start"),
        (idx[lock & (nk == END)], "waiting-at-end"),
    ]
    return Pairs(start, end, status, waits, waits + 1, issues, edges)


def pair_by_call_site(kind: np.ndarray, site: np.ndarray) -> Pairs:
    """Pairs the BQL events of a process without thread ids; arrays in time order."""
    idx = np.arange(len(kind), dtype=index_type(len(kind)))
    # One holder at a time: leave the lock events out and pair locked -> next unlock.
    hv = idx[kind != LOCK]
    same = np.ones(max(len(hv) - 1, 0), dtype=bool)
    hk = kind[hv].astype(np.int8)
    nk, pk = _neighbour(hk, same, END, -1), _neighbour(hk, same, START, +1)
    nxt, prv = _neighbour(hv, same, -1, -1), _neighbour(hv, same, -1, +1)
    is_complete = (hk == LOCKED) & (nk == UNLOCK)
    is_missing = (hk == LOCKED) & (nk == LOCKED)
    double = (hk == UNLOCK) & (pk == UNLOCK)
    at_end = hv[(hk == LOCKED) & (nk == END)]
    at_start = hv[(hk == UNLOCK) & (pk == START)]
    start, end, status = _holds(hv[is_complete], nxt[is_complete], hv[is_missing], at_end, at_start)
    # Waits: a lock and the next lock/locked at the same call site, when that is a locked.
    wv = idx[kind != UNLOCK]
    wv = wv[np.lexsort((wv, site[wv]))]
    ws, wk = site[wv], kind[wv]
    paired = (wk[:-1] == LOCK) & (wk[1:] == LOCKED) & (ws[1:] == ws[:-1])
    ws_start, ws_end = wv[:-1][paired], wv[1:][paired]
    o = np.argsort(ws_start, kind="stable")
    issues: list[tuple[np.ndarray, np.ndarray | int, str]] = [
        (hv[is_missing], nxt[is_missing], "missing-unlock"),
        (hv[double], prv[double], "unlock-without-hold"),
    ]
    edges = [(at_end, "held-at-end"), (at_start, "held-at-start")]
    return Pairs(
        start,
        end,
        status,
        ws_start[o],
        ws_end[o],
        issues,
        edges,
        unpaired_locks=int((kind == LOCK).sum()) - len(ws_start),
    )
