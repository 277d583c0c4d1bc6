"""Who holds the BQL when the trace ends, who waits for it, and whether threads are deadlocked.

With thread ids the state of every mutex at the end of the trace comes from the last events of
each (thread, mutex): a thread holds a mutex when its last ``locked`` on it comes after its last
``unlock`` and no other thread took the mutex later (one owner at a time); a thread waits for a
mutex when its last event of all is a ``lock`` on it. Each waiting thread then waits for the
holder of its mutex: a thread waiting for a mutex it holds itself is a ``self`` deadlock (the
BQL re-taken on a condition-variable wake-up, then locked again), a loop through other threads
(A holds M1 and waits for M2, held by B, which waits for M1) is a ``cycle``. Computed with one
``np.maximum.at`` per event name over the mutex rows; no loop per event.

Without thread ids the holder is the call site of the last ``locked`` on the BQL when no
``unlock`` follows it (attributed to a role by ``bql.toml``), the waiters the ``lock`` events at
a call site after its last ``locked``; deadlocks cannot be told apart and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._analyses.bql.events import LOCK, LOCKED, UNLOCK, BqlEvents, MutexTexts
from tracetool._analyses.bql.identify import SiteTable
from tracetool._analyses.bql.rules import role_of_site
from tracetool._json import integer, text
from tracetool._model.trace import Trace

NO_TIDS_NOTE = (
    "no thread ids in this trace: the holder and the waiters are told by call site, deadlocks "
    "cannot be told (record with -d tid, or a backend with thread ids)"
)


@dataclass
class Party:
    """A thread (or, without thread ids, a call-site role) holding or waiting for a mutex."""

    tid: int | None
    thread: str | None
    role: str
    since_ns: int | None
    site: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "tid": integer(self.tid),
            "thread": text(self.thread),
            "role": self.role,
            "since_ns": integer(self.since_ns),
            "site": text(self.site),
        }


@dataclass
class Deadlocked:
    """A thread caught in a deadlock: ``self`` (it waits for a mutex it holds) or ``cycle``."""

    tid: int | None
    thread: str | None
    kind: str
    mutex: int
    held_by: int | None  # tid of the mutex's holder

    def to_json(self) -> dict[str, Any]:
        return {
            "tid": integer(self.tid),
            "thread": text(self.thread),
            "kind": self.kind,
            "mutex": f"{self.mutex:#x}",
            "held_by": integer(self.held_by),
        }


@dataclass
class AtEnd:
    """The BQL of one process when its trace ends (``start_ns``: its first event)."""

    start_ns: int | None
    ended_ns: int | None
    holder: Party | None = None
    waiters: list[Party] = field(default_factory=list)
    deadlock: list[Deadlocked] | None = None  # None: cannot be told without thread ids
    note: str | None = None

    @property
    def held_by_non_main(self) -> bool | None:
        """Whether a thread other than the main thread held the BQL (None: role unknown)."""
        if self.holder is None:
            return False
        return None if self.holder.role == "unknown" else self.holder.role != "main"

    def to_json(self) -> dict[str, Any]:
        return {
            "start_ns": integer(self.start_ns),
            "ended_ns": integer(self.ended_ns),
            "holder": None if self.holder is None else self.holder.to_json(),
            "waiters": [w.to_json() for w in self.waiters],
            "deadlock": None if self.deadlock is None else [d.to_json() for d in self.deadlock],
            "held_by_non_main": self.held_by_non_main,
            "note": self.note,
        }


_BLOCK = 1 << 20
"""Mutex events per pass of the dense count."""

_DENSE_LIMIT = 1 << 20
"""Up to this many (thread, mutex) pairs the last events are kept in flat arrays; above, the
pairs that occur are numbered first (a hash pass)."""


class MutexState:
    """The last events of every (thread, mutex) pair of a trace with thread ids.

    One entry per pair that occurs: ``thread``, ``mutex`` (index into ``mutexes``), and per
    event kind the row of its last event there (-1: none), with the call site of the last
    ``locked`` and of the last ``lock``. The mutex events themselves are not kept.
    """

    def __init__(self, trace: Trace, texts: MutexTexts, sites: SiteTable) -> None:
        self.sites = sites
        th = trace.threads
        self.tids = th["tid"].to_numpy(dtype=np.int64, na_value=-1)
        self.names = [None if pd.isna(n) else str(n) for n in th["name"].astype(object)]
        self.roles = [str(r) for r in th["role"].astype(str)]
        self.process_of_thread = th["process"].cat.codes.to_numpy()
        self.row_thread = trace.row_thread
        self.ts = trace.ts
        readable = texts.readable
        self.mutexes, inverse = np.unique(texts.mutex[readable], return_inverse=True)
        n_mutex = max(len(self.mutexes), 1)
        n_pairs = len(th) * n_mutex
        key_type = np.int32 if 3 * n_pairs < 2**31 else np.int64
        mutex_of_text = np.full(len(readable), -1, dtype=key_type)
        mutex_of_text[readable] = inverse.reshape(-1)
        # The last row of each (kind, thread, mutex) in one array: kind * slots + slot.
        if n_pairs <= _DENSE_LIMIT:
            slot_key = np.arange(n_pairs, dtype=np.int64)
            last_of = self._last_rows_dense(trace, texts, mutex_of_text, n_mutex, key_type)
        else:
            slot_key, last_of = self._last_rows_sparse(trace, texts, mutex_of_text, n_mutex, key_type)
        n_slots = len(slot_key)
        last = {k: last_of[k * n_slots : (k + 1) * n_slots] for k in (LOCK, LOCKED, UNLOCK)}
        present = np.flatnonzero((last[LOCK] >= 0) | (last[LOCKED] >= 0) | (last[UNLOCK] >= 0))
        self.thread = slot_key[present] // n_mutex
        self.mutex = slot_key[present] % n_mutex
        self.lock, self.locked, self.unlock = (
            last[k][present].astype(np.int64) for k in (LOCK, LOCKED, UNLOCK)
        )
        self.locked_site = _sites_at(texts, self.locked)
        self.lock_site = _sites_at(texts, self.lock)

    @staticmethod
    def _last_rows_dense(
        trace: Trace, texts: MutexTexts, mutex_of_text: np.ndarray, n_mutex: int, key_type: type
    ) -> np.ndarray:
        """Slot (thread, mutex) = thread * n_mutex + mutex, block by block (little memory)."""
        n_slots = len(trace.threads) * n_mutex
        readable = mutex_of_text >= 0
        base: np.ndarray = np.where(
            readable, texts.kind.astype(key_type) * n_slots + mutex_of_text, -1
        ).astype(key_type)
        last_of = np.full(3 * n_slots, -1, dtype=texts.rows.dtype)
        every = bool(readable.all())
        for start in range(0, len(texts.rows), _BLOCK):
            rows = texts.rows[start : start + _BLOCK]
            of_row = base[texts.text[start : start + _BLOCK]]
            if not every:
                ok = of_row >= 0
                rows, of_row = rows[ok], of_row[ok]
            of_row += trace.row_thread[rows].astype(key_type) * key_type(n_mutex)
            np.maximum.at(last_of, of_row, rows)
        return last_of

    @staticmethod
    def _last_rows_sparse(
        trace: Trace, texts: MutexTexts, mutex_of_text: np.ndarray, n_mutex: int, key_type: type
    ) -> tuple[np.ndarray, np.ndarray]:
        """Slots numbered in order of first occurrence (a hash pass): too many pairs for a
        flat array of every (thread, mutex)."""
        ok = mutex_of_text[texts.text] >= 0
        rows, text = texts.rows[ok], texts.text[ok]
        key = trace.row_thread[rows].astype(key_type) * key_type(n_mutex) + mutex_of_text[text]
        codes, slots = pd.factorize(key)
        del key
        slot_key = np.asarray(slots, dtype=np.int64)
        index = texts.kind[text].astype(np.int64) * len(slot_key) + np.asarray(codes, dtype=np.int64)
        last_of = np.full(3 * len(slot_key), -1, dtype=rows.dtype)
        np.maximum.at(last_of, index, rows)
        return slot_key, last_of

    def _party(self, i: int, row: int, site: tuple[np.ndarray, np.ndarray]) -> Party:
        thread, ts = int(self.thread[i]), int(self.ts[row])
        code, line = int(site[0][i]), int(site[1][i])
        return Party(
            int(self.tids[thread]) if self.tids[thread] >= 0 else None,
            self.names[thread],
            self.roles[thread],
            None if ts == NO_TIME else ts,
            self.sites.text(code, line) if code >= 0 else None,
        )

    def at_end(self, process: int, bql: int, start_ns: int | None, ended_ns: int | None) -> AtEnd:
        """The BQL (mutex address ``bql``) of process ``process`` (its index among the
        categories of ``trace.threads["process"]``) when the trace ends."""
        out = AtEnd(start_ns, ended_ns, deadlock=[])
        mine = np.flatnonzero(self.process_of_thread[self.thread] == process)
        if not len(mine):
            return out
        # The holder of each mutex: the thread that took it last, unless it released it since.
        by_mutex = mine[np.lexsort((self.locked[mine], self.mutex[mine]))]
        last_of_mutex = by_mutex[np.r_[self.mutex[by_mutex][1:] != self.mutex[by_mutex][:-1], True]]
        held = last_of_mutex[
            (self.locked[last_of_mutex] >= 0) & (self.locked[last_of_mutex] > self.unlock[last_of_mutex])
        ]
        holder = dict(zip(self.mutex[held].tolist(), held.tolist(), strict=True))  # mutex -> entry
        # What each thread waits for: a lock that is its last mutex event, and its last event.
        last_any = np.maximum(np.maximum(self.locked, self.unlock), self.lock)
        by_thread = mine[np.lexsort((last_any[mine], self.thread[mine]))]
        last_of_thread = by_thread[np.r_[self.thread[by_thread][1:] != self.thread[by_thread][:-1], True]]
        waiting = last_of_thread[self.lock[last_of_thread] == last_any[last_of_thread]]
        waits = [  # entries (thread, mutex) of waiting threads; threads are few
            int(i)
            for i in waiting.tolist()
            if not (self.row_thread[int(self.lock[i]) + 1 :] == self.thread[i]).any()
        ]
        code = int(np.searchsorted(self.mutexes, np.uint64(bql)))
        if code in holder:
            h = holder[code]
            out.holder = self._party(h, int(self.locked[h]), self.locked_site)
        out.waiters = sorted(
            (self._party(i, int(self.lock[i]), self.lock_site) for i in waits if self.mutex[i] == code),
            key=lambda w: (w.since_ns is None, w.since_ns or 0),
        )
        out.deadlock = self._deadlocks(waits, holder)
        return out

    def _deadlocks(self, waits: list[int], holder: dict[int, int]) -> list[Deadlocked]:
        """Threads on a loop of the wait-for graph (each waiting thread -> its mutex's holder)."""
        entry = {int(self.thread[i]): i for i in waits}
        nxt = {
            t: int(self.thread[holder[int(self.mutex[i])]])
            for t, i in entry.items()
            if int(self.mutex[i]) in holder
        }
        found: list[Deadlocked] = []
        seen: set[int] = set()
        for start in nxt:  # threads are few: one step each
            path: list[int] = []
            t = start
            while t in nxt and t not in seen and t not in path:
                path.append(t)
                t = nxt[t]
            if t in path:
                loop = path[path.index(t) :]
                for x in loop:
                    found.append(
                        Deadlocked(
                            int(self.tids[x]) if self.tids[x] >= 0 else None,
                            self.names[x],
                            "self" if len(loop) == 1 else "cycle",
                            int(self.mutexes[int(self.mutex[entry[x]])]),
                            int(self.tids[nxt[x]]) if self.tids[nxt[x]] >= 0 else None,
                        )
                    )
            seen.update(path)
        return found


def _sites_at(texts: MutexTexts, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Call site and line of the mutex events at ``rows`` (-1: no such event)."""
    site = np.full(len(rows), -1, dtype=np.int64)
    line = np.full(len(rows), -1, dtype=np.int64)
    if len(texts.rows):
        # Needles in the rows' own type: searchsorted would otherwise copy all the rows to theirs.
        i = np.searchsorted(texts.rows, rows.astype(texts.rows.dtype))
        i = np.minimum(i, len(texts.rows) - 1)
        hit = (rows >= 0) & (texts.rows[i] == rows)
        text = texts.text[i[hit]]
        site[hit], line[hit] = texts.site[text], texts.site_line[text]
    return site, line


def at_end_by_call_site(
    bql: BqlEvents, sites: SiteTable, side: str | None, start_ns: int | None, ended_ns: int | None
) -> AtEnd:
    """The BQL at the end of a process without thread ids (``bql`` in time order)."""
    out = AtEnd(start_ns, ended_ns, note=NO_TIDS_NOTE)
    hold_events = np.flatnonzero(bql.kind != LOCK)

    def party(i: int) -> Party:
        site = int(bql.site[i])
        ts = int(bql.ts[i])
        label = str(sites.label[site]) if site >= 0 else ""
        return Party(
            None,
            None,
            role_of_site(label, side),
            None if ts == NO_TIME else ts,
            sites.text(site, int(bql.site_line[i])) if site >= 0 else None,
        )

    if len(hold_events) and bql.kind[hold_events[-1]] == LOCKED:
        out.holder = party(int(hold_events[-1]))
    # Waiting: lock events at a call site after the last locked there.
    last_locked = pd.Series(np.flatnonzero(bql.kind == LOCKED)).groupby(bql.site[bql.kind == LOCKED]).max()
    locks = np.flatnonzero(bql.kind == LOCK)
    after = last_locked.reindex(bql.site[locks]).fillna(-1).to_numpy() < locks
    out.waiters = [party(int(i)) for i in locks[after].tolist()]
    return out
