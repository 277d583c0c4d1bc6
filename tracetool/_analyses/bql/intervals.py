"""Holds and waits of one process as numpy arrays in start order: what the statistics, the
per-phase figures and the consistency checks read, and what the DataFrames are built from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parsers.segment import NO_TIME
from tracetool._analyses.bql.events import BqlEvents
from tracetool._analyses.bql.holders import Holders
from tracetool._analyses.bql.pairing import Pairs


@dataclass
class Holds:
    """One entry per hold, in start order (holds open at the start of the trace first)."""

    start: np.ndarray  # index of the locked event into the BQL events (-1: before the trace)
    end: np.ndarray  # index of the unlock event (-1: none seen)
    status: np.ndarray  # int8 into HOLD_STATUS
    key: np.ndarray  # holder key (-1: unknown)
    start_ns: np.ndarray  # int64, NO_TIME when unknown
    end_ns: np.ndarray
    duration_us: np.ndarray  # float, NaN unless complete and timed

    def __len__(self) -> int:
        return len(self.start)

    @property
    def complete(self) -> np.ndarray:
        return self.status == 0

    def anchor(self, which: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The event that places each hold: its start, else its end."""
        return np.where(self.start[which] >= 0, self.start[which], self.end[which])

    @classmethod
    def of(cls, bql: BqlEvents, pairs: Pairs, holders: Holders) -> Holds:
        s = pairs.hold_start
        start_ns = np.where(s >= 0, bql.ts[np.maximum(s, 0)], NO_TIME)
        order = np.argsort(start_ns, kind="stable")  # holds open at the start (NO_TIME) go first
        start_ns = start_ns[order]
        s, e, status = s[order], pairs.hold_end[order], pairs.hold_status[order]
        del order
        end_ns = np.where(e >= 0, bql.ts[np.maximum(e, 0)], NO_TIME)
        anchor = np.where(s >= 0, s, e)
        key = holders.key_of[np.maximum(anchor, 0)] if len(anchor) else np.zeros(0, np.int64)
        del anchor
        if holders.by_site:
            key = np.where(s >= 0, key, -1)  # a release with no hold seen: who took it is unknown
        timed = (start_ns != NO_TIME) & (end_ns != NO_TIME)
        return cls(
            s,
            e,
            status,
            key,
            start_ns,
            end_ns,
            np.where(timed & (status == 0), (end_ns - start_ns) / 1000.0, np.nan),
        )


@dataclass
class Waits:
    """One entry per wait (``lock`` -> ``locked``), in start order."""

    start: np.ndarray  # index of the lock event
    end: np.ndarray  # index of the locked event
    key: np.ndarray
    start_ns: np.ndarray
    end_ns: np.ndarray
    duration_us: np.ndarray  # NaN when untimed

    def __len__(self) -> int:
        return len(self.start)

    @classmethod
    def of(cls, bql: BqlEvents, pairs: Pairs, holders: Holders) -> Waits:
        s, e = pairs.wait_start, pairs.wait_end
        start_ns, end_ns = bql.ts[s], bql.ts[e]
        order = np.argsort(start_ns, kind="stable")
        s, e, start_ns, end_ns = s[order], e[order], start_ns[order], end_ns[order]
        timed = (start_ns != NO_TIME) & (end_ns != NO_TIME)
        return cls(
            s,
            e,
            holders.key_of[s],
            start_ns,
            end_ns,
            np.where(timed, (end_ns - start_ns) / 1000.0, np.nan),
        )
