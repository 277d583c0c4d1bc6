"""Each thread's first and last timestamp (``tracetool._model.threads._time_spans``), against a
plain walk over every row, on synthetic columns whose threads start and end at any moment."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from parsers.segment import NO_TIME
from tracetool._model.threads import _BLOCK, _time_spans


def _plain(ts: np.ndarray, row_thread: np.ndarray, nthreads: int) -> tuple[list[int], list[int]]:
    first, last = [NO_TIME] * nthreads, [NO_TIME] * nthreads
    for t, thread in zip(ts.tolist(), row_thread.tolist(), strict=True):
        if t == NO_TIME:
            continue
        if first[thread] == NO_TIME:
            first[thread] = t
        last[thread] = t
    return first, last


@pytest.mark.parametrize("seed", range(6))
def test_first_and_last_time_of_every_thread_as_a_walk_of_every_row_finds_them(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 4 * _BLOCK))
    nthreads = int(rng.integers(1, 12))
    row_thread = rng.integers(0, nthreads, n).astype(np.int32)
    # threads that occur only inside a stretch of the trace: late starters, early enders, one row
    for t in range(nthreads):
        if rng.random() < 0.5:
            lo, hi = sorted(rng.integers(0, n, 2).tolist())
            outside = (row_thread == t) & ((np.arange(n) < lo) | (np.arange(n) > hi))
            row_thread[outside] = 0
    ts = np.cumsum(rng.integers(0, 5, n)).astype(np.int64) + 1_000
    ts[rng.random(n) < rng.choice([0.0, 0.1, 0.9])] = NO_TIME  # lines without a timestamp
    if nthreads > 2:
        ts[row_thread == nthreads - 1] = NO_TIME  # a thread with no timed row at all
    columns: Any = SimpleNamespace(ts=ts)
    first, last = _time_spans(columns, row_thread, nthreads)
    assert (first.tolist(), last.tolist()) == _plain(ts, row_thread, nthreads)
