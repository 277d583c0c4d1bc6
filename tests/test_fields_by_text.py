"""Typed arguments per distinct text: several events read in one pass
(``Trace.fields_by_text_of``) give each event exactly what reading it alone
(``Trace.fields_by_text``, ``Trace.fields``) gives, on real traces of several backends."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tracetool
from tests.conftest import sample

MUTEX = ["qemu_mutex_unlock", "qemu_mutex_lock", "qemu_mutex_locked"]


@pytest.mark.parametrize(
    ("run", "events"),
    [
        (("qemu-7.2", "e-precopy-mutex"), MUTEX),
        (("qemu-threadify", "e-precopy-mutex", "per-thread"), [*MUTEX, "qemu_loadvm_state_section"]),
        (("qemu-threadify-lttng", "a-precopy-mutex"), MUTEX),
        (("qemu-threadify-ftrace", "a-precopy-mutex"), ["no_such_event", *MUTEX]),
        # more events than a byte can number
        (
            ("qemu-7.2", "a-precopy-plain"),
            [*(f"not_an_event_{i}" for i in range(130)), "migrate_set_state"],
        ),
    ],
)
def test_several_events_in_one_pass_read_as_each_alone(run: tuple[str, ...], events: list[str]) -> None:
    trace = tracetool.load(sample(*run))
    rows, text, frames = trace.fields_by_text_of(events)
    assert len(frames) == len(events)
    assert np.array_equal(rows, trace.rows(events))  # every row of the events, in time order
    first = np.cumsum([0] + [len(f) for f in frames])
    for i, event in enumerate(events):
        mine = (text >= first[i]) & (text < first[i + 1])
        alone = trace.fields(event)
        assert np.array_equal(rows[mine], alone.index.to_numpy())
        got = frames[i].take(text[mine] - first[i]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, alone.reset_index(drop=True), check_dtype=False)
    assert sum(len(trace.rows(e)) for e in events) == len(rows) > 0


@pytest.mark.parametrize(
    "run",
    [
        ("qemu-7.2", "c-postcopy", "dst.trace.xz"),
        ("qemu-threadify", "d-postcopy-preempt", "per-thread"),
        ("qemu-threadify", "e-precopy-mutex", "dst.simple.xz"),
        ("qemu-threadify-lttng", "a-precopy-mutex"),
        ("qemu-threadify-ftrace", "a-precopy-mutex"),
    ],
)
def test_some_fields_read_as_the_same_columns_of_all_fields(run: tuple[str, ...]) -> None:
    whole, some = tracetool.load(sample(*run)), tracetool.load(sample(*run))
    names = [str(n) for n in whole.event_names]
    checked = 0
    for event in names:
        full = whole.fields(event)
        fields = [c for c in full.columns if c != "decoded"]
        if len(fields) < 2:
            continue
        for field in fields:
            got = some.fields(event, columns=[field])
            assert list(got.columns) == [field, "decoded"], (event, field)
            pd.testing.assert_frame_equal(got, full[[field, "decoded"]], check_dtype=False)
            checked += 1
        # a field the event does not have: only whether each text matched the format
        none = some.fields(event, columns=["no_such_field"])
        pd.testing.assert_frame_equal(none, full[["decoded"]])
    assert checked >= 10
