"""Per-hold and per-wait DataFrames: who, when, how the hold began and ended, the call site,
and where the holder was (phase, section, device). Built only when asked for: the statistics
read the numpy arrays of :mod:`tracetool._analyses.bql.intervals`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._analyses.bql.context import Context, attach_context
from tracetool._analyses.bql.events import LOCK, UNLOCK, BqlEvents
from tracetool._analyses.bql.holders import Holders, categorical, fixed_categorical
from tracetool._analyses.bql.identify import SiteTable, site_key
from tracetool._analyses.bql.intervals import Holds, Waits
from tracetool._analyses.bql.pairing import HOLD_STATUS, START

STARTED_BY = ("lock", "condvar", "no-lock", "trace-start")
ENDED_BY = ("unlock", "condvar-wait")
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


def empty_frame(columns: list[str]) -> pd.DataFrame:
    """A frame with these columns and no rows."""
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})


class HoldFrames:
    """Builds the hold and wait DataFrames of one process from its arrays, on demand."""

    def __init__(
        self,
        bql: BqlEvents,
        holds: Holds,
        waits: Waits,
        sites: SiteTable,
        holders: Holders,
        paths: list[str],
        ctx: Context,
        attribution: str,
    ) -> None:
        self.bql, self.holds, self.waits = bql, holds, waits
        self.sites, self.holders, self.paths = sites, holders, paths
        self.ctx, self.attribution = ctx, attribution
        self._site_order: np.ndarray | None = None

    def site_order(self) -> np.ndarray | None:
        """Without thread ids: the BQL events by call site, then time (None with thread ids)."""
        if not self.holders.by_site:
            return None
        if self._site_order is None:
            self._site_order = np.lexsort((np.arange(len(self.bql.kind)), self.bql.site))
        return self._site_order

    def hold_frame(self, which: np.ndarray | None = None) -> pd.DataFrame:
        """The holds (those at positions ``which`` of the start order, or all), with context."""
        h, bql = self.holds, self.bql
        pick = slice(None) if which is None else which
        s, e, anchor = h.start[pick], h.end[pick], h.anchor(pick)
        start_ns, end_ns, status = h.start_ns[pick], h.end_ns[pick], h.status[pick]
        ei, ai = np.maximum(e, 0), np.maximum(anchor, 0)
        ended_by = np.where(e < 0, -1, np.where(self.sites.unlock_fn[bql.site[ei]], 0, 1))
        none = categorical(np.full(len(s), -1), [])
        frame = pd.DataFrame(
            {
                **self.holders.columns(h.key[pick]),
                "start_ns": _nullable(start_ns, start_ns == NO_TIME),
                "end_ns": _nullable(end_ns, end_ns == NO_TIME),
                "duration_us": h.duration_us[pick],
                "complete": status == 0,
                "status": fixed_categorical(status, HOLD_STATUS),
                "started_by": fixed_categorical(_started_by(bql, s, self.site_order()), STARTED_BY),
                "ended_by": fixed_categorical(ended_by, ENDED_BY),
                "lock_site": _site_column(bql, self.sites, s),
                "source": categorical(bql.source_at(ai).astype(np.int64), self.paths),
                "line": bql.line_at(ai).astype(np.int64),
                "end_line": _nullable(bql.line_at(ei), e < 0),
                "phase": none,
                "section": none,
                "device": none,
            },
            index=None if which is None else pd.Index(which),
        )
        attach_context(self.ctx, self.holders.label, frame, self.attribution)
        return frame

    def wait_frame(self) -> pd.DataFrame:
        """The waits in start order."""
        w, bql = self.waits, self.bql
        return pd.DataFrame(
            {
                **self.holders.columns(w.key),
                "start_ns": _nullable(w.start_ns, w.start_ns == NO_TIME),
                "end_ns": _nullable(w.end_ns, w.end_ns == NO_TIME),
                "duration_us": w.duration_us,
                "site": _site_column(bql, self.sites, w.start),
                "source": categorical(bql.source_at(w.start).astype(np.int64), self.paths),
                "line": bql.line_at(w.start).astype(np.int64),
            }
        )


def _site_column(bql: BqlEvents, sites: SiteTable, idx: np.ndarray) -> pd.Categorical:
    """``file:line`` of the events at ``idx`` (-1: none), as a categorical."""
    i = np.maximum(idx, 0)
    key = np.where(idx >= 0, site_key(bql.site[i], bql.site_line[i]), -1)
    codes, uniques = pd.factorize(key)
    labels = [
        None if u < 0 else sites.text(int(u >> 32), int(u & 0xFFFFFFFF)) for u in np.asarray(uniques).tolist()
    ]
    return categorical(np.asarray(codes, dtype=np.int64), labels)


def _nullable(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)


def _started_by(bql: BqlEvents, s: np.ndarray, site_order: np.ndarray | None) -> np.ndarray:
    """How each hold began: after a lock, a condvar wake (release at the same site), other.

    ``site_order``: without thread ids, the events ordered by call site, then time (None: by
    thread)."""
    si = np.maximum(s, 0)
    if site_order is not None:
        # The previous event at the same call site (lock and condvar pairs share the site).
        n = len(bql.kind)
        pos = np.empty(n, dtype=np.int64)
        pos[site_order] = np.arange(n)
        p = np.maximum(pos[si] - 1, 0)
        has = (pos[si] > 0) & (bql.site[site_order][p] == bql.site[si])
        prev_kind = np.where(has, bql.kind[site_order][p], START)
        same_site = has
    else:
        pi = np.maximum(s - 1, 0)
        has = (s > 0) & (bql.thread[pi] == bql.thread[si])
        prev_kind = np.where(has, bql.kind[pi], START)
        same_site = has & (bql.site[pi] == bql.site[si])
    return np.select(
        [s < 0, prev_kind == LOCK, (prev_kind == UNLOCK) & same_site, prev_kind == START],
        [3, 0, 1, 3],
        default=2,
    ).astype(np.int8)
