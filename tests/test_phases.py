"""Incoming phases on the real sample traces, checked against QEMU's own query-migrate results
and against plain walks over the trace lines."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

import tracetool
from reports.console import console
from reports.phases import render_phases_text
from reports.timezero import TimeZero
from tests.conftest import SAMPLES, read_lines, run_cli, sample, title_line
from tests.test_merge import capture
from tracetool._analyses.multifd import multifd_recv
from tracetool._analyses.phases import PhaseReport, analyze_phases
from tracetool._model.querymigrate import QueryMigrate, load_query_migrate

LINE_72 = re.compile(rb"^(\d+)@(\d+)\.(\d{6}):(\w+) ?(.*)$")

# Every sample run: its folder, the trace inputs (per-thread runs are folders), whether the
# source trace is there.
CASES = {
    "7.2/a-precopy": ("qemu-7.2/a-precopy-plain", ["dst.trace.xz", "src.trace.xz"]),
    "7.2/c-postcopy": ("qemu-7.2/c-postcopy", ["dst.trace.xz"]),
    "7.2/d-preempt": ("qemu-7.2/d-postcopy-preempt", ["dst.trace.xz"]),
    "7.2/e-precopy": ("qemu-7.2/e-precopy-mutex", ["dst.trace.xz", "src.trace.xz"]),
    "7.2/f3-killed": ("qemu-7.2/f3-postcopy-dst-killed", ["dst.trace.xz"]),
    "7.2/g-notime": ("qemu-7.2/g-precopy-plain-notimestamp", ["dst.trace.xz", "src.trace.xz"]),
    "thr/d-preempt": ("qemu-threadify/d-postcopy-preempt", ["dst.trace.xz", "src.trace.xz"]),
    "thr/d-preempt-tids": ("qemu-threadify/d-postcopy-preempt/per-thread", ["."]),
    "thr/e-precopy": ("qemu-threadify/e-precopy-mutex", ["dst.trace.xz", "src.trace.xz"]),
    "thr/e-precopy-tids": ("qemu-threadify/e-precopy-mutex/per-thread", ["."]),
}


@cache
def report(case: str) -> tuple[PhaseReport, QueryMigrate]:
    folder, inputs = CASES[case]
    base = SAMPLES / folder
    paths = [str(base / i) for i in inputs]
    # the sidecars of the processes traced (a src-threads.json next to a dst trace alone
    # describes a process that is not in the trace, and is refused)
    sidecars = sorted(
        str(p)
        for p in base.glob("*-threads.json")
        if inputs == ["."] or any(i.startswith(p.name.split("-")[0]) for i in inputs)
    )
    query = load_query_migrate(str(base / "query-migrate.json"))
    return analyze_phases(tracetool.load(paths, threads=sidecars), query), query


def phase(r: PhaseReport, name: str) -> dict:
    hit = [p for p in r.to_json()["phases"] if p["name"] == name]
    assert hit, f"no phase {name}"
    return hit[0]


# ------------------------------------------------------------------------------ load thread
@pytest.mark.parametrize("case", ["thr/e-precopy-tids", "thr/d-preempt-tids"])
def test_threaded_load_runs_on_mig_dst_main(case: str) -> None:
    folder = SAMPLES / CASES[case][0]
    # the per-thread file that holds loadvm_state_setup is named after the thread that ran it
    owner = [
        int(p.name.split(".")[1])
        for p in folder.glob("dst.*.trace.xz")
        if any(b"loadvm_state_setup" in raw for raw in read_lines(str(p)))
    ]
    names = json.loads((folder / "dst-threads.json").read_text())["tid_to_name"]
    r, _ = report(case)
    assert r.load_thread["tid"] == owner[0]
    assert r.load_thread["name"] == names[str(owner[0])] == "mig/dst/main"
    assert phase(r, "precopy")["tid"] == owner[0]
    assert phase(r, "accept")["tid"] != owner[0]  # the main loop accepts the channel


@pytest.mark.parametrize("case", ["7.2/a-precopy", "7.2/c-postcopy", "7.2/d-preempt", "7.2/e-precopy"])
def test_72_load_runs_on_the_main_thread(case: str) -> None:
    folder = SAMPLES / CASES[case][0]
    pid = json.loads((folder / "dst-threads.json").read_text())["pid"]  # main thread: TID == PID
    r, _ = report(case)
    assert r.load_thread["tid"] == pid
    assert phase(r, "precopy")["tid"] == pid


def test_without_thread_ids_the_load_thread_is_inferred_from_the_end_event() -> None:
    r, _ = report("thr/e-precopy")
    assert r.load_thread == {"tid": None, "name": "mig/dst/main", "role": "load", "inferred": True}


# ------------------------------------------------------------------------------ vs QEMU
@pytest.mark.parametrize("case", sorted(CASES))
def test_outcome_agrees_with_query_migrate(case: str) -> None:
    r, q = report(case)
    # QEMU's destination status is its last successful poll; when the destination died
    # (f3) that poll says postcopy-active and the trace simply stops, so the source's final
    # status decides: postcopy-paused (the postcopy channel broke) is "paused".
    final = {"completed", "failed", "cancelled"}
    from_source = {"failed": "failed", "postcopy-paused": "paused"}
    if q.status("dst") in final:
        expected = q.status("dst")
    else:
        expected = from_source.get(q.status("src") or "", "incomplete")
    assert r.outcome == expected
    assert r.qemu_status is not None and r.qemu_status["agrees"] is True
    if case == "7.2/f3-killed":
        assert q.status("src") == "postcopy-paused"
        assert any(
            n.startswith("incomplete: the trace ends while the incoming migration is 'postcopy-active'")
            for n in r.notes
        )


@pytest.mark.parametrize(
    "case",
    [
        "7.2/a-precopy",
        "7.2/e-precopy",
        "thr/d-preempt",
        "thr/d-preempt-tids",
        "thr/e-precopy",
        "thr/e-precopy-tids",
    ],
)
def test_source_total_time_and_downtime_match_qemu(case: str) -> None:
    """QEMU reports whole milliseconds from its own clock reads, taken within microseconds of
    the trace events that bound our phases (migrate command -> completed; VM stop /
    src-downtime-start -> src-downtime-end / completed). The difference of two truncated ms
    readings is within 1 ms of the exact interval; 50 µs more for the gap between a traced
    event and QEMU's clock read next to it. (Sub-ms boundaries are checked against the raw
    lines in test_merge.)"""
    r, q = report(case)
    assert q.total_time_ms is not None and q.downtime_ms is not None
    assert abs(r.total_time["src_us"] / 1000 - q.total_time_ms) < 1.05
    assert abs(r.downtime["src_us"] / 1000 - q.downtime_ms) < 1.05
    assert r.downtime["qemu_reported_ms"] == q.downtime_ms


@pytest.mark.parametrize("case", sorted(set(CASES) - {"7.2/f3-killed", "7.2/g-notime"}))
def test_destination_total_time_is_bounded_by_what_the_trace_can_see(case: str) -> None:
    """The destination sees the migration from the first accepted connection to its own
    completion. It starts after the source's migrate command by the source's connect (at most
    setup-time plus 2 ms of trace/clock rounding) and ends after the source completes by at
    most the switchover it still has to load (its own switchover phase plus 2 ms)."""
    r, q = report(case)
    dst_ms = r.total_time["dst_us"] / 1000
    slack = phase(r, "switchover")["duration_us"] / 1000
    assert q.setup_time_ms is not None and q.total_time_ms is not None
    assert -(q.setup_time_ms + 2) <= dst_ms - q.total_time_ms <= slack + 2


@pytest.mark.parametrize("case", [c for c in CASES if c not in ("7.2/f3-killed",)])
def test_ram_pages_equal_qemus_counters(case: str) -> None:
    r, q = report(case)
    ram = (q.src or {})["ram"]
    assert r.ram["normal_pages"] == ram["normal"]
    assert r.ram["zero_pages"] == ram["duplicate"]
    assert r.ram["bytes"] == ram["normal"] * ram["page-size"]


# ------------------------------------------------------------------------------ devices
def plain_device_durations(path: str) -> list[tuple[str, int, float]]:
    """Walks the lines in order: each startfull ends at the next section event (or the end of
    the RAM loader / of the load) on the same thread. Returns (idstr, instance, µs)."""
    lines = [m for m in map(LINE_72.match, read_lines(path)) if m]
    enders = {b"qemu_loadvm_state_section", b"qemu_loadvm_state_post_main", b"ram_load_complete"}
    out = []
    for i, m in enumerate(lines):
        if m[4] != b"qemu_loadvm_state_section_startfull":
            continue
        idstr, rest = m[5].split(b"(", 1)[1].split(b")", 1)
        start = int(m[2]) * 1_000_000 + int(m[3])
        end = next(x for x in lines[i + 1 :] if x[1] == m[1] and x[4] in enders)
        stop = int(end[2]) * 1_000_000 + int(end[3])
        out.append((idstr.decode(), int(rest.split()[0]), float(stop - start)))
    return out


@pytest.mark.parametrize("case", ["7.2/a-precopy", "7.2/f3-killed"])
def test_device_durations_equal_a_plain_walk(case: str) -> None:
    r, _ = report(case)
    expected = plain_device_durations(str(SAMPLES / CASES[case][0] / "dst.trace.xz"))
    got = [(d["idstr"], d["instance_id"], d["duration_us"]) for d in r.to_json()["devices"]]
    assert len(got) == 32
    assert got == expected


@pytest.mark.parametrize("case", ["thr/e-precopy", "thr/e-precopy-tids", "thr/d-preempt"])
def test_device_spans_enclose_qemus_own_load_time(case: str) -> None:
    # vmstate_downtime_load is QEMU's clock around the device's load; our span runs from the
    # section header to that event, so it can only be longer (1 µs: the trace's resolution).
    r, _ = report(case)
    full = [d for d in r.to_json()["devices"] if d["section_type"] == "FULL"]
    assert full and all(d["downtime_us"] is not None for d in full)
    assert all(d["duration_us"] >= d["downtime_us"] - 1 for d in full)


# ------------------------------------------------------------------------------ postcopy
@pytest.mark.parametrize("case", ["7.2/c-postcopy", "7.2/d-preempt", "thr/d-preempt", "thr/d-preempt-tids"])
def test_postcopy_runs_show_listen_package_and_run(case: str) -> None:
    r, _ = report(case)
    names = [p["name"] for p in r.to_json()["phases"]]
    for want in (
        "postcopy-advise",
        "postcopy-discard",
        "postcopy-package",
        "postcopy-listen",
        "postcopy-run",
        "postcopy",
    ):
        assert want in names
    assert "vm-start" not in names  # the RUN command starts the VM, not the end of the load
    assert phase(r, "postcopy")["role"] == "listen"


def test_precopy_phases_come_in_order() -> None:
    r, _ = report("thr/e-precopy-tids")
    starts = {p["name"]: p["start_ns"] for p in r.to_json()["phases"]}
    order = ["accept", "setup", "precopy", "switchover", "devices", "vm-start"]
    assert [starts[n] for n in order] == sorted(starts[n] for n in order)


def test_checkpoints_of_a_threaded_run_are_listed() -> None:
    r, _ = report("thr/e-precopy-tids")
    cps = r.to_json()["checkpoints"]
    assert [c["name"] for c in cps if c["process"] == "dst"] == [
        "dst-precopy-loadvm-completed",
        "dst-precopy-bh-enter",
        "dst-precopy-bh-announced",
        "dst-precopy-bh-vm-started",
    ]
    # the load thread completes the load; the bottom halves run on the main thread
    by_name = {c["name"]: c["thread"] for c in cps}
    assert by_name["dst-precopy-loadvm-completed"] == "mig/dst/main"
    assert by_name["dst-precopy-bh-enter"] != "mig/dst/main"


# ------------------------------------------------------------------------------ bad input, CLI
def test_cut_trace_is_incomplete_and_its_open_spans_are_the_end_of_the_trace(tmp_path: Path) -> None:
    lines = list(read_lines(sample("qemu-7.2/a-precopy-plain", "dst.trace.xz")))
    cut = lines[: len(lines) // 2]
    path = tmp_path / "cut.trace"
    path.write_bytes(b"\n".join(cut) + b"\n")
    res = run_cli("phases", str(path), "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["outcome"] == "incomplete"
    note = next(n for n in doc["notes"] if n.startswith("incomplete"))
    assert f"{path}:{len(cut)}" in note and "'active'" in note
    # spans open where a migration that never finished ends: the trace's end, not bad input
    assert "unclosed" not in doc["issue_counts"]
    assert any("'incoming'" in o["message"] for o in doc["open_at_end"])
    strict = run_cli("phases", str(path), "--strict")
    assert strict.returncode == 0, strict.stderr
    assert "the trace ends while" in strict.stdout and "killed or its trace cut" in strict.stdout
    assert "inconsistent input" not in strict.stdout
    assert "Traceback" not in strict.stderr + res.stderr


def test_trace_cut_before_the_migration_started(tmp_path: Path) -> None:
    lines = list(read_lines(sample("qemu-7.2/a-precopy-plain", "dst.trace.xz")))
    first_state = next(i for i, raw in enumerate(lines) if b":migrate_set_state " in raw)
    path = tmp_path / "early.trace"
    path.write_bytes(b"\n".join(lines[:first_state]) + b"\n")
    r = analyze_phases(tracetool.load(str(path)))
    assert r.outcome == "incomplete"
    assert any("incoming migration is not yet started" in n for n in r.notes)


def test_phases_json_document_keys_and_types() -> None:
    # the document the CLI prints (test_cut_trace_... runs the CLI itself), as JSON sees it
    doc = json.loads(json.dumps(report("7.2/a-precopy")[0].to_json(), allow_nan=False))
    assert {
        "phases",
        "devices",
        "load_thread",
        "outcome",
        "ram",
        "checkpoints",
        "multifd",
        "notes",
        "downtime",
    } <= set(doc)
    for p in doc["phases"]:
        assert set(p) == {"name", "tid", "thread", "role", "start_ns", "end_ns", "duration_us", "closed"}
        assert isinstance(p["start_ns"], int) and isinstance(p["duration_us"], float)
    for dev in doc["devices"]:
        want = {"idstr", "instance_id", "section_id", "tid", "thread", "duration_us", "downtime_us"}
        assert want <= set(dev)
    assert {"tid", "name"} <= set(doc["load_thread"])
    assert set(doc["ram"]["sections"]) == {"start", "part", "end", "full", "command"}
    assert {"src_us", "dst_us", "qemu_reported_ms", "method"} <= set(doc["downtime"])
    assert doc["downtime"]["method"] == "same-clock"


def test_text_output_is_a_readable_table() -> None:
    r, _ = report("7.2/a-precopy")
    buf = io.StringIO()
    trace = tracetool.load(sample("qemu-7.2/a-precopy-plain", "dst.trace.xz"))
    zero = TimeZero.of(trace)
    render_phases_text(r.to_json(), console(buf), zero)
    text = buf.getvalue()
    assert text.splitlines()[0].startswith("Incoming migration (dst): completed")
    # times are seconds since the trace's first event, which the header names
    assert text.splitlines()[1] == zero.header() and "2026-" in zero.header()
    first_phase = r.phases.sort_values("start_ns").iloc[0]
    assert f"{(int(first_phase['start_ns']) - int(trace.ts.min())) / 1e9:.6f}" in text
    assert "Device state loads (32)" in text and "116 ms" in text  # QEMU's downtime beside ours


def test_a_source_only_trace_says_there_is_nothing_to_cut() -> None:
    tr = tracetool.load(sample("qemu-7.2/a-precopy-plain", "src.trace.xz"))
    r = analyze_phases(tr)
    assert r.process is None and len(r.phases) == 0
    assert any("no destination" in n for n in r.notes)


# ------------------------------------------------------------------------------ multifd
def test_multifd_absent_says_how_to_enable_it() -> None:
    r, _ = report("7.2/a-precopy")
    assert r.multifd.present is False
    assert "enable multifd_*" in r.multifd.note


def synth_multifd(path: Path, channels: int, packets: int, pages: int, packet_events: bool = True) -> None:
    """A destination log shaped like QEMU 7.2's multifd receive side (edge cases only; the
    real thing is checked by test_multifd_of_a_real_capture). Each channel ends with QEMU's
    own totals, which count the handshake packet too."""
    t = 1_700_000_000_000_000
    out = []

    def line(tid: int, body: str) -> None:
        nonlocal t
        t += 7
        out.append(f"{tid}@{t // 1_000_000}.{t % 1_000_000:06d}:{body}")

    line(100, "migration_set_incoming_channel ioc=0x1 ioctype=qio-channel-socket")
    for c in range(channels):
        line(200 + c, f"multifd_recv_thread_start {c}")
    for k in range(packets):
        for c in range(channels):
            if packet_events:
                line(
                    200 + c,
                    f"multifd_recv channel {c} packet_num {k} pages {pages} flags 0x0 next packet size 0",
                )
        for c in range(channels):
            line(100, f"multifd_recv_sync_main_wait channel {c}")
        line(100, f"multifd_recv_sync_main packet num {k}")
    for c in range(channels):
        line(200 + c, f"multifd_recv_thread_end channel {c} packets {packets + 1} pages {packets * pages}")
    path.write_text("\n".join(out) + "\n")


def test_multifd_channels_count_packets_pages_and_sync_waits(tmp_path: Path) -> None:
    synth_multifd(tmp_path / "mf.trace", channels=3, packets=5, pages=16)
    got = multifd_recv(tracetool.load(str(tmp_path / "mf.trace"))).to_json()
    assert got["present"] is True
    # traced packets, not traced packets plus QEMU's end-of-thread total
    assert [(c["id"], c["tid"], c["packets"], c["pages"], c["packets_from"]) for c in got["channels"]] == [
        (0, 200, 5, 80, "events"),
        (1, 201, 5, 80, "events"),
        (2, 202, 5, 80, "events"),
    ]
    assert got["sync"]["count"] == 5
    # each sync waits from the first channel's wait line to the sync line: 3 lines, 7 µs apart
    assert got["sync"]["max_us"] == 21.0


def test_multifd_without_packet_events_takes_qemus_totals(tmp_path: Path) -> None:
    synth_multifd(tmp_path / "mf.trace", channels=2, packets=4, pages=8, packet_events=False)
    got = multifd_recv(tracetool.load(str(tmp_path / "mf.trace"))).to_json()
    assert [(c["id"], c["tid"], c["packets"], c["pages"], c["packets_from"]) for c in got["channels"]] == [
        (0, 200, 5, 32, "thread_end"),
        (1, 201, 5, 32, "thread_end"),
    ]


@pytest.mark.qemu
def test_multifd_of_a_real_capture(tmp_path: Path) -> None:
    run = capture(tmp_path / "multifd", "multifd")
    path = str(run / "dst.trace")
    # Read plainly: traced packets per channel, and QEMU's own page total when each thread ends.
    packets: Counter[int] = Counter()
    qemu_pages: dict[int, int] = {}
    for raw in read_lines(path):
        m = re.search(rb":multifd_recv channel (\d+) ", raw)
        if m:
            packets[int(m[1])] += 1
        m = re.search(rb":multifd_recv_thread_end channel (\d+) packets \d+ pages (\d+)", raw)
        if m:
            qemu_pages[int(m[1])] = int(m[2])
    assert len(packets) >= 2 and set(qemu_pages) == set(packets)
    names = json.loads((run / "dst-threads.json").read_text())["tid_to_name"]
    r = analyze_phases(tracetool.load(path, threads=[str(run / "dst-threads.json")]))
    got = r.multifd.channels
    assert [(c["id"], c["packets"], c["pages"]) for c in got] == [
        (i, packets[i], qemu_pages[i]) for i in sorted(packets)
    ]
    assert all(names[str(c["tid"])] == f"multifdrecv_{c['id']}" for c in got)
    assert r.multifd.sync["count"] > 0 and r.outcome == "completed"


def test_a_trace_without_timestamps_has_phases_but_null_times() -> None:
    doc = report("7.2/g-notime")[0].to_json()
    assert doc["outcome"] == "completed" and doc["phases"] and doc["devices"]
    for rec in doc["phases"] + doc["devices"]:
        assert rec["start_ns"] is None and rec["duration_us"] is None
    assert all(rec["end_ns"] is None for rec in doc["phases"])
    json.dumps(doc, allow_nan=False)


# ------------------------------------------------------------------ device table in text
@pytest.mark.parametrize("run", ["qemu-7.2/a-precopy-plain", "qemu-threadify/e-precopy-mutex"])
def test_qemu_downtime_column_is_shown_only_where_the_trace_has_it(run: str) -> None:
    path = sample(run, "dst.trace.xz")
    in_trace = any(b"vmstate_downtime_load" in line for line in read_lines(path))
    out = run_cli("phases", path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = lines[title_line(lines, "Device state loads") + 2]
    assert header.split()[0] == "idstr"
    assert ("QEMU downtime" in header) is in_trace
    assert ("QEMU downtime per device: not in this trace" in out.stdout) is not in_trace


def test_a_narrow_terminal_keeps_the_end_of_device_names(monkeypatch: pytest.MonkeyPatch) -> None:
    trace = tracetool.load(sample("qemu-7.2/a-precopy-plain", "dst.trace.xz"))
    doc = analyze_phases(trace).to_json()
    names = [str(d["idstr"]) for d in doc["devices"]]
    monkeypatch.setenv("COLUMNS", "64")
    buf = io.StringIO()
    render_phases_text(doc, console(buf), TimeZero.of(trace))
    lines = buf.getvalue().splitlines()
    start = title_line(lines, "Device state loads") + 4
    rows = lines[start : start + len(names)]
    assert all(len(x.rstrip()) <= 64 for x in rows)
    shown = [x.split()[0] for x in rows]
    assert any(s.startswith("…") for s in shown), "64 columns should shorten the longest names"
    for s, name in zip(shown, names, strict=True):
        assert s == name or (s.startswith("…") and name.endswith(s[1:])), (s, name)


@pytest.mark.parametrize("inputs", ["dst.trace.xz", "per-thread"])
def test_thread_columns_are_left_out_only_when_no_row_knows_its_thread(inputs: str) -> None:
    path = sample("qemu-threadify/e-precopy-mutex", inputs)
    # one log file: QEMU 10.1 lines carry no thread id; per-thread files name it (dst.TID.trace)
    with_tids = Path(path).is_dir()
    for command in ("phases", "report"):
        out = run_cli(command, path)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        for title in ("Phases", "Device state loads"):
            at = title_line(lines, title)
            assert ("thread" in lines[at + 2].split()) is with_tids, (command, title)


CANCEL_72 = "qemu-7.2/h-cancel"


def test_spans_left_open_by_a_cancelled_migration_are_not_inconsistencies() -> None:
    # Real: migrate_cancel during precopy; QEMU's error paths skip the ends of the open phases.
    last: dict[str, tuple[str, int]] = {}
    for side in ("src", "dst"):
        for n, line in enumerate(read_lines(sample(CANCEL_72, f"{side}.trace.xz")), 1):
            m = re.search(rb":migrate_set_state new state (\w+)", line)
            if m:
                last[side] = (m[1].decode(), n)
    assert last["src"][0] == "cancelled" and last["dst"][0] == "failed"
    doc = json.loads(run_cli("phases", sample(CANCEL_72), "--format", "json").stdout)
    assert "unclosed" not in doc["issue_counts"]
    assert {Path(o["path"]).name.split(".")[0] for o in doc["open_at_end"]} == {"src", "dst"}
    for o in doc["open_at_end"]:
        state, line = last[Path(o["path"]).name.split(".")[0]]
        assert o["line"] < line and o["message"].endswith(f"(the migration ended '{state}')"), o
