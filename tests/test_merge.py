"""Source + destination on one time axis, switchover downtime from both ends, query-migrate."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import pytest

import tracetool
from tests.conftest import SAMPLES, read_lines, run_cli, sample
from tracetool._analyses.merge import (
    NO_ALIGNMENT,
    SAME_CLOCK,
    WIRE_EVENTS,
    align,
    aligned_ts,
    process_mask,
    switchover_downtime,
    total_time,
)
from tracetool._analyses.phases import analyze_phases
from tracetool._model.querymigrate import load_query_migrate, parse_query_migrate
from tracetool.errors import UsageError

LINE_72 = re.compile(rb"^(\d+)@(\d+)\.(\d{6}):(.*)$")
ISO = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?)Z (.*)$")
PAIRS = [
    "qemu-7.2/a-precopy-plain",
    "qemu-7.2/e-precopy-mutex",
    "qemu-threadify/d-postcopy-preempt",
    "qemu-threadify/e-precopy-mutex",
]


@cache
def both(folder: str) -> tracetool.Trace:
    return tracetool.load([sample(folder, "dst.trace.xz"), sample(folder, "src.trace.xz")])


def shifted_copy(src: str, out: Path, shift_us: int) -> str:
    """The same real trace with every timestamp moved by ``shift_us`` (another clock)."""
    lines = []
    for raw in read_lines(src):
        m = LINE_72.match(raw)
        if m:
            t = int(m[2]) * 1_000_000 + int(m[3]) + shift_us
            lines.append(b"%s@%d.%06d:%s" % (m[1], t // 1_000_000, t % 1_000_000, m[4]))
            continue
        m = ISO.match(raw)
        if m:
            dt = datetime.fromisoformat(m[1].decode()).replace(tzinfo=UTC) + timedelta(microseconds=shift_us)
            stamp = dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{dt.microsecond:06d}" if dt.microsecond else "")
            lines.append(stamp.encode() + b"Z " + m[2])
            continue
        lines.append(raw)
    out.write_bytes(b"\n".join(lines) + b"\n")
    return str(out)


# ------------------------------------------------------------------------------ query-migrate
@pytest.mark.parametrize("folder", ["qemu-7.2/a-precopy-plain", "qemu-threadify/e-precopy-mutex"])
def test_both_shipped_query_migrate_shapes_are_read(folder: str) -> None:
    raw = json.loads((SAMPLES / folder / "query-migrate.json").read_text())
    src = raw.get("src") or raw.get("source")
    q = load_query_migrate(str(SAMPLES / folder / "query-migrate.json"))
    assert q.status("src") == "completed" and q.status("dst") == "completed"
    assert q.downtime_ms == src["downtime"] and q.total_time_ms == src["total-time"]
    assert q.page_size == src["ram"]["page-size"]


def test_plain_return_objects_and_qmp_replies() -> None:
    src = {"status": "completed", "total-time": 10, "downtime": 3}
    assert parse_query_migrate(src).src == src
    assert parse_query_migrate({"return": src}).downtime_ms == 3.0
    dst = {"status": "active"}
    q = parse_query_migrate(dst)
    assert q.src is None and q.status("dst") == "active"


COLO_72 = "qemu-7.2-colo/b-colo-periodic-mutex"


def test_a_completed_answer_with_total_time_0_carries_no_qemu_figures() -> None:
    # Real: the COLO run's source ended completed and QEMU never worked out its totals.
    raw = json.loads((SAMPLES / COLO_72 / "query-migrate.json").read_text())
    src = raw.get("src") or raw.get("source")
    assert (src["status"], src["total-time"], src["downtime"]) == ("completed", 0, 0)
    q = load_query_migrate(str(SAMPLES / COLO_72 / "query-migrate.json"))
    assert q.totals_unset and q.downtime_ms is None and q.total_time_ms is None
    assert q.setup_time_ms == src["setup-time"]  # the rest of the answer is still read
    # A total time, even with a downtime under 1 ms, is a measure; so is a running migration's.
    short = parse_query_migrate({"status": "completed", "total-time": 12, "downtime": 0})
    assert not short.totals_unset and short.downtime_ms == 0.0 and short.total_time_ms == 12.0
    running = parse_query_migrate({"status": "active", "total-time": 0, "setup-time": 0})
    assert not running.totals_unset and running.total_time_ms == 0.0
    # Postcopy sets the downtime when it starts, before the totals: that one is a measure.
    postcopy = parse_query_migrate({"status": "completed", "total-time": 0, "downtime": 1})
    assert postcopy.totals_unset and postcopy.total_time_ms is None and postcopy.downtime_ms == 1.0
    note = postcopy.unset_note()
    assert note is not None and "own total time:" in note
    assert "downtime" in (q.unset_note() or "") and short.unset_note() is None


def test_phases_shows_no_qemu_figure_for_qemus_zeros_and_says_why() -> None:
    files = [sample(COLO_72, f"{side}.trace.xz") for side in ("src", "dst")]
    q = load_query_migrate(str(SAMPLES / COLO_72 / "query-migrate.json"))
    r = analyze_phases(tracetool.load(files), q)
    assert r.downtime["qemu_reported_ms"] is None and r.total_time["qemu_reported_ms"] is None
    assert any("total-time 0" in n for n in r.notes)


@pytest.mark.parametrize("bad", [[1, 2], {"foo": 1}, {"src": "completed"}])
def test_not_a_query_migrate_result(bad: object) -> None:
    with pytest.raises(UsageError):
        parse_query_migrate(bad, "x.json")


def test_unreadable_query_migrate_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "q.json"
    bad.write_text('{"src": {"status": ')
    res = run_cli("phases", sample("qemu-7.2/a-precopy-plain", "src.trace.xz"), "--query-migrate", str(bad))
    assert res.returncode == 2
    assert res.stderr.startswith(f"migtrace: {bad}:1:20: not valid JSON")
    assert len(res.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------ alignment
@pytest.mark.parametrize("folder", PAIRS)
def test_one_clock_is_used_as_is_and_wire_pairs_agree_with_it(folder: str) -> None:
    tr = both(folder)
    a = align(tr)
    assert a.method == SAME_CLOCK and a.offset_ns == 0
    # on one clock a receive never precedes its send: 0 lies within the wire bounds
    assert a.upper_ns is not None and a.upper_ns >= 0
    assert a.lower_ns is None or a.lower_ns <= 0


@pytest.mark.parametrize("folder", ["qemu-7.2/a-precopy-plain", "qemu-threadify/d-postcopy-preempt"])
def test_a_source_on_another_clock_moves_the_bounds_by_exactly_the_shift(folder: str, tmp_path: Path) -> None:
    shift_us = 7_250_431
    ref = align(both(folder), method=WIRE_EVENTS)
    moved = shifted_copy(sample(folder, "src.trace.xz"), tmp_path / "src.trace", shift_us)
    got = align(tracetool.load([sample(folder, "dst.trace.xz"), moved]), method=WIRE_EVENTS)
    assert got.method == WIRE_EVENTS and got.pairs == ref.pairs
    assert got.upper_ns is not None and ref.upper_ns is not None
    assert got.upper_ns == ref.upper_ns - shift_us * 1000
    if ref.lower_ns is not None:
        assert got.lower_ns == ref.lower_ns - shift_us * 1000


def test_wire_alignment_recovers_the_end_to_end_downtime(tmp_path: Path) -> None:
    folder = "qemu-threadify/d-postcopy-preempt"
    truth = switchover_downtime(both(folder))
    ref = align(both(folder), method=WIRE_EVENTS)
    moved = shifted_copy(sample(folder, "src.trace.xz"), tmp_path / "src.trace", -3_000_000)
    tr = tracetool.load([sample(folder, "dst.trace.xz"), moved])
    got = switchover_downtime(tr, alignment=align(tr, method=WIRE_EVENTS))
    assert got.method == WIRE_EVENTS
    assert got.src_us == truth.src_us and got.dst_us == truth.dst_us  # one clock each: unchanged
    assert ref.uncertainty_ns is not None
    assert got.end_to_end_us is not None and truth.end_to_end_us is not None
    assert abs(got.end_to_end_us - truth.end_to_end_us) <= ref.uncertainty_ns / 1000


def test_aligned_times_move_only_the_source(tmp_path: Path) -> None:
    tr = both("qemu-7.2/a-precopy-plain")
    a = align(tr, method=WIRE_EVENTS)
    ts = aligned_ts(tr, a)
    src = process_mask(tr, "src")
    assert np.array_equal(ts[~src], tr.ts[~src])
    assert np.array_equal(ts[src] - tr.ts[src], np.full(int(src.sum()), a.offset_ns))


def test_without_timestamps_there_is_no_common_axis() -> None:
    tr = both("qemu-7.2/g-precopy-plain-notimestamp")
    assert align(tr).method == NO_ALIGNMENT
    assert switchover_downtime(tr).end_to_end_us is None


# ------------------------------------------------------------------------------ downtime
def _first(path: str, pattern: bytes) -> int:
    """ns time of the first 7.2 line matching ``pattern``."""
    for raw in read_lines(path):
        m = LINE_72.match(raw)
        if m and re.search(pattern, m[4]):
            return (int(m[2]) * 1_000_000 + int(m[3])) * 1000
    raise AssertionError(pattern)


def test_downtime_from_both_ends_equals_the_raw_lines() -> None:
    folder = "qemu-7.2/a-precopy-plain"
    dst, src = sample(folder, "dst.trace.xz"), sample(folder, "src.trace.xz")
    stop = _first(src, rb"^runstate_set .* \(finish-migrate\)")
    src_done = _first(src, rb"^migrate_set_state new state completed")
    end_section = _first(dst, rb"^qemu_loadvm_state_section 3$")
    running = _first(dst, rb"^runstate_set .*new_state 9 \(running\)")
    d = switchover_downtime(both(folder), load_query_migrate(str(SAMPLES / folder / "query-migrate.json")))
    assert d.src_us == (src_done - stop) / 1000
    assert d.dst_us == (running - end_section) / 1000
    assert d.end_to_end_us == (running - stop) / 1000
    assert d.qemu_reported_ms == 116
    # QEMU stops counting when the source is done; the guest waits until the destination runs
    assert d.end_to_end_us > d.src_us


def test_threaded_runs_bound_source_downtime_by_its_checkpoints() -> None:
    folder = "qemu-threadify/e-precopy-mutex"
    stamps = {}
    for raw in read_lines(sample(folder, "src.trace.xz")):
        m = ISO.match(raw)
        if m and m[2].startswith(b"vmstate_downtime_checkpoint src-downtime-"):
            dt = datetime.fromisoformat(m[1].decode()).replace(tzinfo=UTC)
            stamps[m[2].split()[1].decode()] = round(dt.timestamp() * 1e6)
    d = switchover_downtime(both(folder))
    assert d.src_us == stamps["src-downtime-end"] - stamps["src-downtime-start"]


def test_total_time_from_the_raw_lines() -> None:
    folder = "qemu-7.2/a-precopy-plain"
    src = sample(folder, "src.trace.xz")
    start = _first(src, rb"^qmp_enter_migrate ")
    done = _first(src, rb"^migrate_set_state new state completed")
    t = total_time(both(folder))
    assert t.src_us == (done - start) / 1000


# ------------------------------------------------------------------------------ real QEMU runs
def require_qemu() -> None:
    """Skips without qemu-system-x86_64, unless MIGTRACE_REQUIRE_QEMU=1 makes that a failure."""
    if shutil.which("qemu-system-x86_64"):
        return
    if os.environ.get("MIGTRACE_REQUIRE_QEMU") == "1":
        pytest.fail("MIGTRACE_REQUIRE_QEMU=1 but qemu-system-x86_64 is not on PATH")
    pytest.skip("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")


def capture(out: Path, scenario: str) -> Path:
    """Runs one real migration with ``migtrace capture`` into ``out``; returns the run folder."""
    require_qemu()
    res = run_cli("capture", "--scenario", scenario, "--out", str(out), "--label", "qemu", "--timeout", "60")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return out / "qemu" / "run-1"


@pytest.mark.qemu
def test_a_real_cancelled_migration_is_cancelled_with_the_source_and_failed_without(tmp_path: Path) -> None:
    run = capture(tmp_path / "cancel", "cancel")
    dst_lines = list(read_lines(str(run / "dst.trace")))
    src_lines = list(read_lines(str(run / "src.trace")))
    # what each QEMU wrote, read plainly: the source cancelled, the destination's load failed
    assert any(b":migrate_set_state new state cancelled" in x for x in src_lines)
    assert any(b":migrate_set_state new state failed" in x for x in dst_lines)
    query = load_query_migrate(str(run / "query-migrate.json"))
    alone = analyze_phases(tracetool.load(str(run / "dst.trace")))
    assert alone.outcome == "failed"
    # QEMU's query-migrate of the source says what its trace would: the source cancelled.
    assert query.status("src") == "cancelled"
    told = analyze_phases(tracetool.load(str(run / "dst.trace")), query)
    assert told.outcome == "cancelled"
    together = analyze_phases(tracetool.load([str(run / "dst.trace"), str(run / "src.trace")]), query)
    assert together.outcome == "cancelled"
    assert any(
        "the source cancelled the migration; the destination recorded 'failed'" in n for n in together.notes
    )
    assert together.qemu_status is not None and together.qemu_status["agrees"] is True
    # no switchover happened: there is no pause, and the downtime says so instead of "missing"
    down = tracetool.analyze_downtime(tracetool.load([str(run / "dst.trace"), str(run / "src.trace")]), query)
    assert down.start is None and down.end_to_end_us is None
    assert any("ended 'cancelled' before it stopped the VM" in x for x in down.explanation)
