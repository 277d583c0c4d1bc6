"""Pairing of begin and end rows into spans, with sorts and cumulative sums over whole columns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Pairs:
    """Result of pairing: one entry per span, plus end rows that closed nothing."""

    begin_rows: np.ndarray  # int64
    end_rows: np.ndarray  # int64, -1 when unclosed
    cut_rows: np.ndarray  # int64: the begin that cut an unclosed span short, -1 when none
    orphan_ends: np.ndarray  # int64


def pair_rows(
    begins: np.ndarray,
    ends: np.ndarray,
    begin_groups: np.ndarray,
    end_groups: np.ndarray,
    repeat: str = "restart",
) -> Pairs:
    """Pairs each begin row with the first end row after it in the same group.

    ``repeat``: "restart" (a begin seen again before the end leaves the earlier one unclosed),
    "keep" (repeated begins belong to the open span) or "nest" (each end closes the newest
    open begin). A row may be both a begin and an end (chained spans): it closes the previous
    span and opens the next. Everything is done with sorts and cumulative sums.
    """
    begins = np.asarray(begins, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    nb = len(begins)
    pos = np.concatenate([begins, ends])
    grp = np.concatenate([np.asarray(begin_groups, np.int64), np.asarray(end_groups, np.int64)])
    is_b = np.concatenate([np.ones(nb, bool), np.zeros(len(ends), bool)])
    # ends sort before begins on the same row: the row closes first, then opens
    order = np.lexsort((is_b, pos, grp))
    pos, grp, is_b = pos[order], grp[order], is_b[order]
    is_e = ~is_b
    if repeat == "nest" and len(pos):
        step = np.where(is_b, 1, -1)
        csum = np.cumsum(step)
        first = np.r_[True, grp[1:] != grp[:-1]]
        base = (csum - step)[first]
        depth = csum - np.repeat(base, np.diff(np.r_[np.flatnonzero(first), len(grp)]))
        level = np.where(is_b, depth, depth + 1)
        _, grp = np.unique(np.stack([grp, level]), axis=1, return_inverse=True)
        grp = grp.reshape(-1).astype(np.int64)
        order2 = np.lexsort((is_b, pos, grp))
        pos, grp, is_b = pos[order2], grp[order2], is_b[order2]
        is_e = ~is_b
    end_idx = np.flatnonzero(is_e)
    beg_idx = np.flatnonzero(is_b)
    k = np.cumsum(is_e)[beg_idx]  # ordinal of the first end after each begin
    has_end = k < len(end_idx)
    last_end = max(len(end_idx) - 1, 0)
    cand = end_idx[np.minimum(k, last_end)] if len(end_idx) else np.zeros(len(beg_idx), np.int64)
    has_end &= grp[cand] == grp[beg_idx] if len(end_idx) else np.zeros(len(beg_idx), bool)
    nxt = np.r_[beg_idx[1:], -1]
    nxt_same = (nxt >= 0) & (grp[np.maximum(nxt, 0)] == grp[beg_idx])
    if repeat == "keep":
        prev_same = np.r_[False, (grp[beg_idx[1:]] == grp[beg_idx[:-1]]) & (k[1:] == k[:-1])]
        keep = ~prev_same
        closed = has_end
        cut = np.full(len(beg_idx), -1, dtype=np.int64)
        beg_idx, cand, closed, cut = beg_idx[keep], cand[keep], closed[keep], cut[keep]
    else:
        superseded = nxt_same & (~has_end | (np.maximum(nxt, 0) < cand))
        closed = has_end & ~superseded
        cut = np.where(superseded, pos[np.maximum(nxt, 0)], -1)
    used = np.zeros(len(pos), dtype=bool)
    used[cand[closed]] = True
    orphan = pos[is_e & ~used]
    return Pairs(
        begin_rows=pos[beg_idx],
        end_rows=np.where(closed, pos[cand], -1).astype(np.int64),
        cut_rows=cut.astype(np.int64),
        orphan_ends=np.unique(orphan),
    )
