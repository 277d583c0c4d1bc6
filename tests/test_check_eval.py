"""Evaluating rules on the real sample traces. Observed values are compared with plain
computations over the trace lines (a regex and a loop), never with numbers copied from a run."""

from __future__ import annotations

import fnmatch
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

import tracetool
from tests.conftest import read_lines, sample
from tracetool._check.evaluate import Status
from tracetool._check.evaluate import check_trace as check
from tracetool._model.trace import Trace
from tracetool.errors import RulesError

LOG_LINE = re.compile(rb"^(\d+)@(\d+)\.(\d+):(\w+) ?(.*)$")
ISO_LINE = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?Z (\w+) ?(.*)$")
MUTEX = re.compile(rb"\w+ (?:on )?mutex (0x[0-9a-f]+) \(([^)]*)\)")
DEVICE_ENDS = {
    b"qemu_loadvm_state_section",
    b"qemu_loadvm_state_post_main",
    b"ram_load_complete",
    b"vmstate_downtime_load",
}

MUTEX72 = ("qemu-7.2", "e-precopy-mutex")
POSTCOPY10 = ("qemu-threadify", "d-postcopy-preempt")
PER_THREAD = ("qemu-threadify", "e-precopy-mutex", "per-thread")


# ---------------------------------------------------------------------------------- plain readers
def plain_events(*parts: str, only: tuple[bytes, ...] = ()) -> list[tuple[int, int, str, bytes]]:
    """(tid, time in µs, event, args) of every ``TID@SEC.USEC:name args`` line (of the lines
    holding one of ``only``, when given)."""
    out = []
    for line in read_lines(sample(*parts, "dst.trace.xz")):
        if only and not any(o in line for o in only):
            continue
        m = LOG_LINE.match(line)
        if m:
            tid, s, us, ev, args = m.groups()
            out.append((int(tid), int(s) * 1_000_000 + int(us), ev.decode(), args))
    return out


def plain_iso_events(*parts: str, only: tuple[bytes, ...]) -> list[tuple[int, str, bytes]]:
    """(time in µs since the epoch, event, args) of QEMU >= 10.1 lines holding one of ``only``."""
    out = []
    for line in read_lines(sample(*parts, "dst.trace.xz")):
        if any(o in line for o in only) and (m := ISO_LINE.match(line)):
            stamp, frac, ev, args = m.groups()
            secs = datetime.strptime(stamp.decode(), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
            micros = int((frac or b"0").ljust(6, b"0"))
            out.append((int(secs.timestamp()) * 1_000_000 + micros, ev.decode(), args))
    return out


def plain_names(*parts: str) -> dict[int, str]:
    data = json.loads(Path(sample(*parts, "dst-threads.json")).read_text())
    return {int(k): v for k, v in data["tid_to_name"].items()}


def plain_bql_intervals(events: list[tuple[int, int, str, bytes]]) -> list[tuple[int, int, int]]:
    """(tid, start µs, end µs) of each BQL hold: the BQL is the mutex released most often from
    cpus.c; each locked starts a hold, the next unlock on the same thread ends it."""
    parsed = [
        (tid, t, ev, m.group(1), m.group(2))
        for tid, t, ev, a in events
        if ev.startswith("qemu_mutex_") and (m := MUTEX.match(a))
    ]
    releases = Counter(
        addr
        for _, _, ev, addr, site in parsed
        if ev == "qemu_mutex_unlock" and site.split(b":")[0].endswith(b"cpus.c")
    )
    bql = releases.most_common(1)[0][0]
    started: dict[int, int] = {}
    out = []
    for tid, t, ev, addr, _ in parsed:
        if addr != bql:
            continue
        if ev == "qemu_mutex_locked":
            started[tid] = t
        elif ev == "qemu_mutex_unlock" and tid in started:
            out.append((tid, started.pop(tid), t))
    return out


def plain_bql_holds(events: list[tuple[int, int, str, bytes]]) -> dict[int, list[int]]:
    """Hold durations (µs) per tid."""
    holds: dict[int, list[int]] = defaultdict(list)
    for tid, start, end in plain_bql_intervals(events):
        holds[tid].append(end - start)
    return holds


def plain_devices(events: list[tuple[int, int, str, bytes]]) -> list[tuple[str, int]]:
    """(idstr, load time in µs): startfull until the next section/end event on that thread."""
    open_dev: dict[int, tuple[str, int]] = {}
    out = []
    for tid, t, ev, args in events:
        if ev.encode() in DEVICE_ENDS and tid in open_dev:
            name, t0 = open_dev.pop(tid)
            out.append((name, t - t0))
        if ev == "qemu_loadvm_state_section_startfull":
            m = re.match(rb"\d+\((.*)\)", args)
            assert m
            open_dev[tid] = (m.group(1).decode(), t)
    return out


# ---------------------------------------------------------------------------------- fixtures
def _load(*parts: str, trace: str = "dst.trace.xz") -> Trace:
    path = sample(*parts) if trace == "" else sample(*parts, trace)
    return tracetool.load(path, threads=[sample(*parts, "dst-threads.json")])


@pytest.fixture(scope="module")
def mutex72() -> Trace:
    return _load(*MUTEX72)


@pytest.fixture(scope="module")
def mutex72_lines() -> list[tuple[int, int, str, bytes]]:
    return plain_events(*MUTEX72)


def _one(trace: Trace, expr: str) -> tuple[Status, object, str | None]:
    (r,) = check(trace, [expr]).results
    return r.status, r.observed, r.reason


# ---------------------------------------------------------------------------------- BQL numbers
def test_bql_hold_per_thread_matches_a_plain_pairing(
    mutex72: Trace, mutex72_lines: list[tuple[int, int, str, bytes]]
) -> None:
    holds = plain_bql_holds(mutex72_lines)
    names = plain_names(*MUTEX72)
    for tid, durations in holds.items():
        status, observed, _ = _one(mutex72, f"bql.hold.max{{tid={tid}}} <= {max(durations)}us")
        assert (status, observed) == (Status.PASS, max(durations))
        assert _one(mutex72, f"bql.holds{{tid={tid}}} == {len(durations)}")[0] is Status.PASS
        total = _one(mutex72, f'bql.hold.total{{thread="{names[tid]}", tid={tid}}} > 0ns')[1]
        assert total == sum(durations)
    worst = max(max(d) for d in holds.values())
    assert _one(mutex72, "bql.hold.max < 1s")[1] == worst


def test_thread_glob_and_role_selectors(
    mutex72: Trace, mutex72_lines: list[tuple[int, int, str, bytes]]
) -> None:
    holds = plain_bql_holds(mutex72_lines)
    names = plain_names(*MUTEX72)
    glob = [t for t in holds if fnmatch.fnmatchcase(names[t], "qemu-*")]
    assert glob, "the sample has main-thread holds"
    assert _one(mutex72, 'bql.holds{thread="qemu-*"} > 0')[1] == sum(len(holds[t]) for t in glob)
    vcpus = [t for t in holds if re.fullmatch(r"CPU \d+/TCG", names[t])]
    assert _one(mutex72, "bql.hold.total{role=vcpu} > 0ns")[1] == sum(sum(holds[t]) for t in vcpus)


def test_bql_hold_time_inside_each_phase(
    mutex72: Trace, mutex72_lines: list[tuple[int, int, str, bytes]]
) -> None:
    from tracetool._analyses.phases import analyze_phases

    intervals = plain_bql_intervals(mutex72_lines)
    main_tid = next(t for t, n in plain_names(*MUTEX72).items() if n == "qemu-system-x86")
    rules, expected = [], []
    for p in analyze_phases(mutex72).to_json()["phases"]:  # phase bounds from phases
        lo, hi = p["start_ns"] // 1000, p["end_ns"] // 1000
        inside = [max(0, min(b, hi) - max(a, lo)) for _, a, b in intervals]
        on_main = [max(0, min(b, hi) - max(a, lo)) for t, a, b in intervals if t == main_tid]
        rules += [
            f'bql.hold.total{{phase="{p["name"]}"}} >= 0ns',
            f'bql.hold.total{{phase="{p["name"]}", tid={main_tid}}} >= 0ns',
        ]
        expected += [sum(inside), sum(on_main)]
    report = check(mutex72, rules)
    assert [r.observed for r in report.results] == expected


@pytest.mark.parametrize(
    ("op", "delta_ns", "passes"),
    [
        ("<", 0, False),
        ("<", 1, True),
        ("<=", 0, True),
        ("<=", -1, False),
        (">", 0, False),
        (">", -1, True),
        (">=", 0, True),
        (">=", 1, False),
        ("==", 0, True),
        ("==", 1, False),
        ("!=", 0, False),
        ("!=", 1, True),
    ],
)
def test_every_comparison_against_the_plain_value(
    mutex72: Trace, mutex72_lines: list[tuple[int, int, str, bytes]], op: str, delta_ns: int, passes: bool
) -> None:
    worst_ns = max(max(d) for d in plain_bql_holds(mutex72_lines).values()) * 1000
    status, _, _ = _one(mutex72, f"bql.hold.max {op} {worst_ns + delta_ns}ns")
    assert status is (Status.PASS if passes else Status.FAIL)


@pytest.mark.parametrize("unit", ["ns", "us", "µs", "ms", "s"])
def test_every_unit_brackets_the_plain_value(
    mutex72: Trace, mutex72_lines: list[tuple[int, int, str, bytes]], unit: str
) -> None:
    worst_us = max(max(d) for d in plain_bql_holds(mutex72_lines).values())
    per_unit = {"ns": 1e-3, "us": 1.0, "µs": 1.0, "ms": 1e3, "s": 1e6}[unit]
    just_above = worst_us / per_unit * 1.001
    just_below = worst_us / per_unit * 0.999
    assert _one(mutex72, f"bql.hold.max < {just_above:.9g}{unit}")[0] is Status.PASS
    assert _one(mutex72, f"bql.hold.max < {just_below:.9g}{unit}")[0] is Status.FAIL


# ---------------------------------------------------------------------------------- summary metrics
def test_event_counts_presence_and_threads(
    mutex72: Trace, mutex72_lines: list[tuple[int, int, str, bytes]]
) -> None:
    counts = Counter(ev for _, _, ev, _ in mutex72_lines)
    tids = Counter(tid for tid, _, _, _ in mutex72_lines)
    rules = [f"events.{name}.count == {n}" for name, n in counts.most_common(5)]
    rules += [f"events.count{{tid={t}}} == {n}" for t, n in tids.items()]
    rules += [
        f"threads.count == {len(tids)}",
        f"events.count == {sum(counts.values())}",
        'event("qemu_mutex_locked") exists',
        'event("postcopy_preempt_new_channel") absent',
        "events.postcopy_preempt_new_channel.count == 0",
    ]
    names = plain_names(*MUTEX72)
    rules += [f'thread("{names[t]}") exists' for t in tids]
    rules += [
        'thread("mig/dst/main") absent',
        'thread("CPU *") exists',
        "threads.count{role=fault} == 0",
    ]  # counting nothing is 0, not "not measurable"
    report = check(mutex72, rules)
    assert [r.rule.name for r in report.failed] == []
    # and the same rules turned around fail
    inverted = [
        r.replace("==", "!=")
        .replace(" exists", " EXISTS")
        .replace(" absent", " exists")
        .replace(" EXISTS", " absent")
        for r in rules
    ]
    assert len(check(mutex72, inverted).failed) == len(rules)


def test_unparsed_lines_counts_lines_that_are_not_events(tmp_path: Path) -> None:
    lines = list(read_lines(sample("qemu-7.2", "a-precopy-plain", "dst.trace.xz")))[:2000]
    junk = [
        b"qemu-system-x86_64: warning: host doesn't support requested feature",
        b"qemu-system-x86_64: terminating on signal 15 from pid 4242",
        b"random text",
    ]
    mixed = lines[:100] + junk[:2] + lines[100:] + junk[2:]
    f = tmp_path / "dst.trace"
    f.write_bytes(b"\n".join(mixed) + b"\n")
    not_events = sum(1 for x in mixed if not LOG_LINE.match(x))
    report = check(str(f), [f"unparsed_lines == {not_events}", "unparsed_lines == 0"])
    assert [r.status for r in report.results] == [Status.PASS, Status.FAIL]
    assert report.results[1].observed == not_events == 3


# ---------------------------------------------------------------------------------- phases metrics
def test_devices_match_a_plain_walk_of_the_sections(
    mutex72: Trace, mutex72_lines: list[tuple[int, int, str, bytes]]
) -> None:
    devices = plain_devices(mutex72_lines)
    slowest_name, slowest = max(devices, key=lambda d: d[1])
    short = slowest_name.rsplit("/", 1)[-1]
    report = check(
        mutex72,
        [
            f"devices.count == {len(devices)}",
            f"devices.duration <= {slowest}us",
            f'devices.duration{{device="{short}"}} == {slowest}us',
            f'devices.duration{{device="{slowest_name}"}} == {slowest}us',
            f"devices.duration.total == {sum(d for _, d in devices)}us",
            'devices.count{device="i8*"} == ' + str(sum(fnmatch.fnmatchcase(n, "i8*") for n, _ in devices)),
        ],
    )
    assert [r.summary() for r in report.failed] == []


def test_phase_metrics_read_the_phases_document(mutex72: Trace) -> None:
    from tracetool._analyses.phases import analyze_phases

    doc = analyze_phases(mutex72).to_json()
    by_name: dict[str, list[float]] = defaultdict(list)
    for p in doc["phases"]:
        by_name[p["name"]].append(p["duration_us"])
    rules = [f"phases.{n}.duration == {sum(d)}us" for n, d in by_name.items()]
    rules += [f"phases.{n}.count == {len(d)}" for n, d in by_name.items()]
    rules += [
        "phases.postcopy.count == 0",
        f"outcome == {doc['outcome']}",
        f'load_thread.name == "{doc["load_thread"]["name"]}"',
        f"downtime.dst == {doc['downtime']['dst_us']}us",
    ]
    assert [r.summary() for r in check(mutex72, rules).failed] == []


def _per_thread_dst(*parts: str) -> Trace:
    d = sample(*parts)
    files = sorted(str(p) for p in Path(d).glob("dst.*.trace.xz"))
    return tracetool.load(files, threads=[f"{d}/dst-threads.json"])


@pytest.fixture(scope="module")
def per_thread_precopy() -> Trace:
    return _per_thread_dst(*PER_THREAD)


def test_threaded_load_thread_is_named_from_the_per_thread_files(per_thread_precopy: Trace) -> None:
    d = sample(*PER_THREAD)
    files = sorted(str(p) for p in Path(d).glob("dst.*.trace.xz"))
    trace = per_thread_precopy
    loader = next(Path(p) for p in files if any(b"qemu_loadvm_state_section " in x for x in read_lines(p)))
    tid = int(loader.name.split(".")[1])
    name = json.loads(Path(d, "dst-threads.json").read_text())["tid_to_name"][str(tid)]
    report = check(
        trace,
        [
            f'load_thread.name == "{name}"',
            f'bql.holds{{thread="{name}"}} > 0',
            f"bql.hold.max{{tid={tid}}} > 0ns",
            "bql.hold.max{role=load} > 0ns",
        ],
    )
    assert [r.summary() for r in report.failed] == []
    by_tid, by_role = (r.observed for r in report.results[2:])
    assert by_tid == by_role


# ---------------------------------------------------------------------------------- preempt metrics
def test_preempt_metrics_match_plain_pairing() -> None:
    trace = tracetool.load(sample(*POSTCOPY10, "dst.trace.xz"))
    events = plain_iso_events(
        *POSTCOPY10, only=(b" postcopy_page_req_", b" postcopy_preempt_", b" ram_load_postcopy_loop chan=1 ")
    )
    pending: dict[bytes, int] = {}
    latencies = []
    for t, ev, args in events:
        addr = args.split(b"req ")[-1].split(b" ")[0]
        if ev == "postcopy_page_req_add":
            pending.setdefault(addr, t)
        elif ev == "postcopy_page_req_del" and addr in pending:
            latencies.append(t - pending.pop(addr))
    preempt_pages = sum(1 for _, ev, _ in events if ev == "ram_load_postcopy_loop")
    first = {ev: t for t, ev, _ in reversed(events)}
    wait = max(0, first["postcopy_preempt_new_channel"] - first["postcopy_preempt_thread_entry"])
    p99 = float(np.percentile(latencies, 99))
    report = check(
        trace,
        [
            f"preempt.page_requests.count == {len(latencies)}",
            f"preempt.page_requests.max == {max(latencies)}us",
            f"preempt.page_requests.p99 < {p99 * 1.0001}us",
            f"preempt.page_requests.p99 > {p99 * 0.9999}us",
            f"preempt.pages.preempt == {preempt_pages}",
            "preempt.enabled == true",
            f"preempt.thread_wait == {wait}us",
        ],
    )
    assert [r.summary() for r in report.failed] == []


# ---------------------------------------------------------------------------------- examples
def test_example_rules_are_measurable_on_runs_of_their_kind(per_thread_precopy: Trace) -> None:
    examples = Path(__file__).resolve().parent.parent / "examples" / "rules"
    postcopy = _per_thread_dst("qemu-threadify", "d-postcopy-preempt", "per-thread")
    for trace, name in ((per_thread_precopy, "precopy.toml"), (postcopy, "postcopy.toml")):
        report = check(trace, examples / name)
        unmeasured = [r.rule.name for r in report.results if r.observed is None and not r.rule.optional]
        assert unmeasured == [], name


# ---------------------------------------------------------------------------------- not measurable
def test_missing_events_fail_with_what_to_enable_unless_optional() -> None:
    trace = _load("qemu-7.2", "a-precopy-plain")
    report = check(
        trace,
        "[[rule]]\nname = 'bql'\nexpr = 'bql.hold.max < 5ms'\n"
        "[[rule]]\nname = 'bql optional'\nexpr = 'bql.waits == 0'\noptional = true\n",
    )
    required, optional = report.results
    assert required.status is Status.FAIL and optional.status is Status.SKIP
    assert required.observed is None
    assert required.reason is not None and required.reason.startswith(
        "enable qemu_mutex_locked, qemu_mutex_unlock"
    )
    assert optional.reason is not None and "enable qemu_mutex_lock" in optional.reason
    assert report.exit_code == 1
    assert check(trace, [optional.rule]).exit_code == 0  # a skip alone passes


def test_missing_values_carry_the_analysis_notes_and_what_to_enable(
    mutex72: Trace, mutex72_lines: list[tuple[int, int, str, bytes]]
) -> None:
    from tracetool._analyses.preempt import analyze_preempt

    assert not any(ev.startswith("postcopy_preempt_") for _, _, ev, _ in mutex72_lines)
    (r,) = check(mutex72, ["preempt.thread_wait < 1ms"]).results
    notes = analyze_preempt(mutex72).to_json()["preempt"]["notes"]
    assert r.status is Status.FAIL and r.reason is not None
    assert notes and notes[0] in r.reason
    assert r.reason.endswith("enable postcopy_preempt_*, postcopy_page_req_* (migtrace events --for preempt)")


def test_durations_without_timestamps_are_not_measurable() -> None:
    trace = _load("qemu-7.2", "g-precopy-plain-notimestamp")
    (r,) = check(trace, ["devices.duration < 1s"]).results
    assert r.status is Status.FAIL and r.reason is not None
    assert r.reason.startswith("the trace has no timestamps (record with -msg timestamp=on")
    (c,) = check(trace, ["devices.count > 0"]).results  # counts still work
    assert c.status is Status.PASS


def test_thread_selector_without_thread_ids_explains_itself() -> None:
    trace = _load("qemu-threadify", "e-precopy-mutex")
    thread, role = check(
        trace, ['bql.hold.max{thread="mig/dst/main"} < 1s', "bql.hold.max{role=load} < 1s"]
    ).results
    assert thread.status is Status.FAIL and thread.reason is not None
    assert "no thread ids" in thread.reason
    assert role.status is Status.PASS


def test_selector_matching_nothing_lists_what_there_is(mutex72: Trace) -> None:
    (r,) = check(mutex72, ['bql.hold.max{thread="mig/dst/mian"} < 5ms']).results
    names = sorted(set(plain_names(*MUTEX72).values()) & {"qemu-system-x86", "CPU 0/TCG"})
    assert r.status is Status.FAIL and r.reason is not None
    assert "no thread matches 'mig/dst/mian'" in r.reason
    assert all(n in r.reason for n in names)


def test_unknown_event_name_is_a_rules_error_with_close_matches(mutex72: Trace) -> None:
    with pytest.raises(RulesError, match="did you mean: postcopy_preempt_new_channel"):
        check(mutex72, ['event("postcopy_preempt_new_chanel") absent'])


def test_report_json_and_explain(mutex72: Trace) -> None:
    report = check(mutex72, ["bql.hold.max{role=main} < 1ms", "unparsed_lines == 0"])
    doc = report.to_json()
    assert (doc["total"], doc["passed"], doc["failed"], doc["exit_code"]) == (2, 1, 1, 1)
    failed = doc["rules"][0]
    assert failed["status"] == "fail" and failed["unit"] == "us" and failed["expected"] == "< 1 ms"
    text = report.failed[0].explain()
    assert "observed:" in text and "expected: < 1 ms" in text and "bql.threads[].hold_max_us" in text


def test_device_load_count_is_the_number_of_device_sections() -> None:
    import tracetool

    path = sample("qemu-7.2", "e-precopy-mutex", "dst.trace.xz")
    plain = sum(1 for line in read_lines(path) if b":qemu_loadvm_state_section_startfull " in line)
    report = tracetool.check_trace(
        path,
        [
            f"phases.device_load.count == {plain}",
            f"devices.count == {plain}",
            "phases.device_load.count >= 20",
        ],
    )
    assert report.ok, [r.summary() for r in report.failed]
