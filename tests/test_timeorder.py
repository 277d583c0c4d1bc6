"""Time ordering by windows equals one stable sort of the whole column.

The inputs are sorted columns with some rows pushed back in time (as a descheduled thread's
late lines are), plus unsorted and all-equal columns; small blocks make the block logic run on
short columns. The reference is numpy's stable argsort.
"""

from __future__ import annotations

import numpy as np
import pytest

from tracetool._model import timeorder
from tracetool._model.timeorder import Moves, apply_moves, stable_time_order, time_order_moves


def _columns(rng: np.random.Generator, trials: int) -> list[np.ndarray]:
    out = []
    for trial in range(trials):
        n = int(rng.integers(0, 400))
        if trial % 9 == 0:
            key = rng.integers(0, 5, n)  # unsorted, many ties
        else:
            key = np.sort(rng.integers(0, 80, n))
            late = rng.integers(0, n, int(rng.integers(0, n // 4 + 1))) if n else np.zeros(0, int)
            key[late] -= rng.integers(0, 50, len(late))
        out.append(key.astype(np.int64))
    out.append(np.zeros(50, dtype=np.int64))
    out.append(np.arange(50, dtype=np.int64)[::-1].copy())
    return out


@pytest.mark.parametrize("block", [3, 8, 64, timeorder._BLOCK])
def test_windows_give_the_stable_sort(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    monkeypatch.setattr(timeorder, "_BLOCK", block)
    rng = np.random.default_rng(block)
    for key in _columns(rng, 400):
        want = np.argsort(key, kind="stable")
        got = stable_time_order(key)
        if got is None:
            assert (want == np.arange(len(key))).all()
        else:
            assert (got == want).all(), key


def test_only_moved_rows_are_touched() -> None:
    # Row 6 was written late: it belongs after row 2 (key 20, and ties keep file order).
    key = np.array([10, 20, 20, 30, 40, 50, 20, 60], dtype=np.int64)
    moves = time_order_moves(key)
    assert isinstance(moves, Moves)
    assert moves.positions.tolist() == [3, 4, 5, 6]
    cols = {"key": key.copy(), "row": np.arange(8)}
    apply_moves(cols, moves)
    assert cols["row"].tolist() == [0, 1, 2, 6, 3, 4, 5, 7]
    assert (np.diff(cols["key"]) >= 0).all()


def test_sorted_input_needs_no_moves() -> None:
    assert time_order_moves(np.array([1, 1, 2, 3], dtype=np.int64)) is None
    assert time_order_moves(np.zeros(0, dtype=np.int64)) is None


def test_a_read_only_column_is_copied_not_written() -> None:
    key = np.array([3, 1, 2], dtype=np.int64)
    frozen = key.copy()
    frozen.flags.writeable = False
    cols = {"k": frozen}
    moves = time_order_moves(key)
    assert moves is not None
    apply_moves(cols, moves)
    assert cols["k"].tolist() == [1, 2, 3]
    assert frozen.tolist() == [3, 1, 2]
