"""Questions asked of a timeline: which span encloses a time, which spans belong to a thread."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from tracetool._timeline.result import Timeline

DEFAULT_KINDS = ("device", "section", "phase")


def enclosing(
    timeline: Timeline, process: str, tid: int | None, ts_ns: np.ndarray, kinds: Sequence[str] = DEFAULT_KINDS
) -> pd.DataFrame:
    """For each time, the innermost span of ``kinds`` on that thread (that process if tid is None).

    Innermost = the latest-starting span that contains the time (start <= t <= end); ties go
    to the shorter span, then to the kind listed first. Returns columns ``kind``, ``name``,
    ``idstr`` (NA when none) and ``span`` (index into ``timeline.spans``, NA when no span
    encloses the time), one row per input time, in input order.
    """
    t = np.asarray(ts_ns, dtype=np.int64)
    m = len(t)
    s = timeline.spans
    sel = (s["process"] == process).to_numpy() & s["kind"].isin(list(kinds)).to_numpy()
    if tid is not None:
        sel &= (s["tid"] == tid).fillna(False).to_numpy(dtype=bool)
    cand = s[sel]
    best = np.full(m, -1, dtype=np.int64)
    best_start = np.full(m, np.iinfo(np.int64).min, dtype=np.int64)
    best_len = np.full(m, np.iinfo(np.int64).max, dtype=np.int64)
    best_rank = np.full(m, len(kinds), dtype=np.int64)
    rank_of = {k: i for i, k in enumerate(kinds)}
    for kind, group in cand.groupby("kind", sort=False):
        for layer in _layers(group):
            starts = layer["start_ns"].to_numpy(dtype=np.int64)
            stops = layer["end_ns"].to_numpy(dtype=np.int64)
            idx = np.searchsorted(starts, t, side="right") - 1
            ok = idx >= 0
            idx = np.maximum(idx, 0)
            ok &= stops[idx] >= t if len(stops) else ok
            st, ln = starts[idx], stops[idx] - starts[idx]
            rank = rank_of[str(kind)]
            better = ok & (
                (st > best_start)
                | ((st == best_start) & ((ln < best_len) | ((ln == best_len) & (rank < best_rank))))
            )
            best = np.where(better, layer.index.to_numpy()[idx], best)
            best_start = np.where(better, st, best_start)
            best_len = np.where(better, ln, best_len)
            best_rank = np.where(better, rank, best_rank)
    # Per span, then taken per time (-1: NA): a few hundred spans, possibly a million times.
    at = s.index.get_indexer(pd.Index(best))
    at[best < 0] = -1
    none = pd.array([None] * len(s), dtype="string")
    return pd.DataFrame(
        {
            c: (s[c].astype("string").array if c in s else none).take(at, allow_fill=True)
            for c in ("kind", "name", "idstr")
        }
        | {"span": pd.arrays.IntegerArray(np.maximum(best, 0), best < 0)}
    )


def _layers(group: pd.DataFrame) -> list[pd.DataFrame]:
    """Splits spans into layers of non-overlapping spans, each sorted by start."""
    g = group.sort_values(["start_ns", "end_ns"], kind="stable")
    starts = g["start_ns"].to_numpy(dtype=np.int64)
    stops = g["end_ns"].to_numpy(dtype=np.int64)
    if len(g) < 2 or bool((starts[1:] > stops[:-1]).all()):
        return [g]
    layer_end: list[int] = []
    assign = np.empty(len(g), dtype=np.int64)
    for i, (a, z) in enumerate(zip(starts.tolist(), stops.tolist(), strict=True)):
        for j, last in enumerate(layer_end):
            if a > last:
                layer_end[j] = z
                assign[i] = j
                break
        else:
            layer_end.append(z)
            assign[i] = len(layer_end) - 1
    return [g[assign == j] for j in range(len(layer_end))]


def select(
    frame: pd.DataFrame, kinds: Sequence[str] | None = None, thread: str | None = None
) -> pd.DataFrame:
    """Rows of ``spans``/``instants`` of the given kinds and thread (a TID, name or role)."""
    out = frame
    if kinds:
        out = out[out["kind"].isin(list(kinds))]
    if thread:
        hit = (out["thread"] == thread) | (out["role"] == thread)
        if thread.isdigit():
            hit |= (out["tid"] == int(thread)).fillna(False)
        out = out[hit.to_numpy(dtype=bool)]
    return out
