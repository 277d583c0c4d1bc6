"""Events that do not fit the lock protocol (inconsistencies) and holds cut by the trace's
edges, each with the file and line it comes from.

A broken trace can have millions of them, so they are kept as numpy columns (:class:`IssueTable`)
in file-and-line order; the message text is made only for the ones shown (``first``) or when the
whole table is asked for as a DataFrame (``frame``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._analyses.bql.events import BqlEvents
from tracetool._analyses.bql.identify import SiteTable
from tracetool._analyses.bql.intervals import Holds


@dataclass(frozen=True)
class Inconsistency:
    """An event that does not fit the lock protocol, with where it is."""

    path: str
    line: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


MESSAGES = {
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


KINDS = tuple(MESSAGES)
"""Every kind of inconsistency or edge."""
_LINE_BITS = 40  # sort key: the input's rank in path order above, the line below


_FIELDS = ("source", "line", "site", "site_line", "other")


@dataclass
class _Part:
    """Entries of one kind, at BQL events (``at_events``) or at given trace coordinates."""

    kind: str
    size: int
    # events, idx, other (the related events, or their offset from idx)
    at_events: tuple[BqlEvents, np.ndarray, np.ndarray | int | None] | None = None
    given: dict[str, np.ndarray | None] | None = None

    def columns(self, at: np.ndarray | slice) -> dict[str, np.ndarray | None]:
        """The fields of the entries at ``at`` (None: this kind names no such thing)."""
        if self.at_events is not None:
            ev, idx, other = self.at_events
            i = idx[at]
            related = None if other is None else i + other if isinstance(other, int) else other[at]
            return {
                "source": ev.source_at(i),
                "line": ev.line_at(i),
                "site": ev.site[i],
                "site_line": ev.site_line[i],
                "other": None if related is None else ev.line_at(related),
            }
        assert self.given is not None
        return {k: None if v is None else v[at] for k, v in self.given.items()}


class IssueTable:
    """Inconsistencies (or edges) of one process, listed in (file path, line) order.

    Entries are kept as index arrays into the BQL events (or as trace coordinates for events
    that are not BQL events); entries on the same line keep the order they were added in. Only
    the entries shown get a message (``first``); ``frame`` makes them all.
    """

    def __init__(self, paths: Sequence[str], sites: SiteTable, mutex: int | None = None) -> None:
        self.paths = list(paths)
        self.sites = sites
        self.mutex = mutex
        self._parts: list[_Part] = []
        dense = {p: i for i, p in enumerate(sorted(set(self.paths)))}
        self._rank = np.array([dense[p] for p in self.paths] or [0], dtype=np.int64)

    def add(
        self,
        kind: str,
        source: np.ndarray,
        line: np.ndarray,
        site: np.ndarray | None = None,
        site_line: np.ndarray | None = None,
        other: np.ndarray | None = None,
    ) -> None:
        """Entries at trace coordinates (input, line), naming a call site and another line."""
        if len(line):
            given = {"source": source, "line": line, "site": site, "site_line": site_line, "other": other}
            self._parts.append(_Part(kind, len(line), given=given))

    def add_events(
        self, kind: str, bql: BqlEvents, idx: np.ndarray, other: np.ndarray | int | None = None
    ) -> None:
        """Entries at the BQL events ``idx``, naming their call site (and the line of the events
        ``other``, or of those ``other`` places after ``idx``)."""
        if len(idx):
            self._parts.append(_Part(kind, len(idx), at_events=(bql, idx, other)))

    def __len__(self) -> int:
        return sum(p.size for p in self._parts)

    def _keys(self, part: _Part) -> np.ndarray:
        """Sort keys of a part's entries: (the input's rank in path order, line) in one int64."""
        c = part.columns(slice(None))
        assert c["source"] is not None and c["line"] is not None
        return self._rank[c["source"]] << _LINE_BITS | c["line"].astype(np.int64)

    def _ordered(self, n: int | None) -> np.ndarray:
        """Positions (in adding order) of the first ``n`` entries (all: None) in file order."""
        bounds = np.cumsum([0] + [p.size for p in self._parts]).tolist()
        positions, keys = [], []
        for start, part in zip(bounds, self._parts, strict=False):
            k = self._keys(part)
            pos = np.arange(len(k), dtype=np.int64)
            if n is not None and n < len(k):
                # Only entries up to the part's n-th smallest key can be among the first n.
                if n <= 0:
                    continue
                pos = np.flatnonzero(k <= np.partition(k, n - 1)[n - 1])
                k = k[pos]
            positions.append(pos + start)
            keys.append(k)
        if not keys:
            return np.zeros(0, np.int64)
        pos, k = np.concatenate(positions), np.concatenate(keys)
        return pos[np.argsort(k, kind="stable")][:n]

    def _columns(self, pos: np.ndarray) -> dict[str, list[Any]]:
        """The fields of the entries at positions ``pos`` (in adding order), as lists."""
        bounds = np.cumsum([0] + [p.size for p in self._parts])
        part = np.searchsorted(bounds, pos, side="right") - 1
        out: dict[str, list[Any]] = {k: [None] * len(pos) for k in ("kind", *_FIELDS)}
        for k, p in enumerate(self._parts):
            where = np.flatnonzero(part == k).tolist()
            if not where:
                continue
            for name, values in p.columns(pos[where] - bounds[k]).items():
                if values is not None:
                    column = out[name]
                    for w, v in zip(where, values.tolist(), strict=True):
                        column[w] = v
            for w in where:
                out["kind"][w] = p.kind
        return out

    def first(self, n: int) -> list[Inconsistency]:
        """The first ``n`` entries in file order, with their messages."""
        c = self._columns(self._ordered(n))
        mutex = None if self.mutex is None else f"{self.mutex:#x}"
        return [
            Inconsistency(
                self.paths[src],
                line,
                kind,
                MESSAGES[kind].format(
                    site=None if site is None or site < 0 else self.sites.text(site, site_line),
                    other=other,
                    mutex=mutex,
                ),
            )
            for src, line, kind, site, site_line, other in zip(
                c["source"], c["line"], c["kind"], c["site"], c["site_line"], c["other"], strict=True
            )
        ]

    def frame(self) -> pd.DataFrame:
        """Every entry: ``path``, ``line``, ``kind``, ``message``, in file order."""
        items = self.first(len(self))
        return pd.DataFrame(
            {
                "path": pd.Categorical([i.path for i in items], categories=list(dict.fromkeys(self.paths))),
                "line": np.array([i.line for i in items], dtype=np.int64),
                "kind": pd.Categorical([i.kind for i in items], categories=list(KINDS)),
                "message": pd.Series([i.message for i in items], dtype=object),
            }
        )


def out_of_order(issues: IssueTable, bql: BqlEvents, moved: np.ndarray | None) -> None:
    """Lines of one thread whose time order differs from their order in the file (``bql`` sorted
    by thread, then time). ``moved``: the rows the trace's time sort moved (ascending; None: not
    known). Rows it left in place keep their file order, so of two events out of line order one
    was moved: only the pairs next to a moved row are looked at."""
    n = len(bql.row)
    if n < 2 or (moved is not None and not len(moved)):
        return
    first = np.arange(n - 1)
    if moved is not None:
        is_moved = np.zeros(len(bql.trace_line), dtype=bool)  # one per trace row
        is_moved[moved] = True
        was_moved = is_moved[bql.row]
        del is_moved
        first = np.flatnonzero(was_moved[:-1] | was_moved[1:])
    second = first + 1
    src = bql.source_at(first)
    line, next_line = bql.line_at(first), bql.line_at(second)
    same = (bql.thread[second] == bql.thread[first]) & (bql.source_at(second) == src)
    back = np.flatnonzero(same & (next_line < line))
    issues.add("out-of-order", src[back], line[back], other=next_line[back])


def overlaps(issues: IssueTable, bql: BqlEvents, holds: Holds, tid: np.ndarray) -> None:
    """Holds of different threads that overlap in time (one mutex has one owner); ``tid``: the
    thread id of each hold (-1: none)."""
    done = np.flatnonzero(holds.complete)
    if len(done) < 2:
        return
    start, end = holds.start_ns[done], holds.end_ns[done]  # in start order
    if (start == NO_TIME).any() or (end == NO_TIME).any():
        return
    tid = tid[done]
    reach = np.maximum.accumulate(end)
    # The hold reaching furthest so far: the one a later start can fall into.
    owner = np.where(end == reach, np.arange(len(end)), 0)
    np.maximum.accumulate(owner, out=owner)
    bad = np.flatnonzero(start[1:] < reach[:-1]) + 1
    bad = bad[tid[bad] != tid[owner[bad - 1]]]
    anchor = holds.anchor(done)
    at, by = anchor[bad], anchor[owner[bad - 1]]
    issues.add("two-holders", bql.source_at(at), bql.line_at(at), other=bql.line_at(by))
