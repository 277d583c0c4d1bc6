"""Per-hold and per-wait DataFrames: who, when, how the hold began and ended, the call site."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._analyses.bql.events import LOCK, UNLOCK, BqlEvents
from tracetool._analyses.bql.identify import SiteTable, site_key
from tracetool._analyses.bql.pairing import HOLD_STATUS, START, Pairs
from tracetool._model.trace import Trace

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
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})


def categorical(codes: np.ndarray, labels: Sequence[Any]) -> pd.Categorical:
    """Categorical from codes into ``labels`` (which may repeat or hold None; -1: missing)."""
    lab_codes, uniques = pd.factorize(pd.Series(list(labels), dtype=object), use_na_sentinel=True)
    lab = np.r_[np.asarray(lab_codes, dtype=np.int64), -1]
    mapped = lab[np.where(codes >= 0, codes, len(lab) - 1)]
    return pd.Categorical.from_codes(mapped, categories=pd.Index(list(uniques), dtype=object), validate=False)


class Holders:
    """Who an event belongs to: a thread (thread ids) or a role (call-site attribution).

    A holder key is an index into ``tids`` / ``names`` / ``roles``.
    """

    def __init__(self, trace: Trace, bql: BqlEvents, site_role: np.ndarray | None, label: str) -> None:
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
            "thread": categorical(key, self.names),
            "role": categorical(key, self.roles),
        }

    def describe(self, key: int) -> tuple[int | None, str | None, str]:
        """tid, name and role of one holder key."""
        tid = int(self.tids[key])
        return (tid if tid >= 0 else None), self.names[key], self.roles[key]


def _site_column(bql: BqlEvents, sites: SiteTable, idx: np.ndarray) -> pd.Categorical:
    """``file:line`` of the events at ``idx`` (-1: none), as a categorical."""
    i = np.maximum(idx, 0)
    key = np.where(idx >= 0, site_key(bql.site[i], bql.site_line[i]), -1)
    codes, uniques = pd.factorize(key)
    labels = [
        None if u < 0 else sites.text(int(u >> 32), int(u & 0xFFFFFFFF)) for u in np.asarray(uniques).tolist()
    ]
    return categorical(np.asarray(codes, dtype=np.int64), labels)


def _fixed(codes: np.ndarray, categories: Sequence[str]) -> pd.Categorical:
    """Categorical over a fixed vocabulary (-1: missing)."""
    return pd.Categorical.from_codes(
        codes.astype(np.int64), categories=pd.Index(list(categories), dtype=object)
    )


def _nullable(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)


def hold_frame(
    trace: Trace, bql: BqlEvents, pairs: Pairs, sites: SiteTable, holders: Holders
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
    none = categorical(np.full(len(s), -1), [])
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
            "source": categorical(trace.source[rows[ai]].astype(np.int64), paths),
            "line": trace.line[rows[ai]],
            "end_line": _nullable(trace.line[rows[ei]], e < 0),
            "phase": none,
            "section": none,
            "device": none,
        }
    )
    return frame, key


def _started_by(bql: BqlEvents, s: np.ndarray, by_site: bool) -> np.ndarray:
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
        prev_kind = np.where(has, bql.kind[order][p], START)
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


def wait_frame(
    trace: Trace, bql: BqlEvents, pairs: Pairs, sites: SiteTable, holders: Holders
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
            "source": categorical(trace.source[bql.row[s]].astype(np.int64), paths),
            "line": trace.line[bql.row[s]],
        }
    )
    return frame, key
