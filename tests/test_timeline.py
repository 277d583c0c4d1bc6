"""The timeline: pairing rules applied to real traces, checked against plain line walks."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tracetool
from reports.timeline import records
from tests.conftest import read_lines, run_cli, sample
from tracetool._timeline.builder import build_timeline
from tracetool._timeline.pairing import pair_rows
from tracetool._timeline.queries import enclosing, select
from tracetool._timeline.rules import parse_rules, rules

LINE_72 = re.compile(rb"^(\d+)@(\d+)\.(\d{6}):(\w+) ?(.*)$")


def parse_72(path: str) -> list[tuple[int, int, str, str, int]]:
    """(tid, ts_us, event, args, line number) of every event line of a 7.2 log file."""
    out = []
    for n, raw in enumerate(read_lines(path), start=1):
        m = LINE_72.match(raw)
        if m:
            out.append((int(m[1]), int(m[2]) * 1_000_000 + int(m[3]), m[4].decode(), m[5].decode(), n))
    return out


@pytest.fixture(scope="module")
def a72() -> tracetool.Trace:
    d = "qemu-7.2/a-precopy-plain"
    return tracetool.load(sample(d, "dst.trace.xz"), threads=[sample(d, "dst-threads.json")])


# ------------------------------------------------------------------------------ pairing
def plain_pairs(begins: list[tuple[int, int]], ends: list[tuple[int, int]], repeat: str) -> dict[int, int]:
    """Reference pairing by walking rows one by one: begin row -> end row (-1 when unclosed)."""
    items = sorted([(r, g, 0) for r, g in ends] + [(r, g, 1) for r, g in begins])
    open_: dict[int, list[int]] = {}
    result: dict[int, int] = {}
    for row, group, is_begin in items:
        stack = open_.setdefault(group, [])
        if not is_begin:
            if stack:
                result[stack.pop()] = row
                if repeat != "nest":
                    stack.clear()
            continue
        if repeat == "keep" and stack:
            continue
        if repeat == "restart":
            stack.clear()
        stack.append(row)
        result[row] = -1
    return result


@pytest.mark.parametrize("repeat", ["restart", "keep", "nest"])
@pytest.mark.parametrize("seed", range(12))
def test_vectorised_pairing_matches_a_plain_walk(repeat: str, seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 200)
    begins, ends = [], []
    for row in range(n):
        g = rng.randint(0, 2)
        kind = rng.random()
        if kind < 0.45:
            begins.append((row, g))
        elif kind < 0.9:
            ends.append((row, g))
        else:  # a row that ends one span and begins the next (chained sections)
            begins.append((row, g))
            ends.append((row, g))

    def col(items: list[tuple[int, int]], k: int) -> np.ndarray:
        return np.array([x[k] for x in items], dtype=np.int64)

    got = pair_rows(col(begins, 0), col(ends, 0), col(begins, 1), col(ends, 1), repeat)
    paired = dict(zip(got.begin_rows.tolist(), got.end_rows.tolist(), strict=True))
    assert paired == plain_pairs(begins, ends, repeat)
    used = set(got.end_rows[got.end_rows >= 0].tolist())
    assert set(got.orphan_ends.tolist()) == {r for r, _ in ends} - used


def test_a_row_that_is_begin_and_end_closes_first_then_opens() -> None:
    # section headers: each one ends the previous section and starts the next
    rows = np.array([3, 7, 9], dtype=np.int64)
    got = pair_rows(rows, rows, np.zeros(3, np.int64), np.zeros(3, np.int64))
    assert got.end_rows.tolist() == [7, 9, -1]


# ------------------------------------------------------------------------------ real traces
def test_part_sections_end_where_the_ram_loader_returns(a72: tracetool.Trace) -> None:
    path = sample("qemu-7.2/a-precopy-plain", "dst.trace.xz")
    lines = parse_72(path)
    expected = []
    for i, (tid, ts, ev, args, _) in enumerate(lines):
        if ev == "qemu_loadvm_state_section" and args.strip() == "2":
            end = next(
                x
                for x in lines[i + 1 :]
                if x[0] == tid
                and x[2] in ("ram_load_complete", "qemu_loadvm_state_section", "qemu_loadvm_state_post_main")
            )
            expected.append(float(end[1] - ts))
    spans = build_timeline(a72).spans
    part = spans[(spans["kind"] == "section") & (spans["name"] == "PART")]
    assert len(expected) == 20
    assert part["duration_us"].tolist() == expected
    assert set(part["idstr"]) == {"ram"}  # PART names only its section id; the START gave "ram"


def test_enclosing_names_the_device_each_vmstate_load_ran_in(a72: tracetool.Trace) -> None:
    path = sample("qemu-7.2/a-precopy-plain", "dst.trace.xz")
    loads = [(tid, ts, args.split(",")[0]) for tid, ts, ev, args, _ in parse_72(path) if ev == "vmstate_load"]
    tid = loads[0][0]
    times = np.array([ts * 1000 for _, ts, _ in loads], dtype=np.int64)
    got = enclosing(build_timeline(a72), "dst", tid, times)
    assert len(got) == len(loads) == 53
    assert got["idstr"].tolist() == [name for _, _, name in loads]
    assert set(got["kind"]) == {"device", "section"}  # devices for START/FULL, sections for PART/END


def test_a_span_encloses_the_instant_it_starts(a72: tracetool.Trace) -> None:
    path = sample("qemu-7.2/a-precopy-plain", "dst.trace.xz")
    starts = [
        (tid, ts, args.split("(")[1].split(")")[0])
        for tid, ts, ev, args, _ in parse_72(path)
        if ev == "qemu_loadvm_state_section_startfull"
    ]
    got = enclosing(build_timeline(a72), "dst", starts[0][0], np.array([ts * 1000 for _, ts, _ in starts]))
    assert got["kind"].tolist() == ["device"] * len(starts)
    assert got["name"].tolist() == [name for _, _, name in starts]


def test_enclosing_outside_any_span_is_na_and_keeps_input_order(a72: tracetool.Trace) -> None:
    tl = build_timeline(a72)
    first = int(a72.ts.min())
    got = enclosing(tl, "dst", int(a72.processes["load_tid"].iloc[0]), np.array([first - 10, first - 5]))
    assert got["kind"].isna().all() and got["span"].isna().all()


def test_timeline_is_cached_per_trace(a72: tracetool.Trace) -> None:
    assert build_timeline(a72) is build_timeline(a72)


def test_threadless_trace_still_gets_spans_with_the_implied_role() -> None:
    tr = tracetool.load(sample("qemu-threadify/e-precopy-mutex", "dst.trace.xz"))
    tl = build_timeline(tr)
    dev = tl.spans[tl.spans["kind"] == "device"]
    starts = sum(
        1
        for raw in read_lines(sample("qemu-threadify/e-precopy-mutex", "dst.trace.xz"))
        if b" qemu_loadvm_state_section_startfull " in raw
    )
    assert len(dev) == starts == 34
    assert dev["tid"].isna().all()
    assert set(dev["role"]) == {"load"}
    assert any("no thread ids" in n for n in tl.notes)


def test_per_thread_run_puts_device_loads_on_the_named_load_thread() -> None:
    d = sample("qemu-threadify/e-precopy-mutex/per-thread")
    tr = tracetool.load(d, threads=[str(Path(d) / "dst-threads.json")])
    dev = build_timeline(tr).spans.query("kind == 'device'")
    # the file that holds the startfull lines is named after the thread that wrote them
    owner = {
        int(p.name.split(".")[1])
        for p in Path(d).glob("dst.*.trace.xz")
        if any(b"qemu_loadvm_state_section_startfull" in raw for raw in read_lines(str(p)))
    }
    assert set(dev["tid"].astype(int)) == owner
    assert set(dev["thread"]) == {"mig/dst/main"}


def test_trace_without_timestamps_keeps_order_but_has_no_durations() -> None:
    tr = tracetool.load(sample("qemu-7.2/g-precopy-plain-notimestamp", "dst.trace.xz"))
    tl = build_timeline(tr)
    dev = tl.spans[tl.spans["kind"] == "device"]
    assert len(dev) == 32
    assert dev["duration_us"].isna().all()
    assert (dev["end_row"].astype(int) > dev["begin_row"]).all()
    assert any("no timestamps" in n for n in tl.notes)
    recs = records(tl.spans) + records(tl.instants)
    assert recs and all(r.get("start_ns", r.get("ts_ns", 0)) is None for r in recs)
    json.dumps(recs, allow_nan=False)


# ------------------------------------------------------------------------------ bad input
def _write_lines(path: Path, lines: list[bytes]) -> str:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return str(path)


def test_cut_trace_keeps_unclosed_spans_ending_at_the_threads_last_event(tmp_path: Path) -> None:
    src = sample("qemu-7.2/a-precopy-plain", "dst.trace.xz")
    lines = list(read_lines(src))
    cpu = next(i for i, raw in enumerate(lines) if b"qemu_loadvm_state_section_startfull 5(cpu)" in raw)
    cut = lines[: cpu + 40]  # in the middle of the cpu device load
    path = _write_lines(tmp_path / "cut.trace", cut)
    tl = build_timeline(tracetool.load(path))
    span = tl.spans[(tl.spans["kind"] == "device") & (tl.spans["name"] == "cpu")].iloc[0]
    stamps = [(int(m[2]) * 1_000_000 + int(m[3])) * 1000 for m in map(LINE_72.match, cut) if m]
    assert not span["closed"] and pd.isna(span["end_row"])
    assert span["end_ns"] == stamps[-1]
    # The migration never reached a final state: the span is open where the trace ends, which is
    # not an inconsistency of the input.
    open_ = tl.open_at_end[tl.open_at_end["line"] == cpu + 1]
    assert len(open_) == 1 and open_["path"].iloc[0] == path and "cpu" in open_["message"].iloc[0]
    assert not len(tl.issues[tl.issues["kind"] == "unclosed"])


def test_events_out_of_order_within_a_thread_are_flagged_with_file_and_line(tmp_path: Path) -> None:
    lines = list(read_lines(sample("qemu-7.2/a-precopy-plain", "dst.trace.xz")))
    i = next(k for k, raw in enumerate(lines) if b"qemu_loadvm_state_section_startfull 7(apic)" in raw)
    # move the apic startfull line 30 lines later: same thread, earlier timestamp, later line
    moved = lines[:i] + lines[i + 1 : i + 31] + [lines[i]] + lines[i + 31 :]
    path = _write_lines(tmp_path / "swapped.trace", moved)
    tl = build_timeline(tracetool.load(path))
    ooo = tl.issues[tl.issues["kind"] == "out-of-order"]
    assert (i + 31) in ooo["line"].tolist()
    assert set(ooo["path"]) == {path}


def test_killed_destination_reports_threads_that_never_exited() -> None:
    tr = tracetool.load(sample("qemu-7.2/f3-postcopy-dst-killed", "dst.trace.xz"))
    tl = build_timeline(tr)
    threads = tl.spans[tl.spans["kind"] == "thread"]
    assert set(threads.loc[~threads["closed"], "name"]) == {"listen", "fault"}
    lines = parse_72(sample("qemu-7.2/f3-postcopy-dst-killed", "dst.trace.xz"))
    listen_line = next(n for _, _, ev, _, n in lines if ev == "postcopy_ram_listen_thread_start")
    # killed in postcopy: the threads are open where the trace ends, not an input inconsistency
    assert listen_line in tl.open_at_end["line"].tolist()
    assert not len(tl.issues[tl.issues["kind"] == "unclosed"]) and tl.issue_count == len(tl.issues)


def test_a_span_left_open_in_a_migration_that_completed_is_an_inconsistency(tmp_path: Path) -> None:
    lines = list(read_lines(sample("qemu-7.2/c-postcopy", "dst.trace.xz")))
    gone = next(i for i, raw in enumerate(lines) if b":postcopy_ram_fault_thread_exit" in raw)
    assert any(b"migrate_set_state new state completed" in raw for raw in lines[gone:])
    fault_start = next(i for i, raw in enumerate(lines) if b":postcopy_ram_fault_thread_entry" in raw)
    path = _write_lines(tmp_path / "damaged.trace", lines[:gone] + lines[gone + 1 :])
    tl = build_timeline(tracetool.load(path))
    unclosed = tl.issues[tl.issues["kind"] == "unclosed"]
    assert (fault_start + 1) in unclosed["line"].tolist() and not len(tl.open_at_end)
    assert run_cli("timeline", path, "--strict").returncode == 1


# ------------------------------------------------------------------------------ rules as data
def test_a_new_rule_is_a_data_edit(a72: tracetool.Trace) -> None:
    text = """
[[span]]
kind = "custom"
name = "poll-{command}"
begin_prefix = "qmp_enter_query_mig"
end_prefix = "qmp_exit_query_mig"
scope = "thread"
"""
    tl = build_timeline(a72, parse_rules(text))
    raw = [ev for _, _, ev, _, _ in parse_72(sample("qemu-7.2/a-precopy-plain", "dst.trace.xz"))]
    assert len(tl.spans) == raw.count("qmp_enter_query_migrate") == 23
    assert set(tl.spans["name"]) == {"poll-rate"}  # the suffix after the prefix


def test_unknown_rule_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown settings"):
        parse_rules('[[span]]\nkind="x"\nname="y"\nbegin=["a"]\nend=["b"]\nfrobnicate=1\n')


def test_shipped_rules_load_and_name_every_kind() -> None:
    r = rules()
    assert {s.kind for s in r.spans} >= {"section", "device", "command", "postcopy", "wait", "thread", "qmp"}
    assert {p.name for p in r.phases if p.side == "dst"} >= {"incoming", "precopy", "devices", "switchover"}


def test_select_by_kind_and_role(a72: tracetool.Trace) -> None:
    tl = build_timeline(a72)
    got = select(tl.spans, ["device"], "main")
    assert len(got) == 32 and set(got["kind"]) == {"device"}


def test_timeline_cli_lists_records_filtered_by_kind_and_thread() -> None:
    d = sample("qemu-threadify/e-precopy-mutex/per-thread")
    res = run_cli(
        "timeline",
        d,
        "--threads",
        str(Path(d) / "dst-threads.json"),
        "--kind",
        "device",
        "--kind",
        "checkpoint",
        "--thread",
        "mig/dst/main",
        "--format",
        "json",
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    starts = sum(
        1
        for p in Path(d).glob("dst.*.trace.xz")
        for raw in read_lines(str(p))
        if b" qemu_loadvm_state_section_startfull " in raw
    )
    assert len(doc["spans"]) == starts
    assert {s["thread"] for s in doc["spans"]} == {"mig/dst/main"}
    assert all(isinstance(s["start_ns"], int) and isinstance(s["duration_us"], float) for s in doc["spans"])
    assert [i["name"] for i in doc["instants"]] == ["dst-precopy-loadvm-completed"]


def test_cli_answers_bad_input_flags_it_with_file_and_line_and_fails_only_with_strict(tmp_path: Path) -> None:
    lines = list(read_lines(sample("qemu-7.2/a-precopy-plain", "dst.trace.xz")))
    gone = next(k for k, raw in enumerate(lines) if b":qmp_exit_migrate_incoming " in raw)
    begin = gone - 1  # its qmp_enter_migrate_incoming: a begin whose end was lost
    assert b":qmp_enter_migrate_incoming " in lines[begin]
    lines = lines[:gone] + lines[gone + 1 :]
    i = next(k for k, raw in enumerate(lines) if b"qemu_loadvm_state_section_startfull 9(PCIHost)" in raw)
    lines = lines[:i] + lines[i + 1 : i + 6] + [lines[i]] + lines[i + 6 :]  # 5 lines too late
    path = _write_lines(tmp_path / "bad.trace", lines)
    res = run_cli("timeline", path, "--format", "json")
    assert res.returncode == 0, res.stderr
    issues = json.loads(res.stdout)["issues"]
    where = {(x["kind"], x["path"], x["line"]) for x in issues}
    assert ("unclosed", path, begin + 1) in where
    assert ("out-of-order", path, i + 6) in where
    strict = run_cli("timeline", path, "--strict", "--kind", "qmp")
    assert strict.returncode == 1 and "Traceback" not in strict.stderr
    assert f"{path}:{begin + 1}" in strict.stdout


def _stepping_back_trace(
    path: Path, rng: random.Random, threads: int, lines: int
) -> list[tuple[int, int, int]]:
    """Writes a log trace where now and then a thread's line carries a time earlier than lines
    before it (of any thread, its own included); returns (tid, ts_us, line) per line."""
    out, rows, t = [], [], 1_000_000
    for n in range(1, lines + 1):
        tid = 100 + rng.randrange(threads)
        t += rng.randrange(1, 4)
        ts = t - rng.randrange(1, 60) if rng.random() < 0.03 else t
        sec, usec = divmod(ts, 1_000_000)
        body = f"qemu_mutex_lock waiting on mutex 0x1 (a.c:{n})"
        out.append(f"{tid}@{1795693810 + sec}.{usec:06d}:{body}\n".encode())
        rows.append((tid, ts, n))
    path.write_bytes(b"".join(out))
    return rows


def _back_steps_by_hand(rows: list[tuple[int, int, int]]) -> set[int]:
    """Lines followed, in stable time order, by an earlier line of the same thread."""
    in_time = sorted(rows, key=lambda r: r[1])  # sorted() is stable: equal times keep file order
    last: dict[int, int] = {}
    out = set()
    for tid, _, line in in_time:
        if tid in last and last[tid] > line:
            out.add(last[tid])
        last[tid] = line
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_back_steps_found_near_moved_rows_are_every_back_step(tmp_path: Path, seed: int) -> None:
    # The timeline looks for back-steps only next to the rows the time sort moved; a plain walk
    # of every thread's lines in time order must find the same ones.
    rng = random.Random(seed)
    rows = _stepping_back_trace(tmp_path / "t.trace", rng, threads=5, lines=20_000)
    trace = tracetool.load(str(tmp_path / "t.trace"))
    assert trace.moved_rows is not None and len(trace.moved_rows)
    tl = build_timeline(trace)
    found = set(tl.issues.loc[tl.issues["kind"] == "out-of-order", "line"].tolist())
    want = _back_steps_by_hand(rows)
    assert want and found == want


def test_back_steps_of_two_inputs_are_found_per_input(tmp_path: Path) -> None:
    rng = random.Random(7)
    a = _stepping_back_trace(tmp_path / "a.trace", rng, threads=3, lines=8_000)
    b = _stepping_back_trace(tmp_path / "b.trace", rng, threads=3, lines=8_000)
    tl = build_timeline(tracetool.load([str(tmp_path / "a.trace"), str(tmp_path / "b.trace")]))
    issues = tl.issues[tl.issues["kind"] == "out-of-order"]
    for name, rows in (("a.trace", a), ("b.trace", b)):
        mine = issues[issues["path"].str.endswith(name)]
        assert set(mine["line"].tolist()) == _back_steps_by_hand(rows)
