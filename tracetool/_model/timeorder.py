"""Putting nearly time-sorted rows in a stable time order by moving only the rows that move.

A log file is sorted except for lines a descheduled thread wrote late. A late row (one whose
key is below the largest key before it) belongs right after the last earlier row whose key is
not above its own; every row between that place and the late row's own shifts by one, and no
other row moves. So the stable sort of the whole column equals the stable sort of a few short
windows, one per run of overlapping late-row spans, which is what is computed here: no
permutation of the whole column, and no temporary larger than a block of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_BLOCK = 1 << 16
"""Rows per pass when looking for late rows (keeps temporaries in the CPU caches)."""
_WINDOW_ROWS_MAX = 4
"""Fall back to one full stable sort when the windows hold more than 1/this of the rows."""


@dataclass
class Moves:
    """Row ``sources[i]`` goes to row ``positions[i]``; every other row stays where it is."""

    positions: np.ndarray  # int64, increasing
    sources: np.ndarray  # int64


def time_order_moves(key: np.ndarray) -> Moves | None:
    """The moves that put ``key`` in stable sorted order, or None when it is sorted already."""
    n = len(key)
    if n < 2:
        return None
    late, block_max = _late_rows(key)
    if not len(late):
        return None
    starts = _insertion_points(key, late, block_max)
    lo, hi = _merged_windows(starts, late)
    if int((hi - lo).sum()) > n // _WINDOW_ROWS_MAX:
        order = np.argsort(key, kind="stable")
        moved = np.flatnonzero(order != np.arange(n))
        return Moves(moved, order[moved])
    rows = _window_rows(lo, hi)
    window = np.repeat(np.arange(len(lo)), hi - lo)
    # lexsort is stable: within a window by key, equal keys in file order.
    sources = rows[np.lexsort((key[rows], window))]
    changed = sources != rows
    return Moves(rows[changed], sources[changed])


def stable_time_order(key: np.ndarray) -> np.ndarray | None:
    """A stable permutation sorting ``key``, or None when it is sorted already."""
    moves = time_order_moves(key)
    if moves is None:
        return None
    order = np.arange(len(key))
    order[moves.positions] = moves.sources
    return order


def apply_moves(columns: dict[str, np.ndarray], moves: Moves) -> None:
    """Reorders every column in place (a read-only column is copied first; a column that is one
    value repeated, a zero-stride view, is left as it is)."""
    for k, col in list(columns.items()):
        if col.ndim == 1 and col.strides[0] == 0:
            continue
        if not col.flags.writeable:
            col = col.copy()
        col[moves.positions] = col[moves.sources]
        columns[k] = col


def _late_rows(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose key is below the running maximum before them, and the running maximum at the
    end of each block of ``_BLOCK`` rows."""
    n = len(key)
    nblocks = -(-n // _BLOCK)
    block_max = np.empty(nblocks, dtype=key.dtype)
    late: list[np.ndarray] = []
    running = None
    for b in range(nblocks):
        lo = b * _BLOCK
        chunk = key[lo : lo + _BLOCK]
        rmax = np.maximum.accumulate(chunk)
        if running is not None:
            np.maximum(rmax, running, out=rmax)
        found = np.flatnonzero(chunk < rmax)
        if len(found):
            late.append(found + lo)
        running = rmax[-1]
        block_max[b] = running
    return (np.concatenate(late) if late else np.zeros(0, dtype=np.int64)), block_max


def _insertion_points(key: np.ndarray, late: np.ndarray, block_max: np.ndarray) -> np.ndarray:
    """For each late row, the first row whose running maximum is above its key: where its
    window starts (the rows from there to the late row are all out of order with it)."""
    keys = key[late]
    blocks = np.searchsorted(block_max, keys, side="right")
    out = np.empty(len(late), dtype=np.int64)
    for b in np.unique(blocks).tolist():
        sel = np.flatnonzero(blocks == b)
        lo = b * _BLOCK
        rmax = np.maximum.accumulate(key[lo : lo + _BLOCK])
        if b:
            np.maximum(rmax, block_max[b - 1], out=rmax)
        out[sel] = lo + np.searchsorted(rmax, keys[sel], side="right")
    return out


def _merged_windows(starts: np.ndarray, late: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of the spans [start, late row] as disjoint windows [lo, hi)."""
    order = np.argsort(starts, kind="stable")
    s = starts[order]
    e = late[order] + 1
    reach = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] >= reach[:-1]
    first = np.flatnonzero(new)
    last = np.append(first[1:], len(s)) - 1
    return s[first], reach[last]


def _window_rows(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """All rows of the windows, in order."""
    lengths = hi - lo
    total = int(lengths.sum())
    shift = np.repeat(lo - (np.cumsum(lengths) - lengths), lengths)
    return np.arange(total, dtype=np.int64) + shift
