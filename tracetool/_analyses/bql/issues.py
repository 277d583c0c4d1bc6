"""Events that do not fit the lock protocol (inconsistencies) and holds cut by the trace's
edges, each with the file and line it comes from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tracetool._analyses.bql.events import BqlEvents, MutexEvents
from tracetool._analyses.bql.identify import SiteTable
from tracetool._model.trace import Trace


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


class Where:
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
            MESSAGES[kind].format(**args),
        )

    def site(self, ev: BqlEvents | MutexEvents, i: int) -> str:
        return self.sites.text(int(ev.site[i]), int(ev.site_line[i]))


def out_of_order(trace: Trace, where: Where, bql: BqlEvents) -> list[Inconsistency]:
    """Lines of one thread whose time order differs from their order in the file."""
    src, line = trace.source[bql.row], trace.line[bql.row]
    same = (bql.thread[1:] == bql.thread[:-1]) & (src[1:] == src[:-1])
    back = np.flatnonzero(same & (line[1:] < line[:-1]))
    return [where.issue(int(bql.row[i]), "out-of-order", other=int(line[i + 1])) for i in back.tolist()]


def overlaps(holds: pd.DataFrame) -> list[Inconsistency]:
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
            MESSAGES["two-holders"].format(other=int(line[owner[i - 1]])),
        )
        for i in bad.tolist()
    ]
