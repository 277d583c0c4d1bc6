"""Borrowing thread ids and the wall clock from a log twin of a simple-backend trace.

Real pairs (threadify, recorded with ``log,simple``) check the clock and the match rate; their
log lines carry no thread id. Thread ids are checked on simple files written by
``benchmarks/make_simple.py`` from real logs that have them (QEMU 7.2 ``TID@`` lines,
threadify per-thread files), shuffled, delayed and with dropped events as a busy host would
write them; the test knows which log line each record came from.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import tracetool
from benchmarks import make_simple
from tests.conftest import read_lines, sample
from tests.test_simple import loaded
from tracetool._model.borrow import borrow

PAIRS = {
    "d-dst": (
        "qemu-threadify/d-postcopy-preempt/dst.simple.xz",
        "qemu-threadify/d-postcopy-preempt/dst.trace.xz",
    ),
    "e-dst": ("qemu-threadify/e-precopy-mutex/dst.simple.xz", "qemu-threadify/e-precopy-mutex/dst.trace.xz"),
    "e-src": ("qemu-threadify/e-precopy-mutex/src.simple.xz", "qemu-threadify/e-precopy-mutex/src.trace.xz"),
}


def keys(trace: tracetool.Trace) -> list[tuple[str, str]]:
    ev = trace.events
    return list(zip(ev["event"].astype(str), ev["args"].astype(str), strict=True))


@pytest.mark.parametrize("scenario", sorted(PAIRS))
def test_clock_and_matches_on_real_twins(scenario: str) -> None:
    srel, lrel = PAIRS[scenario]
    simple, log = loaded(srel), loaded(lrel)
    result = borrow(simple, log)
    (proc,) = result.processes
    assert proc.clock is not None

    # Offset, computed plainly: events whose (name, text) occurs exactly once on each side.
    sk, lk = keys(simple), keys(log)
    sc, lc = Counter(sk), Counter(lk)
    s_at = {k: int(t) for k, t in zip(sk, simple.ts, strict=True) if sc[k] == 1}
    l_at = {k: int(t) for k, t in zip(lk, log.ts, strict=True) if lc[k] == 1}
    diffs = [l_at[k] - s_at[k] for k in s_at.keys() & l_at.keys()]
    assert len(diffs) > 1000
    assert abs(proc.clock.offset_ns - statistics.median(diffs)) <= 1000
    assert proc.clock.mad_ns < 2000

    # Every simple event the log also has is matched, to a log event with the same text.
    simple_only = sum((sc - lc).values())
    assert proc.matched == len(simple) - simple_only
    rows = np.flatnonzero(result.log_row >= 0)
    assert all(sk[i] == lk[j] for i, j in zip(rows.tolist(), result.log_row[rows].tolist(), strict=True))
    assert len(set(result.log_row[rows].tolist())) == len(rows)

    # The new trace is on the wall clock; matched events land near their log twins.
    new = result.trace
    assert new.clock == "wall" and len(new) == len(simple)
    assert "wall clock borrowed" in new.inputs["variant"].iloc[0]
    assert proc.tids_borrowed == 0 and not new.has_tids  # 10.1 log lines carry no thread id
    moved = simple.ts[rows] + proc.clock.offset_ns
    err = np.abs(moved - log.ts[result.log_row[rows]])
    assert np.median(err) <= 2000 and (err <= 1_000_000).mean() > 0.999
    assert np.array_equal(np.sort(new.ts), np.sort(simple.ts + proc.clock.offset_ns))
    json.dumps(result.report())


def _simple_from_log(
    log: tracetool.Trace, tmp_path: Path, **write: object
) -> tuple[tracetool.Trace, np.ndarray, make_simple.Records]:
    """A perturbed simple file written from ``log``; also the log row of each simple row."""
    time_order = bool(write.pop("time_order", False))
    rec = make_simple.records_from_trace(log, pid=4242, time_order=time_order)
    assert not rec.undecoded
    rec = make_simple.perturb(rec, swap_fraction=0.01, delay_fraction=0.002)
    opts = make_simple.WriteOptions(**write)  # type: ignore[arg-type]
    path = tmp_path / "gen.simple"
    with open(path, "wb") as f:
        make_simple.write_records(rec, f, opts)
    simple = tracetool.load(str(path))
    kept = np.ones(len(rec), dtype=bool)
    for start, count in opts.drops:
        kept[start : start + count] = False
    in_file_order = rec.source_row[kept]
    by_offset = np.argsort(simple.line, kind="stable")
    expected = np.empty(len(simple), dtype=np.int64)
    expected[by_offset] = in_file_order
    return simple, expected, rec


def test_thread_ids_from_a_72_log(tmp_path: Path) -> None:
    folder = "qemu-7.2/e-precopy-mutex"
    log = tracetool.load(
        sample(*folder.split("/"), "dst.trace.xz"), threads=[sample(*folder.split("/"), "dst-threads.json")]
    )
    simple, expected_row, _ = _simple_from_log(log, tmp_path, drops=[(50_000, 40), (120_000, 7)])
    assert len(simple) == len(log) - 47
    result = borrow(simple, log)
    (proc,) = result.processes
    assert proc.matched == len(simple) and proc.log_events - proc.matched == 47

    # TIDs from the 7.2 "TID@" prefixes, read plainly, in line order.
    tid_of_line = {}
    for number, ln in enumerate(read_lines(sample(*folder.split("/"), "dst.trace.xz")), 1):
        m = re.match(rb"(\d+)@", ln)
        if m:
            tid_of_line[number] = int(m.group(1))
    expected_tid = np.array([tid_of_line[int(n)] for n in log.line[expected_row]])
    by_offset_new = np.argsort(result.trace.line, kind="stable")
    by_offset_old = np.argsort(simple.line, kind="stable")
    got_tid = np.empty(len(simple), dtype=np.int64)
    got_tid[by_offset_old] = result.trace.tid[by_offset_new]
    assert (got_tid == expected_tid).mean() > 0.9995
    assert len(set(expected_tid.tolist())) == 4  # main, RCU, I/O and vCPU threads

    # Clock: the generator subtracted DEFAULT_CLOCK_OFFSET and added 0..999 ns.
    assert proc.clock is not None
    assert abs(proc.clock.offset_ns - (make_simple.DEFAULT_CLOCK_OFFSET - 500)) <= 600
    names = dict(zip(result.trace.threads["tid"].astype(int), result.trace.threads["name"], strict=True))
    sidecar = dict(zip(log.threads["tid"].astype(int), log.threads["name"], strict=True))
    assert names == sidecar
    assert result.trace.threads.set_index("tid").loc[30912, "role"] == "vcpu"


def test_thread_ids_from_per_thread_files(tmp_path: Path) -> None:
    folder = sample("qemu-threadify", "e-precopy-mutex", "per-thread")
    log = tracetool.load(f"{folder}/dst.*.trace.xz", threads=[f"{folder}/dst-threads.json"])
    assert log.has_tids
    simple, expected_row, _ = _simple_from_log(log, tmp_path, time_order=True, drops=[(10_000, 25)])
    result = borrow(simple, log)
    by_offset_new = np.argsort(result.trace.line, kind="stable")
    by_offset_old = np.argsort(simple.line, kind="stable")
    got_tid = np.empty(len(simple), dtype=np.int64)
    got_tid[by_offset_old] = result.trace.tid[by_offset_new]
    assert (got_tid == log.tid[expected_row]).mean() > 0.9995
    roles = dict(zip(result.trace.threads["name"].astype(str), result.trace.threads["role"], strict=True))
    assert roles["mig/dst/main"] == "load"


def test_untimed_log_pairs_by_order_and_keeps_the_clock(tmp_path: Path) -> None:
    timed = sample("qemu-7.2", "a-precopy-plain", "src.trace.xz")
    untimed = tmp_path / "src.notime.trace"
    untimed.write_bytes(b"\n".join(re.sub(rb"^\d+@\d+\.\d+:", b"", ln) for ln in read_lines(timed)) + b"\n")
    log = tracetool.load(str(untimed))
    assert not log.has_time
    simple, expected_row, _ = _simple_from_log(tracetool.load(timed), tmp_path)
    result = borrow(simple, log)
    (proc,) = result.processes
    assert proc.clock is None and proc.matched == len(simple)
    assert result.trace.clock == "monotonic"
    assert np.array_equal(np.sort(result.trace.ts), np.sort(simple.ts))
    # expected_row indexes the timed trace; the untimed one has its rows in line order
    timed_lines = tracetool.load(timed).line[expected_row]
    expected_untimed = np.searchsorted(log.line, timed_lines)
    assert np.array_equal(log.line[expected_untimed], timed_lines)
    assert (result.log_row == expected_untimed).mean() > 0.99


def test_null_strings_still_match(tmp_path: Path) -> None:
    # The source side of postcopy logs "migrate_handle_rp_req_pages in (null) ...": the simple
    # backend writes such a NULL string as an empty one.
    log = tracetool.load(sample("qemu-threadify", "d-postcopy-preempt", "src.trace.xz"))
    nulls = int(log.events["args"].astype(str).str.contains("(null)", regex=False).sum())
    assert nulls > 1000
    simple, expected_row, _ = _simple_from_log(log, tmp_path)
    rendered = simple.events["args"].astype(str)
    assert not rendered.str.contains("(null)", regex=False).any()
    result = borrow(simple, log)
    (proc,) = result.processes
    assert proc.matched == len(simple) == len(log)
    # Bursts of identical events (same text, microseconds apart) are interchangeable: each
    # simple event must be paired with its own log line or one with the same name and text.
    texts = list(zip(log.events["event"].astype(str), log.events["args"].astype(str), strict=True))
    assert all(
        texts[a] == texts[b] for a, b in zip(result.log_row.tolist(), expected_row.tolist(), strict=True)
    )
    assert (result.log_row == expected_row).mean() > 0.95
