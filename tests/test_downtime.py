"""The downtime analysis on real traces: the pause end to end against a plain reading of the
trace lines, the critical path tiling it, QEMU's figure against query-migrate.json, and the
per-device save/load times against a plain pairing of the vmstate_downtime_save/_load lines."""

from __future__ import annotations

import itertools
import json
import os
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import tracetool
from tests.conftest import REPO, read_lines, run_cli, sample, title_line
from tracetool._analyses.downtime.critical import critical_path
from tracetool._analyses.downtime.explain import duration
from tracetool._analyses.downtime.result import DowntimeReport
from tracetool._analyses.downtime.steps import MIN_GAP_NS, Step

THREADIFY_E = "qemu-threadify/e-precopy-mutex"
THREADIFY_D = "qemu-threadify/d-postcopy-preempt"
QEMU72_A = "qemu-7.2/a-precopy-plain"
QEMU72_E = "qemu-7.2/e-precopy-mutex"
BOTH_SIDES = (THREADIFY_E, THREADIFY_D, QEMU72_A, QEMU72_E)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def shared_traces() -> Path | None:
    """The shared real traces (beside the repository in CI, or /work/shared), if present."""
    for p in (
        os.environ.get("MIGTRACE_SHARED_TRACES"),
        REPO.parent / "shared" / "traces",
        "/work/shared/traces",
    ):
        if p and Path(p).is_dir():
            return Path(p)
    return None


# ---------------------------------------------------------------------------------- plain reading
def plain_events(path: str) -> list[tuple[int, str, str]]:
    """(time in ns, event, arguments) of every line of a log-backend trace, read with two
    regular expressions and no migtrace code."""
    out = []
    iso = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z (\w+) ?(.*)$")
    old = re.compile(rb"^\d+@(\d+)\.(\d{6}):(\w+) ?(.*)$")
    for line in read_lines(path):
        m = iso.match(line)
        if m:
            dt = datetime.fromisoformat(m[1].decode() + "+00:00")
            us = (dt - _EPOCH) // timedelta(microseconds=1)
            out.append((us * 1000, m[2].decode(), m[3].decode()))
            continue
        m = old.match(line)
        if m:
            out.append(((int(m[1]) * 1_000_000 + int(m[2])) * 1000, m[3].decode(), m[4].decode()))
    return out


@cache
def plain_window(folder: str, root: str = "") -> tuple[int, int, int]:
    """(source stop, source done, destination running) in ns, from the trace lines."""
    base = Path(root) if root else Path(sample(folder))
    src = plain_events(str(next(base.glob("src.trace*"))))
    dst = plain_events(str(next(base.glob("dst.trace*"))))
    checkpoint = [t for t, e, a in src if e == "vmstate_downtime_checkpoint" and a == "src-downtime-start"]
    stop = checkpoint or [t for t, e, a in src if e == "runstate_set" and a.endswith("(finish-migrate)")]
    start = stop[0]
    done_cp = [t for t, e, a in src if e == "vmstate_downtime_checkpoint" and a == "src-downtime-end"]
    done = done_cp or [
        t
        for t, e, a in src
        if t >= start and (a == "new state completed" or e == "qemu_savevm_send_packaged")
    ]
    run = [
        t
        for t, e, a in dst
        if e == "runstate_set" and "(inmigrate)" in a and a.endswith("(running)") and t > start
    ]
    return start, done[0], run[0]


def plain_device_times(folder: str, event: str, side: str) -> dict[tuple[str, str, int], float]:
    """QEMU's own per-device time (µs) of each save (source) or load (destination) inside the
    pause, keyed by (type, idstr, instance_id), from the trace lines."""
    start, done, end = plain_window(folder)
    last = done if side == "src" else end
    out: dict[tuple[str, str, int], float] = {}
    pat = re.compile(r"type=(\S+) idstr=(\S+) instance_id=(\d+) downtime=(\d+)")
    for t, e, a in plain_events(sample(folder, f"{side}.trace.xz")):
        m = pat.match(a)
        if e == event and m and start <= t <= last:
            key = (m[1], m[2], int(m[3]))
            out[key] = out.get(key, 0.0) + float(m[4])
    return out


# ---------------------------------------------------------------------------------- analysis
@cache
def loaded(folder: str, root: str = "") -> tracetool.Trace:
    base = Path(root) if root else Path(sample(folder))
    files = sorted(str(p) for p in base.glob("*.trace*") if p.name.split(".")[0] in ("src", "dst"))
    threads = sorted(str(p) for p in base.glob("*-threads.json"))
    return tracetool.load(files, threads=threads)


@cache
def analysed(folder: str, root: str = "") -> DowntimeReport:
    return tracetool.run_analysis(loaded(folder, root), "downtime")


def query_downtime_us(folder: str, root: str = "") -> float:
    base = Path(root) if root else Path(sample(folder))
    q = json.loads((base / "query-migrate.json").read_text())
    src = q.get("src") or q.get("source")
    return float(src["downtime"]) * 1000.0


def assert_tiles(r: DowntimeReport) -> None:
    doc = r.to_json()
    path = doc["critical_path"]
    assert path, doc["notes"]
    assert path[0]["start_ns"] == doc["start"]["ns"]
    assert path[-1]["end_ns"] == doc["end"]["ns"]
    for a, b in itertools.pairwise(path):
        assert a["end_ns"] == b["start_ns"], (a, b)
        assert a["end_ns"] > a["start_ns"]
    assert sum(s["us"] for s in path) == pytest.approx(doc["end_to_end_us"], abs=1e-6)
    assert {s["side"] for s in path} <= {"src", "dst", "wire"}


@pytest.mark.parametrize("folder", BOTH_SIDES)
def test_the_critical_path_tiles_the_pause_exactly(folder: str) -> None:
    assert_tiles(analysed(folder))


@pytest.mark.parametrize("folder", BOTH_SIDES)
def test_end_to_end_equals_a_plain_reading_of_the_lines(folder: str) -> None:
    start, _, end = plain_window(folder)
    r = analysed(folder)
    assert r.end_to_end_us == (end - start) / 1000.0
    assert r.start is not None and r.start["ns"] == start
    assert r.end is not None and r.end["ns"] == end


@pytest.mark.parametrize("folder", BOTH_SIDES)
def test_reported_equals_query_migrate(folder: str) -> None:
    # From the query-migrate replies the source's trace shows...
    r = analysed(folder)
    assert r.reported_from == "trace"
    assert r.reported_us == query_downtime_us(folder)
    # ...and from the file, when it is given.
    q = tracetool.load_query_migrate(sample(folder, "query-migrate.json"))
    given = tracetool.analyze_downtime(loaded(folder), q)
    assert given.reported_from == "query-migrate" and given.reported_us == query_downtime_us(folder)


def test_qemus_zeros_are_not_reported_as_its_downtime() -> None:
    # The 7.2 COLO run: QEMU's last query-migrate answer (in the source's trace and in the
    # file) says completed with downtime 0 and total-time 0, figures it never worked out.
    colo = "qemu-7.2-colo/b-colo-periodic-mutex"
    replies = [a for _, e, a in plain_events(sample(colo, "src.trace.xz")) if e == "qmp_exit_query_migrate"]
    assert '"downtime": 0, "total-time": 0' in [r for r in replies if '"completed"' in r][-1]
    q = tracetool.load_query_migrate(sample(colo, "query-migrate.json"))
    for given in (None, q):
        r = tracetool.analyze_downtime(loaded(colo), given)
        assert r.reported_us is None and r.reported_from is None
        assert any("total-time 0" in n for n in r.notes), r.notes
        assert r.switchover["qemu_reported_ms"] is None


@pytest.mark.parametrize("folder", (THREADIFY_E, THREADIFY_D))
def test_device_times_equal_a_plain_pairing_of_the_save_and_load_lines(folder: str) -> None:
    saves = plain_device_times(folder, "vmstate_downtime_save", "src")
    loads = plain_device_times(folder, "vmstate_downtime_load", "dst")
    rows = {(d["type"], d["device"], d["instance_id"] or 0): d for d in analysed(folder).by_device}
    assert saves and loads
    assert {k: d["save_us"] for k, d in rows.items() if d["save_us"] is not None} == saves
    assert {k: d["load_us"] for k, d in rows.items() if d["load_us"] is not None} == loads


@pytest.mark.parametrize("folder", (THREADIFY_E, THREADIFY_D))
def test_loads_after_the_source_was_done_are_all_on_the_critical_path(folder: str) -> None:
    # Once the source has sent everything, the guest waits for every load still to come.
    _, done, _ = plain_window(folder)
    late = set()
    pat = re.compile(r"type=(\S+) idstr=(\S+) instance_id=(\d+)")
    start = plain_window(folder)[0]
    for t, e, a in plain_events(sample(folder, "dst.trace.xz")):
        m = pat.match(a)
        if e == "vmstate_downtime_load" and m and done < t <= plain_window(folder)[2] and t > start:
            late.add((m[1], m[2], int(m[3])))
    assert late
    rows = {(d["type"], d["device"], d["instance_id"] or 0): d for d in analysed(folder).by_device}
    assert all(rows[k]["critical"] for k in late), [k for k in late if not rows[k]["critical"]]


@pytest.mark.parametrize("folder", (QEMU72_A, QEMU72_E))
def test_qemu_72_sections_loaded_after_the_source_was_done_are_on_the_critical_path(folder: str) -> None:
    # Before 8.2 the devices are the destination's FULL sections: `qemu_loadvm_state_section_
    # startfull SECTION(IDSTR) INSTANCE VERSION`. Each one started after the source was done is
    # waited for by the guest: its row is on the critical path, by its own section.
    _, done, end = plain_window(folder)
    pat = re.compile(r"(\d+)\((.+)\) (\d+) \d+$")
    late = {}
    for t, e, a in plain_events(sample(folder, "dst.trace.xz")):
        m = pat.match(a)
        if e == "qemu_loadvm_state_section_startfull" and m and done < t <= end:
            late[int(m[1])] = (m[2], int(m[3]))
    assert len(late) > 10
    rows = {d["section_id"]: d for d in analysed(folder).by_device}
    for section, (idstr, instance) in late.items():
        row = rows[section]
        assert (row["device"], row["instance_id"], row["type"]) == (idstr, instance, "non-iterable")
        assert row["critical"] and row["critical_us"] > 0, row


@pytest.mark.parametrize("folder", BOTH_SIDES)
def test_each_save_and_load_on_the_critical_path_is_credited_to_one_device(folder: str) -> None:
    r = analysed(folder)
    work = [s for s in r.critical_path if s["step"] in ("save", "load")]
    assert work
    credited = sum(d["critical_us"] for d in r.by_device)
    assert credited == pytest.approx(sum(s["us"] for s in work), abs=1e-6)
    if r.built_from == "sections":
        by_section: dict[int, float] = {}
        for s in work:
            by_section[s["section_id"]] = by_section.get(s["section_id"], 0.0) + s["us"]
        rows = {d["section_id"]: d for d in r.by_device}
        assert {k: rows[k]["critical_us"] for k in by_section} == pytest.approx(by_section)


def test_postcopy_path_runs_from_the_source_through_the_package_to_the_destination() -> None:
    path = analysed(THREADIFY_D).critical_path
    sides = [s["side"] for s in path]
    # The source never waits for the destination: one crossing, source first.
    assert sides == sorted(sides, key=lambda s: {"src": 0, "wire": 1, "dst": 2}[s])
    steps = [(s["side"], s["step"]) for s in path]
    assert ("src", "send package") in steps and ("dst", "receive package") in steps
    assert ("dst", "postcopy listen") in steps


def test_bql_time_of_the_destination_loads_comes_from_the_mutex_events() -> None:
    path = analysed(THREADIFY_E).critical_path
    loads = [s for s in path if s["side"] == "dst" and s["step"] == "load" and s["kind"] == "non-iterable"]
    assert loads and all(s["bql_us"] is not None and 0 <= s["bql_us"] <= s["us"] + 1e-6 for s in loads)
    # mig/dst/main takes the BQL around every FULL section (docs/qemu-notes.md).
    assert sum(s["bql_us"] for s in loads) > 0.9 * sum(s["us"] for s in loads)
    assert all(s["bql_us"] is None for s in analysed(THREADIFY_D).critical_path)


@pytest.mark.parametrize("folder", (QEMU72_A, QEMU72_E))
def test_qemu_72_path_is_built_from_sections_and_says_so(folder: str) -> None:
    r = analysed(folder)
    assert r.built_from == "sections"
    assert any("QEMU < 8.2" in n for n in r.notes)
    assert any(s["step"] == "save" and s["device"] == "ram" for s in r.critical_path)


def test_killed_destination_has_no_end_to_end_and_says_why() -> None:
    t = tracetool.load([sample("qemu-7.2/f3-postcopy-dst-killed/dst.trace.xz")])
    r = tracetool.analyze_downtime(t)
    assert r.end_to_end_us is None and r.to_json()["end_to_end_us"] is None
    assert any("did not complete" in n and "postcopy-active" in n for n in r.notes)
    assert any("no source process" in n for n in r.notes)


def test_destination_that_never_ran_has_no_end_to_end(tmp_path: Path) -> None:
    # The real 7.2 destination, cut just before it starts the VM (as if killed there).
    cut = tmp_path / "dst.trace"
    with cut.open("wb") as f:
        for line in read_lines(sample(QEMU72_A, "dst.trace.xz")):
            if b"runstate_set" in line and b"(inmigrate)" in line:
                break
            f.write(line + b"\n")
    t = tracetool.load([sample(QEMU72_A, "src.trace.xz"), str(cut)])
    r = tracetool.analyze_downtime(t)
    assert r.end_to_end_us is None and r.critical_path == []
    assert any("never started the VM" in n for n in r.notes)
    assert r.start is not None and r.reported_us == query_downtime_us(QEMU72_A)


def test_clocks_aligned_by_wire_events_carry_their_uncertainty() -> None:
    # The destination's simple backend (monotonic clock) against the source's log file (wall
    # clock): only the wire events put them on one axis.
    t = tracetool.load([sample(THREADIFY_D, "src.trace.xz"), sample(THREADIFY_D, "dst.simple.xz")])
    r = tracetool.analyze_downtime(t)
    assert r.alignment["method"] == "wire-events"
    u = r.alignment["uncertainty_us"]
    assert u is not None and u > 0
    assert_tiles(r)
    assert all(s["us"] < u for s in r.critical_path if s["uncertain"])
    # Both log files share the wall clock: the end to end measured there lies within the
    # stated uncertainty of the wire-aligned one.
    start, _, end = plain_window(THREADIFY_D)
    assert r.end_to_end_us is not None
    assert abs(r.end_to_end_us - (end - start) / 1000.0) <= u


# ---------------------------------------------------------------------------------- command line
def test_cli_json_document() -> None:
    d = sample(THREADIFY_D)
    res = run_cli("downtime", f"{d}/src.trace.xz", f"{d}/dst.trace.xz", "--format", "json")
    assert res.returncode == 0, res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    keys = {
        "end_to_end_us",
        "reported_us",
        "start",
        "end",
        "alignment",
        "critical_path",
        "by_device",
        "notes",
    }
    assert keys <= set(doc)
    assert set(doc["critical_path"][0]) >= {"side", "step", "device", "start_ns", "end_ns", "us", "bql_us"}
    assert doc["end_to_end_us"] == analysed(THREADIFY_D).end_to_end_us


def test_cli_text_explains_the_difference_and_fits_100_columns() -> None:
    d = sample(QEMU72_E)
    res = run_cli("downtime", f"{d}/src.trace.xz", f"{d}/dst.trace.xz")
    assert res.returncode == 0, res.stderr
    words = " ".join(res.stdout.split())
    assert "QEMU reported 150.00 ms" in words and "end to end" in words
    assert "more than QEMU's figure" in words
    assert max(len(line) for line in res.stdout.splitlines()) <= 100


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    res = run_cli("downtime", str(tmp_path / "missing.trace"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1


# ---------------------------------------------------------------------------------- shared traces
SHARED_BOTH = (
    "qemu-threadify/a-precopy-plain",
    "qemu-7.2/d-postcopy-preempt",
    "linux-guest/qemu-7.2/L1-precopy-mutex",
)


@pytest.mark.slow
@pytest.mark.parametrize("folder", SHARED_BOTH)
def test_shared_traces(folder: str) -> None:
    root = shared_traces()
    if root is None:
        pytest.skip("the shared real traces (/work/shared/traces or ../shared/traces) are not here")
    base = str(root / folder)
    r = analysed(folder, base)
    assert_tiles(r)
    start, _, end = plain_window(folder, base)
    assert r.end_to_end_us == (end - start) / 1000.0
    assert r.reported_us == query_downtime_us(folder, base)


def test_path_stays_on_the_source_while_the_destination_waited_for_its_ram() -> None:
    # Plain reading: the destination began loading the final RAM section before the source
    # had finished saving it, so until then the guest waited for the source.
    pat = re.compile(r"type=iterable idstr=ram instance_id=0 downtime=(\d+)")
    saved = [
        t
        for t, e, a in plain_events(sample(THREADIFY_E, "src.trace.xz"))
        if e == "vmstate_downtime_save" and pat.match(a)
    ]
    loads = [
        (t, int(m[1]))
        for t, e, a in plain_events(sample(THREADIFY_E, "dst.trace.xz"))
        if e == "vmstate_downtime_load" and (m := pat.match(a))
    ]
    save_end = saved[-1]
    load_start = loads[-1][0] - loads[-1][1] * 1000
    assert load_start < save_end
    path = analysed(THREADIFY_E).critical_path
    assert all(s["side"] == "src" for s in path if s["end_ns"] <= save_end)
    assert any(s["side"] == "src" and s["end_ns"] == save_end for s in path)
    assert any(s["side"] == "dst" and s["start_ns"] == save_end for s in path)


@pytest.mark.parametrize("run", [QEMU72_A, QEMU72_E])
def test_bql_column_of_the_path_only_where_the_trace_has_mutex_events(run: str) -> None:
    d = sample(run)
    files = [f"{d}/src.trace.xz", f"{d}/dst.trace.xz"]
    traced = any(b"qemu_mutex_unlock" in line for f in files for line in read_lines(f))
    res = run_cli("downtime", *files)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    header = lines[title_line(lines, "Critical path") + 2]
    assert header.split()[:4] == ["at", "s", "side", "step"]
    assert ("BQL held" in header) is traced
    assert ("BQL held per step: not in this trace" in res.stdout) is not traced


@pytest.mark.parametrize("folder", (QEMU72_E, THREADIFY_E))
def test_ram_sent_before_the_stop_and_loaded_after_is_destination_work(folder: str) -> None:
    # Plain reading: a RAM iteration (a PART section, type 2) loads from its section header
    # (qemu_loadvm_state_section_partend) to ram_load_complete. Those the destination loaded
    # after the source stopped were sent before it: the stream's backlog, which the
    # destination works through before it can read what the source sent after stopping.
    start, _, end = plain_window(folder)
    parts, opened, section_type = [], None, ""
    for t, e, a in plain_events(sample(folder, "dst.trace.xz")):
        if e == "qemu_loadvm_state_section":
            section_type = a.strip()  # QEMU_VM_SECTION_PART is 2 (END, 3, has the same header)
        elif e == "qemu_loadvm_state_section_partend" and section_type == "2":
            opened = t
        elif e == "ram_load_complete" and opened is not None:
            if t > start and opened < end:
                parts.append((max(opened, start), min(t, end)))
            opened = None
    steps = analysed(folder).steps["dst"]
    for lo, hi in parts:
        inside = [s for s in steps if s["start_ns"] < hi - 5_000 and s["end_ns"] > lo + 5_000]
        assert inside and all((s["step"], s["device"]) == ("load", "ram") for s in inside), inside
        assert all(s["sent_before_stop"] for s in inside)
    flagged = [s for s in steps if s["sent_before_stop"]]
    for s in flagged:  # a step starts where the one before ended when they are a few µs apart
        assert any(lo - MIN_GAP_NS <= s["start_ns"] and s["end_ns"] <= hi + 5_000 for lo, hi in parts), s
    if folder == QEMU72_E:
        assert sum(hi - lo for lo, hi in parts) > 10_000_000  # this run has a backlog: > 10 ms


def _step(side: str, step: str, lo: int, hi: int, needs: Any = None, gap: bool = False) -> Step:
    return Step(side, step, lo, hi, "ram" if step == "load" else None, None, None, needs, gap)


@pytest.mark.parametrize(
    ("ready", "waited_until", "want"),
    [
        # It began to wait after the source's part had ended (at 20): the data had been sent.
        (100, 101, [("dst", "load", 0, 100), ("dst", "untraced", 100, 101)]),
        # It began to wait while the source was still working: the wait was for the source.
        (15, 25, [("src", "stop VM", 0, 10), ("src", "save", 10, 20), ("wire", "transfer", 20, 25)]),
    ],
)
def test_a_wait_for_a_send_the_trace_does_not_show(
    ready: int, waited_until: int, want: list[tuple[str, str, int, int]]
) -> None:
    src = [_step("src", "stop VM", 0, 10), _step("src", "save", 10, 20)]
    dst = [
        _step("dst", "load", 0, ready),
        _step("dst", "wait for data", ready, waited_until, gap=True),
        _step("dst", "receive package", waited_until, waited_until + 9, needs=("command", "package-receive")),
    ]
    path = critical_path(src, dst, {}, 0, waited_until + 9)
    got = [(p.side, p.step, p.start_ns, p.end_ns) for p in path]
    assert got == [*want, ("dst", "receive package", waited_until, waited_until + 9)]


def test_without_the_sources_send_events_the_path_keeps_its_sides(tmp_path: Path) -> None:
    # Real 7.2 postcopy-preempt run, its source's qemu_savevm_send_* lines taken out (a trace
    # recorded with savevm_* only): the source's part ends where it packed the RUN command, and
    # the path gives each side the time the full trace gives it, within the wait it cannot place.
    root = shared_traces()
    if root is None:
        pytest.skip("the shared real traces are not here")
    run = root / "qemu-7.2" / "d-postcopy-preempt"
    src, dst = str(run / "src.trace.gz"), str(run / "dst.trace.gz")
    cut = tmp_path / "src.trace"
    cut.write_bytes(b"\n".join(ln for ln in read_lines(src) if b":qemu_savevm_send_" not in ln) + b"\n")
    full = tracetool.analyze_downtime(tracetool.load([src, dst]))
    r = tracetool.analyze_downtime(tracetool.load([str(cut), dst]))
    run_packed = [t for t, e, _ in plain_events(src) if e == "savevm_send_postcopy_run"]
    assert r.source_end is not None and full.source_end is not None
    assert r.source_end["event"] == "savevm_send_postcopy_run" and r.source_end["ns"] in run_packed
    assert 0 <= full.source_end["ns"] - r.source_end["ns"] < 1_000_000  # packed just before sent
    assert any("qemu_savevm_send_packaged" in n and "RUN command" in n for n in r.notes), r.notes

    def per_side(rep: DowntimeReport) -> dict[str, float]:
        out: dict[str, float] = {}
        for p in rep.critical_path:
            out[p["side"]] = out.get(p["side"], 0.0) + p["us"]
        return out

    a, b = per_side(full), per_side(r)
    assert a.get("src", 0) > 1000  # the full trace's path crosses to the source
    assert abs(a.get("src", 0) - b.get("src", 0)) < 1000 and abs(a.get("dst", 0) - b.get("dst", 0)) < 1000


def test_the_backlog_on_the_critical_path_is_explained() -> None:
    # The threadify COLO run: the destination was still loading RAM sent before the stop when
    # the source stopped the VM for the initial switchover, and the guest waited for it.
    run = sample("qemu-threadify-colo/b-colo-periodic-mutex")
    doc = json.loads(run_cli("downtime", run, "-f", "json").stdout)
    backlog = [s for s in doc["critical_path"] if s["sent_before_stop"]]
    assert backlog and all((s["side"], s["step"], s["device"]) == ("dst", "load", "ram") for s in backlog)
    said = [e for e in doc["explanation"] if "backlog" in e]
    assert said == [
        f"Of that, the destination spent {duration(sum(s['us'] for s in backlog))} loading RAM the "
        "source had sent before it stopped the VM (the stream's backlog)."
    ]
