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
  took the lock (:mod:`tracetool._timeline.builder`).

The pairing is numpy over the mutex rows (shift-based, per thread); no Python loop per event.

    >>> import tracetool
    >>> report = tracetool.analyze_bql(tracetool.load("dst.trace"))
    >>> report.primary.threads          # per-thread hold/wait statistics
    >>> report.primary.longest_holds(5) # with lock site, phase, section, device
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._analyses.bql.document import report_json
from tracetool._model.trace import Trace
from tracetool.errors import UsageError

MUTEX_EVENTS = ("qemu_mutex_lock", "qemu_mutex_locked", "qemu_mutex_unlock")
LOCK, LOCKED, UNLOCK = 0, 1, 2
_START, _END = -1, -2  # neighbour markers: no earlier / later BQL event in the group
NOT_IN_TRACE = "not in this trace: enable qemu_mutex_lock, qemu_mutex_locked, qemu_mutex_unlock"
ATTRIBUTION_THREAD = "thread"
ATTRIBUTION_CALL_SITE = "call-site"
TOP_HOLDS = 10
"""How many of the longest holds a BQL document lists unless told otherwise."""
HOLD_STATUS = ("complete", "held-at-start", "held-at-end", "missing-unlock")
STARTED_BY = ("lock", "condvar", "no-lock", "trace-start")
ENDED_BY = ("unlock", "condvar-wait")


# ---------------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class SiteRule:
    """A call site (path suffix; a directory when it ends with '/') and the role taking it."""

    path: str
    role: str
    side: str | None = None


@dataclass(frozen=True)
class BqlRules:
    """The contents of ``bql.toml``."""

    unlock_files: tuple[str, ...]
    not_bql_files: tuple[str, ...]
    top_dirs: frozenset[str]
    sites: tuple[SiteRule, ...]


@cache
def bql_rules() -> BqlRules:
    """Loads the BQL rules shipped with migtrace."""
    text = resources.files("tracetool._analyses.bql").joinpath("bql.toml").read_text("utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    return BqlRules(
        unlock_files=tuple(data["identify"]["unlock_files"]),
        not_bql_files=tuple(data["not_bql"]["files"]),
        top_dirs=frozenset(data["paths"]["top_dirs"]),
        sites=tuple(SiteRule(r["path"], r["role"], r.get("side")) for r in data.get("site", [])),
    )


_LEADING_RELATIVE = re.compile(r"^(?:\.{1,2}/)+")


def normalize_site(path: str) -> str:
    """A call-site file as it sits in the QEMU tree: ``../src/system/cpus.c`` -> ``system/cpus.c``.

    Builds put ``__FILE__`` behind ``../``, ``../src/`` or an absolute prefix; the path is shown
    from its first QEMU top-level directory on, else (absolute or ``src/`` paths) by file name.
    """
    p = _LEADING_RELATIVE.sub("", path.replace("\\", "/"))
    parts = [x for x in p.split("/") if x]
    if len(parts) <= 1:
        return p
    top = bql_rules().top_dirs
    for i, part in enumerate(parts[:-1]):
        if part in top:
            return "/".join(parts[i:])
    if path.startswith("/") or "src" in parts[:-1]:
        return parts[-1]
    return p


def site_matches(path: str, pattern: str) -> bool:
    """Whether a normalised call-site path matches a rule path at a '/' boundary."""
    if pattern.endswith("/"):
        return path.startswith(pattern) or f"/{pattern}" in path
    return path == pattern or path.endswith("/" + pattern)


def role_of_site(path: str, side: str | None) -> str:
    """The thread role that takes the BQL at this call site (``unknown`` when no rule says)."""
    for rule in bql_rules().sites:
        if rule.side is not None and rule.side != side:
            continue
        if site_matches(path, rule.path):
            return rule.role
    return "unknown"


# ---------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Inconsistency:
    """An event that does not fit the lock protocol, with where it is."""

    path: str
    line: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


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


# ---------------------------------------------------------------------------------- reading
@dataclass
class MutexEvents:
    """Readable mutex events in time order, as numpy columns."""

    row: np.ndarray  # int64 row in the trace
    kind: np.ndarray  # int8: LOCK, LOCKED, UNLOCK
    mutex: np.ndarray  # uint64
    site: np.ndarray  # int32 into the shared site table
    site_line: np.ndarray  # int32, -1 unknown
    unreadable: np.ndarray  # rows whose arguments could not be decoded

    def take(self, which: np.ndarray) -> MutexEvents:
        return MutexEvents(
            self.row[which],
            self.kind[which],
            self.mutex[which],
            self.site[which],
            self.site_line[which],
            self.unreadable,
        )

    @staticmethod
    def merge(parts: Sequence[MutexEvents]) -> MutexEvents:
        """One time-ordered set from several (each already in time order)."""
        if len(parts) == 1:
            return parts[0]
        row = np.concatenate([p.row for p in parts])
        unreadable = np.unique(np.concatenate([p.unreadable for p in parts]))
        columns = [
            np.concatenate([getattr(p, c) for p in parts]) for c in ("kind", "mutex", "site", "site_line")
        ]
        if len(row) > 1 and not bool((row[1:] >= row[:-1]).all()):
            order = np.argsort(row, kind="stable")  # merges the sorted runs
            row, columns = row[order], [c[order] for c in columns]
        kind, mutex, site, site_line = columns
        return MutexEvents(row, kind, mutex, site, site_line, unreadable)


def read_mutex_events(
    trace: Trace,
    events: Sequence[str] = MUTEX_EVENTS,
    keep: np.ndarray | None = None,
    sites: dict[str, int] | None = None,
) -> MutexEvents:
    """Typed mutex address and call site of mutex events; only their distinct texts are decoded.

    ``keep``: mutex addresses to keep (None: all). ``sites``: the call-site table to code sites
    into (shared between calls; call-site files as printed -> code).
    """
    parts = _read_parts(trace, events, keep, {} if sites is None else sites)
    if not parts:
        return _unreadable(np.zeros(0, np.int64))
    return MutexEvents.merge(parts)


def _read_parts(
    trace: Trace, events: Sequence[str], keep: np.ndarray | None, sites: dict[str, int]
) -> list[MutexEvents]:
    """The events in time-ordered parts (one per event name).

    Arguments are decoded once per distinct text; rows only gather integers from those.
    """
    parts: list[MutexEvents] = []
    for name in events:
        k = MUTEX_EVENTS.index(name)
        rows, text, f = trace.fields_by_text(name)
        if not len(rows):
            continue
        if not {"mutex", "file", "line"} <= set(f.columns):
            parts.append(_unreadable(rows))
            continue
        u_readable = f["decoded"].to_numpy(dtype=bool) & f["file"].notna().to_numpy(dtype=bool)
        u_mutex = f["mutex"].to_numpy(dtype=np.uint64, na_value=0)
        u_ok = u_readable if keep is None else u_readable & np.isin(u_mutex, keep)
        u_codes, uniques = pd.factorize(f["file"], use_na_sentinel=True)
        remap = np.array([sites.setdefault(str(u), len(sites)) for u in uniques] + [-1], dtype=np.int32)
        u_site = remap[u_codes]
        u_line = f["line"].to_numpy(dtype=np.int64, na_value=-1).astype(np.int32)
        ok = u_ok[text]
        kept = text[ok]
        parts.append(
            MutexEvents(
                rows[ok],
                np.full(len(kept), k, dtype=np.int8),
                u_mutex[kept],
                u_site[kept],
                u_line[kept],
                rows[~u_readable[text]],
            )
        )
    return parts


def _unreadable(rows: np.ndarray) -> MutexEvents:
    return MutexEvents(
        np.zeros(0, np.int64),
        np.zeros(0, np.int8),
        np.zeros(0, np.uint64),
        np.zeros(0, np.int32),
        np.zeros(0, np.int32),
        rows,
    )


# ---------------------------------------------------------------------------------- identify
@dataclass(frozen=True)
class SiteTable:
    """Per call-site code: shown path and what the rules say about it."""

    label: np.ndarray  # object: normalised path
    unlock_fn: np.ndarray  # bool: the BQL unlock function's file
    not_bql: np.ndarray  # bool: a site that never takes the BQL

    @classmethod
    def of(cls, sites: list[str]) -> SiteTable:
        rules = bql_rules()
        norm = [normalize_site(s) for s in sites] or [""]
        return cls(
            np.array(norm, dtype=object),
            np.array([any(site_matches(n, u) for u in rules.unlock_files) for n in norm], bool),
            np.array([any(site_matches(n, u) for u in rules.not_bql_files) for n in norm], bool),
        )

    def text(self, site: int, line: int) -> str:
        """``system/cpus.c:575``."""
        return f"{self.label[site]}:{line}"


def parse_address(value: str | int) -> int:
    """A mutex address given by a user: ``0x55f...``, hex digits, or a decimal int."""
    if isinstance(value, int):
        return value
    text = value.strip().lower()
    try:
        return int(text, 16) if text.startswith("0x") or re.search("[a-f]", text) else int(text)
    except ValueError:
        raise UsageError(f"--bql-addr {value!r}: not a mutex address (e.g. 0x55fafcce4540)") from None


def _site_key(site: np.ndarray, line: np.ndarray) -> np.ndarray:
    """One int64 per (site, line) pair: site in the high half, line in the low half."""
    return site.astype(np.int64) << 32 | (line.astype(np.int64) & 0xFFFFFFFF)


def identify_bql(unlocks: MutexEvents, sites: SiteTable, in_process: np.ndarray) -> tuple[int, str] | None:
    """The mutex with the most releases from the BQL unlock function, and why; None if none."""
    sel = in_process & sites.unlock_fn[unlocks.site]
    if not sel.any():
        return None
    codes, addrs = pd.factorize(unlocks.mutex[sel])
    counts = np.bincount(codes)
    order = np.argsort(-counts, kind="stable")
    best = int(addrs[order[0]])
    mine = sel & (unlocks.mutex == np.uint64(best))
    total = int((in_process & (unlocks.mutex == np.uint64(best))).sum())
    key = _site_key(unlocks.site[mine], unlocks.site_line[mine])
    kc, kv = pd.factorize(key)
    top = int(np.argmax(np.bincount(kc)))
    site = sites.text(int(kv[top] >> 32), int(kv[top] & 0xFFFFFFFF))
    text = f"unlocks from {site} ({int(np.bincount(kc)[top])} of {total} releases)"
    if len(order) > 1:
        text += f"; next candidate {int(addrs[order[1]]):#x} with {int(counts[order[1]])} such releases"
    return best, text


# ---------------------------------------------------------------------------------- pairing
@dataclass
class Pairs:
    """Index pairs into the BQL events of one process (-1: no such event)."""

    hold_start: np.ndarray  # the locked event
    hold_end: np.ndarray  # the unlock event
    hold_status: np.ndarray  # int8 into HOLD_STATUS
    wait_start: np.ndarray  # the lock event
    wait_end: np.ndarray  # the locked event
    issues: list[tuple[np.ndarray, np.ndarray, str]]  # (event, related event, kind)
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
    start = np.concatenate([complete, np.full(len(at_start), -1), at_end, missing])
    end = np.concatenate([complete_end, at_start, np.full(len(at_end) + len(missing), -1)])
    status = np.repeat(np.arange(4, dtype=np.int8), [len(complete), len(at_start), len(at_end), len(missing)])
    return start.astype(np.int64), end.astype(np.int64), status


def pair_per_thread(
    kind: np.ndarray, site: np.ndarray, group: np.ndarray, order: np.ndarray, unlock_fn: np.ndarray
) -> Pairs:
    """Pairs the BQL events of each thread; arrays sorted by (thread, time), ``order`` is each
    event's position in time across threads."""
    n = len(kind)
    same = group[1:] == group[:-1]
    k, s = kind, site
    nk, pk = _neighbour(k, same, _END, -1), _neighbour(k, same, _START, +1)
    nsite, psite = _neighbour(s, same, -1, -1), _neighbour(s, same, -1, +1)
    idx = np.arange(n)
    locked, unlock, lock = k == LOCKED, k == UNLOCK, k == LOCK

    complete = idx[locked & (nk == UNLOCK)]
    missing = idx[locked & ((nk == LOCKED) | (nk == LOCK))]
    # A thread's last (first) BQL event may leave a hold open at the end (start) of the trace,
    # unless another thread takes the BQL after (before) it: then a release is missing (the
    # release has no hold). One holder at a time makes this checkable across threads.
    taken = idx[locked][np.argsort(order[locked], kind="stable")]
    taken_at = order[taken]
    at_end = idx[locked & (nk == _END)]
    after = np.searchsorted(taken_at, order[at_end], side="right")
    lost_end, at_end = at_end[after < len(taken)], at_end[after == len(taken)]
    lost_end_by = taken[after[after < len(taken)]]
    at_start = idx[unlock & (pk == _START)]
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
    stray = idx[locked & (pk == UNLOCK) & (psite != s)]
    # A release outside the unlock function must be a condvar wait: re-taken at the same site.
    foreign = idx[unlock & ~unlock_fn[site] & (nk != _END) & ~((nk == LOCKED) & (nsite == s))]
    issues = [
        (np.r_[missing, lost_end], np.r_[missing + 1, lost_end_by], "missing-unlock"),
        (np.r_[no_hold, lost_start], np.r_[no_hold - 1, lost_start_by], "unlock-without-hold"),
        (no_locked, no_locked + 1, "lock-without-locked"),
        (mismatch, mismatch + 1, "site-mismatch"),
        (stray, stray - 1, "locked-without-lock"),
        (foreign, foreign, "release-outside-unlock"),
    ]
    edges = [
        (at_end, "held-at-end"),
        (at_start, "held-at-start"),
        (idx[lock & (nk == _END)], "waiting-at-end"),
    ]
    return Pairs(start, end, status, waits, waits + 1, issues, edges)


def pair_by_call_site(kind: np.ndarray, site: np.ndarray) -> Pairs:
    """Pairs the BQL events of a process without thread ids; arrays in time order."""
    idx = np.arange(len(kind))
    # One holder at a time: leave the lock events out and pair locked -> next unlock.
    hv = idx[kind != LOCK]
    same = np.ones(max(len(hv) - 1, 0), dtype=bool)
    hk = kind[hv].astype(np.int64)
    nk, pk = _neighbour(hk, same, _END, -1), _neighbour(hk, same, _START, +1)
    nxt, prv = _neighbour(hv, same, -1, -1), _neighbour(hv, same, -1, +1)
    is_complete = (hk == LOCKED) & (nk == UNLOCK)
    is_missing = (hk == LOCKED) & (nk == LOCKED)
    double = (hk == UNLOCK) & (pk == UNLOCK)
    at_end = hv[(hk == LOCKED) & (nk == _END)]
    at_start = hv[(hk == UNLOCK) & (pk == _START)]
    start, end, status = _holds(hv[is_complete], nxt[is_complete], hv[is_missing], at_end, at_start)
    # Waits: a lock and the next lock/locked at the same call site, when that is a locked.
    wv = idx[kind != UNLOCK]
    wv = wv[np.lexsort((wv, site[wv]))]
    ws, wk = site[wv], kind[wv]
    paired = (wk[:-1] == LOCK) & (wk[1:] == LOCKED) & (ws[1:] == ws[:-1])
    ws_start, ws_end = wv[:-1][paired], wv[1:][paired]
    o = np.argsort(ws_start, kind="stable")
    issues = [
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


_MESSAGES = {
    "missing-unlock": "missing unlock: the BQL taken here at {site} is taken again, or waited "
    "for, on line {other} before any release",
    "unlock-without-hold": "unlock without a hold: this thread has not taken the BQL since line {other}",
    "lock-without-locked": "lock without locked: waiting at {site}, but the next BQL event of "
    "the thread (line {other}) is not the acquisition",
    "site-mismatch": "waiting at {site}, but the acquisition on line {other} names another site",
    "locked-without-lock": "locked without lock at {site}, and not a condition-variable wake "
    "(the release on line {other} names another site)",
    "release-outside-unlock": "BQL released at {site}, which is neither the BQL unlock function "
    "nor a condition-variable wait (not re-taken at that site)",
    "out-of-order": "out of time order: earlier in time than line {other}, which the same "
    "thread wrote before it",
    "two-holders": "two threads hold the BQL at once: this hold starts inside the hold taken on line {other}",
    "not-bql-site": "mutex {mutex} used at {site}, which never takes the BQL: the address "
    "belongs to another lock; left out of the BQL figures",
    "unreadable": "mutex event whose arguments could not be read; left out",
    "no-thread-id": "BQL event without a thread id in a trace with thread ids; left out",
    "held-at-end": "hold still open when the trace ends (taken here at {site})",
    "held-at-start": "hold taken before the trace starts (the thread's first BQL event is this "
    "release at {site})",
    "waiting-at-end": "still waiting for the BQL when the trace ends (at {site})",
}


# ---------------------------------------------------------------------------------- analysis
@dataclass
class _BqlEvents:
    """The BQL events of one process with their trace coordinates, in pairing order."""

    row: np.ndarray
    kind: np.ndarray
    site: np.ndarray
    site_line: np.ndarray
    thread: np.ndarray  # index into trace.threads

    def take(self, order: np.ndarray) -> _BqlEvents:
        return _BqlEvents(
            self.row[order], self.kind[order], self.site[order], self.site_line[order], self.thread[order]
        )


class _Where:
    """Formats inconsistencies: file and line of trace rows."""

    def __init__(self, trace: Trace, sites: SiteTable) -> None:
        self.trace = trace
        self.paths = trace.inputs["path"].astype(str).tolist()
        self.sites = sites

    def issue(self, row: int, kind: str, **args: Any) -> Inconsistency:
        return Inconsistency(
            self.paths[int(self.trace.source[row])],
            int(self.trace.line[row]),
            kind,
            _MESSAGES[kind].format(**args),
        )

    def site(self, ev: _BqlEvents | MutexEvents, i: int) -> str:
        return self.sites.text(int(ev.site[i]), int(ev.site_line[i]))


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
    ctx = _context(trace, context)  # first: its peak memory comes before ours
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
            *_read_parts(trace, ("qemu_mutex_lock", "qemu_mutex_locked"), keep, site_codes),
        ]
    )
    del unlocks, unlock_proc
    sites = SiteTable.of(list(site_codes))
    if wanted is not None and not (ev.mutex == np.uint64(wanted)).any():
        raise UsageError(f"--bql-addr {wanted:#x}: no qemu_mutex events on that mutex in this trace")
    ev_thread = trace.row_thread[ev.row]
    ev_proc = proc_of_thread[ev_thread]
    bad_proc = proc_of_thread[trace.row_thread[ev.unreadable]]
    where = _Where(trace, sites)
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
        _frame(HOLD_COLUMNS),
        _frame(WAIT_COLUMNS),
        _frame(THREAD_COLUMNS),
        _frame(PHASE_COLUMNS),
        notes=list(notes),
    )


def _analyze_process(
    trace: Trace,
    ev: MutexEvents,
    sites: SiteTable,
    where: _Where,
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
    bql = _BqlEvents(ev.row[sel], ev.kind[sel], ev.site[sel], ev.site_line[sel], ev_thread[sel])
    if with_tid.any():
        res.attribution = ATTRIBUTION_THREAD
        small = bql.thread.astype(np.int16) if len(trace.threads) < 2**15 else bql.thread
        bql = bql.take(np.argsort(small, kind="stable"))  # radix sort for small keys
        pairs = pair_per_thread(bql.kind, bql.site, bql.thread, bql.row, sites.unlock_fn)
        res.inconsistencies.extend(_out_of_order(trace, where, bql))
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
    holders = _Holders(trace, bql, site_role, label)
    res.holds, hold_key = _hold_frame(trace, bql, pairs, sites, holders)
    res.waits, wait_key = _wait_frame(trace, bql, pairs, sites, holders)
    if res.attribution == ATTRIBUTION_THREAD:
        res.inconsistencies.extend(_overlaps(res.holds))
    _attach_context(ctx, label, res.holds, res.attribution)
    res.threads = _thread_stats(res.holds, hold_key, res.waits, wait_key, holders)
    res.by_phase = _by_phase(ctx.phases(label), res.holds, hold_key, holders)
    if not trace.has_time:
        res.notes.append("no timestamps in this trace: counts only, no durations")
    return res


def _out_of_order(trace: Trace, where: _Where, bql: _BqlEvents) -> list[Inconsistency]:
    """Lines of one thread whose time order differs from their order in the file."""
    src, line = trace.source[bql.row], trace.line[bql.row]
    same = (bql.thread[1:] == bql.thread[:-1]) & (src[1:] == src[:-1])
    back = np.flatnonzero(same & (line[1:] < line[:-1]))
    return [where.issue(int(bql.row[i]), "out-of-order", other=int(line[i + 1])) for i in back.tolist()]


def _overlaps(holds: pd.DataFrame) -> list[Inconsistency]:
    """Holds of different threads that overlap in time (one mutex has one owner)."""
    h = holds[holds["complete"].to_numpy(dtype=bool)]
    if len(h) < 2 or h["start_ns"].isna().any():
        return []
    start = h["start_ns"].to_numpy(dtype=np.int64)  # the frame is in start order
    end = h["end_ns"].to_numpy(dtype=np.int64)
    tid = h["tid"].to_numpy(dtype=np.int64, na_value=-1)
    reach = np.maximum.accumulate(end)
    # The hold reaching furthest so far: the one a later start can fall into.
    owner = np.where(end == reach, np.arange(len(end)), 0)
    np.maximum.accumulate(owner, out=owner)
    bad = np.flatnonzero(start[1:] < reach[:-1]) + 1
    bad = bad[tid[bad] != tid[owner[bad - 1]]]
    src = h["source"].astype(object).to_numpy()
    line = h["line"].to_numpy(dtype=np.int64)
    return [
        Inconsistency(
            str(src[i]),
            int(line[i]),
            "two-holders",
            _MESSAGES["two-holders"].format(other=int(line[owner[i - 1]])),
        )
        for i in bad.tolist()
    ]


# ---------------------------------------------------------------------------------- frames
HOLD_COLUMNS = [
    "process",
    "tid",
    "thread",
    "role",
    "start_ns",
    "end_ns",
    "duration_us",
    "complete",
    "status",
    "started_by",
    "ended_by",
    "lock_site",
    "source",
    "line",
    "end_line",
    "phase",
    "section",
    "device",
]
WAIT_COLUMNS = [
    "process",
    "tid",
    "thread",
    "role",
    "start_ns",
    "end_ns",
    "duration_us",
    "site",
    "source",
    "line",
]
THREAD_COLUMNS = [
    "tid",
    "name",
    "role",
    "holds",
    "hold_total_us",
    "hold_max_us",
    "hold_p50_us",
    "hold_p90_us",
    "hold_p99_us",
    "open_holds",
    "waits",
    "wait_total_us",
    "wait_max_us",
    "wait_p50_us",
    "wait_p90_us",
    "wait_p99_us",
]
PHASE_COLUMNS = ["phase", "start_ns", "end_ns", "duration_us", "holds", "hold_us", "held_fraction", "threads"]


def _frame(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})


def _categorical(codes: np.ndarray, labels: Sequence[Any]) -> pd.Categorical:
    """Categorical from codes into ``labels`` (which may repeat or hold None; -1: missing)."""
    lab_codes, uniques = pd.factorize(pd.Series(list(labels), dtype=object), use_na_sentinel=True)
    lab = np.r_[np.asarray(lab_codes, dtype=np.int64), -1]
    mapped = lab[np.where(codes >= 0, codes, len(lab) - 1)]
    return pd.Categorical.from_codes(mapped, categories=pd.Index(list(uniques), dtype=object), validate=False)


class _Holders:
    """Who an event belongs to: a thread (thread ids) or a role (call-site attribution).

    A holder key is an index into ``tids`` / ``names`` / ``roles``.
    """

    def __init__(self, trace: Trace, bql: _BqlEvents, site_role: np.ndarray | None, label: str) -> None:
        th = trace.threads
        self.label = label
        self.by_site = site_role is not None
        if site_role is None:
            self.key_of = bql.thread.astype(np.int64)
            self.tids = th["tid"].to_numpy(dtype=np.int64, na_value=-1)
            names = th["name"].astype(object).to_numpy()
            self.names: list[str | None] = [None if pd.isna(n) else str(n) for n in names]
            self.roles = [str(r) for r in th["role"].astype(str)]
        else:
            roles = sorted(set(site_role.tolist()))
            role_code = np.array([roles.index(r) for r in site_role.tolist()], np.int64)
            self.key_of = role_code[bql.site]
            self.tids = np.full(len(roles), -1, dtype=np.int64)
            self.names = [None] * len(roles)
            self.roles = roles

    def columns(self, key: np.ndarray) -> dict[str, Any]:
        """process, tid, thread and role columns for holder keys (-1: nobody known)."""
        tid = self.tids[np.maximum(key, 0)] if len(key) else np.zeros(0, np.int64)
        return {
            "process": _fixed(np.zeros(len(key), np.int64), [self.label]),
            "tid": pd.arrays.IntegerArray(tid.astype(np.int64), (key < 0) | (tid < 0)),
            "thread": _categorical(key, self.names),
            "role": _categorical(key, self.roles),
        }

    def describe(self, key: int) -> tuple[int | None, str | None, str]:
        """tid, name and role of one holder key."""
        tid = int(self.tids[key])
        return (tid if tid >= 0 else None), self.names[key], self.roles[key]


def _site_column(bql: _BqlEvents, sites: SiteTable, idx: np.ndarray) -> pd.Categorical:
    """``file:line`` of the events at ``idx`` (-1: none), as a categorical."""
    i = np.maximum(idx, 0)
    key = np.where(idx >= 0, _site_key(bql.site[i], bql.site_line[i]), -1)
    codes, uniques = pd.factorize(key)
    labels = [
        None if u < 0 else sites.text(int(u >> 32), int(u & 0xFFFFFFFF)) for u in np.asarray(uniques).tolist()
    ]
    return _categorical(np.asarray(codes, dtype=np.int64), labels)


def _fixed(codes: np.ndarray, categories: Sequence[str]) -> pd.Categorical:
    """Categorical over a fixed vocabulary (-1: missing)."""
    return pd.Categorical.from_codes(
        codes.astype(np.int64), categories=pd.Index(list(categories), dtype=object)
    )


def _nullable(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)


def _hold_frame(
    trace: Trace, bql: _BqlEvents, pairs: Pairs, sites: SiteTable, holders: _Holders
) -> tuple[pd.DataFrame, np.ndarray]:
    """The holds in start order, and the holder key of each."""
    s, e = pairs.hold_start, pairs.hold_end
    anchor = np.where(s >= 0, s, e)
    si, ei, ai = np.maximum(s, 0), np.maximum(e, 0), np.maximum(anchor, 0)
    rows, ts = bql.row, trace.ts
    start_ns = np.where(s >= 0, ts[rows[si]], NO_TIME)
    end_ns = np.where(e >= 0, ts[rows[ei]], NO_TIME)
    timed = (start_ns != NO_TIME) & (end_ns != NO_TIME)
    key = holders.key_of[ai] if len(ai) else np.zeros(0, np.int64)
    if holders.by_site:
        key = np.where(s >= 0, key, -1)  # a release with no hold seen: who took it is unknown
    order = np.argsort(start_ns, kind="stable")  # holds open at the start (NO_TIME) go first
    s, e, si, ei, ai = s[order], e[order], si[order], ei[order], ai[order]
    start_ns, end_ns, timed, key = start_ns[order], end_ns[order], timed[order], key[order]
    status = pairs.hold_status[order]
    ended_by = np.where(e < 0, -1, np.where(sites.unlock_fn[bql.site[ei]], 0, 1))
    paths = trace.inputs["path"].astype(str).tolist()
    none = _categorical(np.full(len(s), -1), [])
    frame = pd.DataFrame(
        {
            **holders.columns(key),
            "start_ns": _nullable(start_ns, start_ns == NO_TIME),
            "end_ns": _nullable(end_ns, end_ns == NO_TIME),
            "duration_us": np.where(timed & (status == 0), (end_ns - start_ns) / 1000.0, np.nan),
            "complete": status == 0,
            "status": _fixed(status, HOLD_STATUS),
            "started_by": _fixed(_started_by(bql, s, holders.by_site), STARTED_BY),
            "ended_by": _fixed(ended_by, ENDED_BY),
            "lock_site": _site_column(bql, sites, s),
            "source": _categorical(trace.source[rows[ai]].astype(np.int64), paths),
            "line": trace.line[rows[ai]],
            "end_line": _nullable(trace.line[rows[ei]], e < 0),
            "phase": none,
            "section": none,
            "device": none,
        }
    )
    return frame, key


def _started_by(bql: _BqlEvents, s: np.ndarray, by_site: bool) -> np.ndarray:
    """How each hold began: after a lock, a condvar wake (release at the same site), other."""
    si = np.maximum(s, 0)
    if by_site:
        # The previous event at the same call site (lock and condvar pairs share the site).
        n = len(bql.kind)
        order = np.lexsort((np.arange(n), bql.site))
        pos = np.empty(n, dtype=np.int64)
        pos[order] = np.arange(n)
        p = np.maximum(pos[si] - 1, 0)
        has = (pos[si] > 0) & (bql.site[order][p] == bql.site[si])
        prev_kind = np.where(has, bql.kind[order][p], _START)
        same_site = has
    else:
        pi = np.maximum(s - 1, 0)
        has = (s > 0) & (bql.thread[pi] == bql.thread[si])
        prev_kind = np.where(has, bql.kind[pi], _START)
        same_site = has & (bql.site[pi] == bql.site[si])
    return np.select(
        [s < 0, prev_kind == LOCK, (prev_kind == UNLOCK) & same_site, prev_kind == _START],
        [3, 0, 1, 3],
        default=2,
    ).astype(np.int8)


def _wait_frame(
    trace: Trace, bql: _BqlEvents, pairs: Pairs, sites: SiteTable, holders: _Holders
) -> tuple[pd.DataFrame, np.ndarray]:
    """The waits in start order, and the holder key of each."""
    s, e = pairs.wait_start, pairs.wait_end
    start_ns, end_ns = trace.ts[bql.row[s]], trace.ts[bql.row[e]]
    order = np.argsort(start_ns, kind="stable")
    s, e, start_ns, end_ns = s[order], e[order], start_ns[order], end_ns[order]
    timed = (start_ns != NO_TIME) & (end_ns != NO_TIME)
    key = holders.key_of[s]
    paths = trace.inputs["path"].astype(str).tolist()
    frame = pd.DataFrame(
        {
            **holders.columns(key),
            "start_ns": _nullable(start_ns, start_ns == NO_TIME),
            "end_ns": _nullable(end_ns, end_ns == NO_TIME),
            "duration_us": np.where(timed, (end_ns - start_ns) / 1000.0, np.nan),
            "site": _site_column(bql, sites, s),
            "source": _categorical(trace.source[bql.row[s]].astype(np.int64), paths),
            "line": trace.line[bql.row[s]],
        }
    )
    return frame, key


# ---------------------------------------------------------------------------------- figures
def _percentiles(d: np.ndarray) -> list[float]:
    """p50, p90, p99: linear interpolation between closest ranks (numpy's default)."""
    if not len(d):
        return [float("nan")] * 3
    return [float(x) for x in np.percentile(d, [50, 90, 99])]


def _stats(d: np.ndarray, prefix: str) -> dict[str, Any]:
    p50, p90, p99 = _percentiles(d)
    return {
        f"{prefix}s": len(d),
        f"{prefix}_total_us": float(d.sum()) if len(d) else 0.0,
        f"{prefix}_max_us": float(d.max()) if len(d) else float("nan"),
        f"{prefix}_p50_us": p50,
        f"{prefix}_p90_us": p90,
        f"{prefix}_p99_us": p99,
    }


def _split(keys: np.ndarray, values: np.ndarray) -> dict[int, np.ndarray]:
    """Values split by key: one numpy slice per key."""
    if not len(keys):
        return {}
    order = np.argsort(keys, kind="stable")
    k, v = keys[order], values[order]
    uniq, first = np.unique(k, return_index=True)
    bounds = np.r_[first, len(k)]
    return {int(u): v[bounds[i] : bounds[i + 1]] for i, u in enumerate(uniq.tolist())}


def _thread_stats(
    holds: pd.DataFrame, hold_key: np.ndarray, waits: pd.DataFrame, wait_key: np.ndarray, holders: _Holders
) -> pd.DataFrame:
    """Per holder: count, total, max, p50/p90/p99 of complete holds and of waits."""
    hd = holds["duration_us"].to_numpy(dtype=float)
    wd = waits["duration_us"].to_numpy(dtype=float)
    done = holds["complete"].to_numpy(dtype=bool)
    timed = done & ~np.isnan(hd)
    hold_d = _split(hold_key[timed], hd[timed])
    wait_d = _split(wait_key[~np.isnan(wd)], wd[~np.isnan(wd)])
    n_done = np.bincount(hold_key[done & (hold_key >= 0)], minlength=len(holders.roles))
    n_open = np.bincount(hold_key[~done & (hold_key >= 0)], minlength=len(holders.roles))
    n_wait = np.bincount(wait_key[wait_key >= 0], minlength=len(holders.roles))
    records = []
    for key in np.flatnonzero(n_done + n_open + n_wait).tolist():  # one step per thread
        tid, name, role = holders.describe(key)
        rec: dict[str, Any] = {"tid": tid, "name": name, "role": role}
        rec.update(_stats(hold_d.get(key, np.zeros(0)), "hold"))
        rec.update(_stats(wait_d.get(key, np.zeros(0)), "wait"))
        # Counts include holds/waits without timestamps, which have no duration.
        rec.update(holds=int(n_done[key]), open_holds=int(n_open[key]), waits=int(n_wait[key]))
        for kind in ("hold", "wait"):  # counted but never timed: the total is unknown, not 0
            if rec[f"{kind}s"] and not len((hold_d if kind == "hold" else wait_d).get(key, ())):
                rec[f"{kind}_total_us"] = float("nan")
        records.append(rec)
    out = pd.DataFrame(records, columns=THREAD_COLUMNS)
    out = out.sort_values(["hold_total_us", "holds"], ascending=False, kind="stable").reset_index(drop=True)
    out["tid"] = pd.array(out["tid"].tolist(), dtype="Int64")
    return out


def _by_phase(
    phases: pd.DataFrame, holds: pd.DataFrame, hold_key: np.ndarray, holders: _Holders
) -> pd.DataFrame:
    """Hold time inside each phase (holds cut at the phase's edges), in all and per holder."""
    if phases.empty:
        return _frame(PHASE_COLUMNS)
    done = (
        holds["complete"].to_numpy(dtype=bool)
        & holds["start_ns"].notna().to_numpy()
        & holds["end_ns"].notna().to_numpy()
        & (hold_key >= 0)
    )
    hs = holds["start_ns"].to_numpy(dtype=np.int64, na_value=0)[done]
    he = holds["end_ns"].to_numpy(dtype=np.int64, na_value=0)[done]
    key = hold_key[done]
    records = []
    for name, ps, pe in zip(
        phases["name"].astype(str).tolist(),
        phases["start_ns"].to_numpy(dtype=np.int64).tolist(),
        phases["end_ns"].to_numpy(dtype=np.int64).tolist(),
        strict=True,
    ):
        # phases are few: one step each
        inside = (he > ps) & (hs < pe)
        overlap = np.minimum(he[inside], pe) - np.maximum(hs[inside], ps)
        per_ns = np.bincount(key[inside], weights=overlap, minlength=len(holders.roles))
        count = np.bincount(key[inside], minlength=len(holders.roles))
        threads = [
            _phase_holder(holders, k, int(count[k]), float(per_ns[k]) / 1000.0)
            for k in np.flatnonzero(count).tolist()
        ]
        threads.sort(key=lambda x: -float(x["hold_us"] or 0))
        duration = (pe - ps) / 1000.0
        total = float(overlap.sum()) / 1000.0
        records.append(
            {
                "phase": name,
                "start_ns": ps,
                "end_ns": pe,
                "duration_us": duration,
                "holds": int(inside.sum()),
                "hold_us": total,
                "held_fraction": total / duration if duration > 0 else float("nan"),
                "threads": threads,
            }
        )
    return pd.DataFrame(records, columns=PHASE_COLUMNS)


def _phase_holder(
    holders: _Holders, key: int, holds: int, hold_us: float
) -> dict[str, int | float | str | None]:
    tid, name, role = holders.describe(key)
    return {"tid": tid, "thread": name, "role": role, "holds": holds, "hold_us": hold_us}


# ---------------------------------------------------------------------------------- context
class Context:
    """Phases of a process, and the phase / section / device a thread was in at given times."""

    source = "none"

    def phases(self, process: str) -> pd.DataFrame:
        """Columns ``name``, ``start_ns``, ``end_ns``."""
        return pd.DataFrame(
            {
                "name": pd.Series([], dtype=object),
                "start_ns": np.zeros(0, np.int64),
                "end_ns": np.zeros(0, np.int64),
            }
        )

    def at(
        self, process: str, tid: int | None, start: np.ndarray, end: np.ndarray
    ) -> dict[str, tuple[np.ndarray, list[str]]]:
        """Per hold (taken at ``start``, released at ``end``): ``phase``, ``section`` and
        ``device`` as (codes, names); code -1 is unknown."""
        none = np.full(len(start), -1, dtype=np.int64)
        return {"phase": (none, []), "section": (none, []), "device": (none, [])}


class TimelineContext(Context):
    """Phases, sections and devices from :mod:`tracetool._timeline.builder`.

    The phase is process-wide (the innermost phase when the lock was taken); section and device
    are the holder's own. The threaded load takes the BQL just before it announces the device
    (``qemu_loadvm_state_section_startfull``), so a hold taken outside any device span gets the
    first device span of its thread that starts while it is held.
    """

    source = "timeline"

    def __init__(self, trace: Trace) -> None:
        from tracetool._timeline.builder import build_timeline
        from tracetool._timeline.queries import enclosing

        self._enclosing = enclosing
        self._timeline = build_timeline(trace)
        self._spans = self._timeline.spans

    def _of(self, process: str, kind: str | None = None) -> pd.DataFrame:
        s = self._spans
        sel = (s["process"].astype(str) == process).to_numpy(dtype=bool) & (
            s["start_ns"].to_numpy(dtype=np.int64) != NO_TIME
        )
        if kind is not None:
            sel = sel & (s["kind"] == kind).to_numpy(dtype=bool)
        return s[sel]

    def phases(self, process: str) -> pd.DataFrame:
        p = self._of(process, "phase")
        return pd.DataFrame(
            {
                "name": p["name"].astype(str).to_numpy(dtype=object),
                "start_ns": p["start_ns"].to_numpy(dtype=np.int64),
                "end_ns": p["end_ns"].to_numpy(dtype=np.int64),
            }
        )

    def _enclosing_at(
        self, process: str, tid: int | None, ts: np.ndarray, kind: str
    ) -> tuple[np.ndarray, list[str]]:
        """``enclosing`` for many times, asked once per stretch between the edges of the
        spans it considers: between two consecutive edges every time has the same answer."""
        spans = self._of(process, kind)
        if tid is not None:
            spans = spans[(spans["tid"] == tid).fillna(False).to_numpy(dtype=bool)]
        if spans.empty or not len(ts):
            return np.full(len(ts), -1, dtype=np.int64), []
        edges = np.unique(
            np.r_[spans["start_ns"].to_numpy(dtype=np.int64), spans["end_ns"].to_numpy(dtype=np.int64)]
        )
        pos = np.searchsorted(edges, ts, side="left")
        on_edge = edges[np.minimum(pos, len(edges) - 1)] == ts
        first, inverse = _runs(pos * 2 + on_edge)
        found = self._enclosing(self._timeline, process, tid, ts[first], kinds=(kind,))
        values = _objects(found["name"])
        if kind == "section" and "idstr" in found:
            idstr = _objects(found["idstr"])
            values = np.array(
                [
                    v if i is None or v is None or i == v else f"{i} ({v})"
                    for v, i in zip(values, idstr, strict=True)
                ],
                dtype=object,
            )
        codes, names = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
        return np.asarray(codes, dtype=np.int64)[inverse], [str(n) for n in names]

    def at(
        self, process: str, tid: int | None, start: np.ndarray, end: np.ndarray
    ) -> dict[str, tuple[np.ndarray, list[str]]]:
        out = {
            "phase": self._enclosing_at(process, None, start, "phase"),
            "section": self._enclosing_at(process, tid, start, "section"),
        }
        dev_codes, dev_names = self._enclosing_at(process, tid, start, "device")
        todo = dev_codes < 0
        if todo.any():
            spans = self._of(process, "device")
            if tid is not None:
                spans = spans[(spans["tid"] == tid).fillna(False).to_numpy(dtype=bool)]
            spans = spans.sort_values("start_ns", kind="stable")
            starts = spans["start_ns"].to_numpy(dtype=np.int64)
            i = np.searchsorted(starts, start[todo], side="left")
            ok = i < len(starts)
            ok[ok] = starts[i[ok]] <= end[todo][ok]
            span_names = [str(n) for n in spans["name"].astype(object)]
            lookup = {n: k for k, n in enumerate(dev_names)}
            span_code = np.array(
                [lookup.setdefault(n, len(lookup)) for n in span_names] + [-1], dtype=np.int64
            )
            dev_names = list(lookup)
            fill = np.where(ok, span_code[np.where(ok, i, len(span_names))], -1)
            dev_codes = dev_codes.copy()
            dev_codes[todo] = fill
        out["device"] = (dev_codes, dev_names)
        return out


def _runs(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First index of each distinct key, and each element's distinct-key number."""
    if len(key) > 1 and bool((key[1:] >= key[:-1]).all()):  # sorted: no sort needed
        new = np.r_[True, key[1:] != key[:-1]]
        return np.flatnonzero(new), np.cumsum(new) - 1
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def _objects(values: pd.Series) -> np.ndarray:
    """A column as an object array with None for missing values."""
    out = np.array(values.astype(object).to_numpy(dtype=object), dtype=object, copy=True)
    out[pd.isna(out)] = None
    return out


def _context(trace: Trace, source: str) -> Context:
    if source == "none":
        return Context()
    if source in ("auto", "timeline"):
        return TimelineContext(trace)
    raise UsageError(f"unknown context source {source!r} (auto, timeline, none)")


def _attach_context(ctx: Context, label: str, holds: pd.DataFrame, attribution: str | None) -> None:
    """Fills phase, section and device of each hold from the time it was taken."""
    if ctx.source == "none" or holds.empty:
        return
    start = holds["start_ns"].to_numpy(dtype=np.int64, na_value=NO_TIME)
    end = holds["end_ns"].to_numpy(dtype=np.int64, na_value=np.iinfo(np.int64).max)
    timed = start != NO_TIME
    tids = holds["tid"].to_numpy(dtype=np.int64, na_value=-1)
    if attribution == ATTRIBUTION_THREAD:
        queries = [(int(t), timed & (tids == t)) for t in np.unique(tids[timed]).tolist()]
    else:
        # Without thread ids the load's sections say what a hold did only for load-role holds.
        is_load = (holds["role"] == "load").to_numpy(dtype=bool)
        queries = [(-1, timed)]
    codes = {k: np.full(len(holds), -1, dtype=np.int64) for k in ("phase", "section", "device")}
    names: dict[str, dict[str, int]] = {k: {} for k in codes}
    for tid, mask in queries:  # one query per thread
        if not mask.any():
            continue
        for k, (local, local_names) in ctx.at(
            label, None if tid < 0 else tid, start[mask], end[mask]
        ).items():
            remap = np.array(
                [names[k].setdefault(n, len(names[k])) for n in local_names] + [-1], dtype=np.int64
            )
            codes[k][mask] = remap[np.where(local >= 0, local, len(local_names))]
    if attribution != ATTRIBUTION_THREAD:
        codes["section"][~is_load] = -1
        codes["device"][~is_load] = -1
    for k in codes:
        holds[k] = pd.Categorical.from_codes(codes[k], categories=pd.Index(list(names[k]), dtype=object))
