"""BQL time inside each checkpoint: what the COLO thread held and what the other threads of
its process waited, from the BQL analysis's holds and waits, clipped to the checkpoint.

Holds (and waits) of one thread never overlap, so per thread the time inside a window is a
prefix-sum difference corrected at the two window edges (no loop over holds per checkpoint).
A hold still open at the end of the trace counts until the trace's last event; one taken
before the trace started counts from its first; other holds without an end (missing unlock)
are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tracetool._analyses.bql.report import BqlProcess


@dataclass(frozen=True)
class Intervals:
    """Sorted, non-overlapping intervals of one thread (ns) with their prefix sums."""

    starts: np.ndarray
    ends: np.ndarray
    prefix: np.ndarray

    @staticmethod
    def of(starts: np.ndarray, ends: np.ndarray) -> Intervals:
        """From unsorted starts/ends of one thread."""
        order = np.argsort(starts, kind="stable")
        s, e = starts[order], ends[order]
        return Intervals(s, e, np.concatenate([[0], np.cumsum(e - s)]))

    def inside(self, a: int, b: int) -> int:
        """Time of the intervals inside [a, b]."""
        lo = int(np.searchsorted(self.ends, a, side="right"))
        hi = int(np.searchsorted(self.starts, b, side="left"))
        if hi <= lo:
            return 0
        total = int(self.prefix[hi] - self.prefix[lo])
        total -= max(0, a - int(self.starts[lo]))
        total -= max(0, int(self.ends[hi - 1]) - b)
        return max(total, 0)


def _by_thread(
    frame: pd.DataFrame, open_end: pd.Series | None, bounds: tuple[int, int]
) -> dict[int, Intervals]:
    if frame.empty:
        return {}
    start = frame["start_ns"].astype("Int64")
    end = frame["end_ns"].astype("Int64")
    keep = np.array(end.notna(), dtype=bool)
    if open_end is not None:
        keep |= np.asarray(open_end, dtype=bool)
    starts = start.fillna(bounds[0]).to_numpy(dtype=np.int64)
    ends = end.fillna(bounds[1]).to_numpy(dtype=np.int64)
    tids = frame["tid"].astype("Int64")
    keep &= tids.notna().to_numpy(dtype=bool)
    out: dict[int, Intervals] = {}
    tid_values = tids.fillna(-1).to_numpy(dtype=np.int64)
    for tid in np.unique(tid_values[keep]).tolist():
        sel = keep & (tid_values == tid)
        out[int(tid)] = Intervals.of(starts[sel], ends[sel])
    return out


@dataclass(frozen=True)
class BqlInside:
    """The BQL holds of the COLO thread and the waits of the other threads of its process."""

    holds: Intervals | None
    waits: dict[int, Intervals]

    @staticmethod
    def of(bql: BqlProcess, colo_tid: int, bounds: tuple[int, int]) -> BqlInside:
        """From one process of the BQL analysis (thread attribution); ``bounds``: the first and
        last time of the trace."""
        h = bql.holds
        open_end = h["status"].astype(str) == "held-at-end" if not h.empty else None
        holds = _by_thread(h, open_end, bounds).get(colo_tid)
        waits = {t: iv for t, iv in _by_thread(bql.waits, None, bounds).items() if t != colo_tid}
        return BqlInside(holds, waits)

    def hold_us(self, a: int, b: int) -> float:
        """µs the COLO thread held the BQL inside [a, b]."""
        return (self.holds.inside(a, b) if self.holds is not None else 0) / 1000.0

    def wait_us(self, a: int, b: int) -> float:
        """µs the other threads waited for the BQL inside [a, b], together."""
        return sum(iv.inside(a, b) for iv in self.waits.values()) / 1000.0
