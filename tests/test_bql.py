"""BQL analysis on the real sample traces, checked against a plain walk over the raw lines."""

from __future__ import annotations

import calendar
import itertools
import json
import lzma
import math
import re
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracetool
from tests.conftest import read_lines, run_cli, sample, title_line
from tracetool._analyses.bql.report import BqlProcess
from tracetool._analyses.bql.rules import normalize_site

E72 = ("qemu-7.2", "e-precopy-mutex")
TFY = ("qemu-threadify", "e-precopy-mutex")
TFY_RUN = sample(*TFY, "per-thread")

MUTEX = re.compile(
    r"^(?:(?P<tid>\d+)@(?P<sec>\d+)\.(?P<usec>\d{6}):|(?P<iso>\S+Z) )"
    r"(?P<ev>qemu_mutex_lock|qemu_mutex_locked|qemu_mutex_unlock) "
    r"(?:waiting on|taken|released) mutex (?P<addr>0x[0-9a-f]+) \((?P<file>.*):(?P<line>\d+)\)$"
)
EVENT = re.compile(
    r"^(?:(?P<tid>\d+)@(?P<sec>\d+)\.(?P<usec>\d{6}):|(?P<iso>\S+Z) )"
    r"(?P<ev>\w+) ?(?P<args>.*)$"
)


# ------------------------------------------------------------------ the plain reference
def raw_lines(path: str) -> list[str]:
    opener: Any = lzma.open if path.endswith(".xz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def micros(m: re.Match[str]) -> int:
    """Microseconds since the epoch from either log prefix."""
    if m.group("sec"):
        return int(m.group("sec")) * 1_000_000 + int(m.group("usec"))
    dt = datetime.fromisoformat(m.group("iso").replace("Z", "+00:00"))
    return calendar.timegm(dt.utctimetuple()) * 1_000_000 + dt.microsecond


def mutex_events(path: str, tid: int | None = None) -> list[dict[str, Any]]:
    """The mutex lines of a file, in file order; ``tid`` for per-thread files."""
    out = []
    for n, line in enumerate(raw_lines(path), 1):
        m = MUTEX.match(line)
        if m:
            out.append(
                {
                    "tid": int(m.group("tid")) if m.group("tid") else tid,
                    "us": micros(m),
                    "ev": m.group("ev"),
                    "addr": m.group("addr"),
                    "file": m.group("file"),
                    "site_line": int(m.group("line")),
                    "line": n,
                }
            )
    return out


def plain_bql_address(events: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for e in events:
        if e["ev"] == "qemu_mutex_unlock" and e["file"].endswith("/cpus.c"):
            counts[e["addr"]] += 1
    return max(counts, key=lambda a: counts[a])


def plain_holds_and_waits(
    events: list[dict[str, Any]], addr: str
) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Per thread, in each thread's own order: hold = locked -> unlock, wait = lock -> locked."""
    holds: dict[int, list[int]] = defaultdict(list)
    waits: dict[int, list[int]] = defaultdict(list)
    held: dict[int, int] = {}
    waiting: dict[int, int] = {}
    for e in events:
        if e["addr"] != addr:
            continue
        t = e["tid"]
        if e["ev"] == "qemu_mutex_lock":
            waiting[t] = e["us"]
        elif e["ev"] == "qemu_mutex_locked":
            if t in waiting:
                waits[t].append(e["us"] - waiting.pop(t))
            held[t] = e["us"]
        elif t in held:
            holds[t].append(e["us"] - held.pop(t))
    return holds, waits


def percentile(values: list[int], p: float) -> float:
    """Linear interpolation between the closest ranks."""
    v = sorted(values)
    rank = p / 100 * (len(v) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (rank - lo)


def assert_stats_equal(result: BqlProcess, holds: dict[int, list[int]], waits: dict[int, list[int]]) -> None:
    rows = {int(r["tid"]): r for r in result.threads.to_dict("records")}
    assert set(rows) == set(holds) | set(waits)
    for tid, row in rows.items():
        h, w = holds.get(tid, []), waits.get(tid, [])
        assert row["holds"] == len(h), tid
        assert row["waits"] == len(w), tid
        if h:
            assert row["hold_total_us"] == sum(h)
            assert row["hold_max_us"] == max(h)
            for p in (50, 90, 99):
                assert row[f"hold_p{p}_us"] == pytest.approx(percentile(h, p), abs=1e-6)
        if w:
            assert row["wait_total_us"] == sum(w)
            assert row["wait_max_us"] == max(w)
            for p in (50, 90, 99):
                assert row[f"wait_p{p}_us"] == pytest.approx(percentile(w, p), abs=1e-6)


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def t72() -> tracetool.Trace:
    return tracetool.load(sample(*E72, "dst.trace.xz"), threads=[sample(*E72, "dst-threads.json")])


@pytest.fixture(scope="module")
def bql72(t72: tracetool.Trace) -> tracetool.BqlReport:
    return tracetool.analyze_bql(t72)


@pytest.fixture(scope="module")
def tfy_run() -> tracetool.Trace:
    return tracetool.load(TFY_RUN, threads=[f"{TFY_RUN}/dst-threads.json", f"{TFY_RUN}/src-threads.json"])


@pytest.fixture(scope="module")
def bql_tfy(tfy_run: tracetool.Trace) -> tracetool.BqlReport:
    return tracetool.analyze_bql(tfy_run)


def per_thread_files(side: str) -> dict[int, str]:
    return {int(p.name.split(".")[1]): str(p) for p in sorted(Path(TFY_RUN).glob(f"{side}.*.trace.xz"))}


def load_thread_tid() -> int:
    names = json.loads(Path(TFY_RUN, "dst-threads.json").read_text())["tid_to_name"]
    return next(int(t) for t, n in names.items() if n == "mig/dst/main")


# ------------------------------------------------------------------ statistics
def test_7_2_per_thread_statistics_equal_a_plain_walk(bql72: tracetool.BqlReport) -> None:
    events = mutex_events(sample(*E72, "dst.trace.xz"))
    addr = plain_bql_address(events)
    dst = bql72.processes["dst"]
    assert f"{dst.mutex:#x}" == addr
    assert dst.attribution == "thread"
    assert_stats_equal(dst, *plain_holds_and_waits(events, addr))


def test_7_2_source_statistics_equal_a_plain_walk() -> None:
    path = sample(*E72, "src.trace.xz")
    events = mutex_events(path)
    addr = plain_bql_address(events)
    src = tracetool.analyze_bql(tracetool.load(path)).processes["src"]
    assert f"{src.mutex:#x}" == addr
    assert_stats_equal(src, *plain_holds_and_waits(events, addr))


@pytest.mark.parametrize("side", ["dst", "src"])
def test_threadify_per_thread_statistics_equal_a_plain_walk(bql_tfy: tracetool.BqlReport, side: str) -> None:
    events = [e for tid, path in per_thread_files(side).items() for e in mutex_events(path, tid)]
    addr = plain_bql_address(events)
    result = bql_tfy.processes[side]
    assert f"{result.mutex:#x}" == addr
    assert_stats_equal(result, *plain_holds_and_waits(events, addr))


def test_identified_by_says_where_the_releases_come_from(bql72: tracetool.BqlReport) -> None:
    events = mutex_events(sample(*E72, "dst.trace.xz"))
    addr = plain_bql_address(events)
    releases = [e for e in events if e["ev"] == "qemu_mutex_unlock" and e["addr"] == addr]
    by_site: dict[str, int] = defaultdict(int)
    for e in releases:
        if e["file"].endswith("/cpus.c"):
            by_site[f"softmmu/cpus.c:{e['site_line']}"] += 1
    site = max(by_site, key=lambda s: by_site[s])
    assert bql72.processes["dst"].identified_by == (
        f"unlocks from {site} ({by_site[site]} of {len(releases)} releases)"
    )


def test_a_few_cpus_c_releases_of_another_mutex_do_not_fool_the_identification(
    tmp_path: Path, lines72: list[str], bql_addr72: str
) -> None:
    other = [
        i for i, line in enumerate(lines72) if "qemu_mutex_unlock" in line and "monitor/monitor.c" in line
    ][:5]
    edited = list(lines72)
    for i in other:
        edited[i] = re.sub(r"\(.*\)$", "(../../softmmu/cpus.c:511)", edited[i])
    decoys = Counter(MUTEX.match(edited[i]).group("addr") for i in other)  # type: ignore[union-attr]
    decoy, n = decoys.most_common(1)[0]
    path = write(tmp_path, edited)
    result = tracetool.analyze_bql(tracetool.load(path)).processes["dst"]
    assert f"{result.mutex:#x}" == bql_addr72
    assert result.identified_by is not None
    assert result.identified_by.endswith(f"next candidate {decoy} with {n} such releases")


def test_without_thread_ids_holds_pair_in_time_order(tfy_run: tracetool.Trace) -> None:
    path = sample(*TFY, "dst.trace.xz")
    result = tracetool.analyze_bql(tracetool.load(path)).processes["dst"]
    assert result.attribution == "call-site"
    events = mutex_events(path)
    addr = plain_bql_address(events)
    holds, start = [], None
    for e in sorted((e for e in events if e["addr"] == addr), key=lambda e: e["us"]):
        if e["ev"] == "qemu_mutex_locked":
            start = e
        elif e["ev"] == "qemu_mutex_unlock" and start is not None:
            holds.append(e["us"] - start["us"])
            start = None
    done = result.holds[result.holds["complete"]]
    assert len(done) == len(holds)
    assert done["duration_us"].sum() == sum(holds)
    assert sorted(done["duration_us"].astype(int).tolist()) == sorted(holds)
    assert result.threads["tid"].isna().all()
    assert "load" in set(result.threads["role"])


# ------------------------------------------------------------------ what the threads did
def sections(path: str) -> list[tuple[int, int, int]]:
    """(type, start µs, end µs) of each qemu_loadvm_state_section, up to the next or post_main."""
    marks = []
    for line in raw_lines(path):
        m = EVENT.match(line)
        if m and m.group("ev") in ("qemu_loadvm_state_section", "qemu_loadvm_state_post_main"):
            kind = int(m.group("args")) if m.group("ev") == "qemu_loadvm_state_section" else -1
            marks.append((kind, micros(m)))
    return [(k, s, e) for (k, s), (_, e) in itertools.pairwise(marks) if k > 0]


def test_threadify_load_thread_takes_the_bql_once_per_start_full_section(
    bql_tfy: tracetool.BqlReport,
) -> None:
    tid = load_thread_tid()
    dst = bql_tfy.processes["dst"]
    row = dst.threads[dst.threads["tid"] == tid].iloc[0]
    assert (row["name"], row["role"]) == ("mig/dst/main", "load")
    holds = dst.holds[(dst.holds["tid"] == tid) & dst.holds["complete"]]
    start = holds["start_ns"].to_numpy(dtype="int64") // 1000
    end = holds["end_ns"].to_numpy(dtype="int64") // 1000
    savevm = holds["lock_site"].astype(str).str.startswith("migration/savevm.c:").to_numpy()
    spans = sections(per_thread_files("dst")[tid])
    full = [(s, e) for k, s, e in spans if k in (1, 4)]
    part = [(s, e) for k, s, e in spans if k in (2, 3)]
    assert len(full) > 20 and len(part) > 20
    for s, e in full:
        assert int((savevm & (start >= s) & (start < e)).sum()) == 1, (s, e)
    for s, e in part:
        assert not ((start < e) & (end > s)).any(), (s, e)
    # The holds that load devices say which device.
    devices = holds[savevm]["device"].dropna().astype(str)
    assert {"cpu", "0000:00:1f.2/ich9_ahci", "globalstate"} <= set(devices)


def test_threadify_without_thread_ids_attributes_section_holds_to_the_load() -> None:
    path = sample(*TFY, "dst.trace.xz")
    dst = tracetool.analyze_bql(tracetool.load(path)).processes["dst"]
    holds = dst.holds[dst.holds["complete"]]
    start = holds["start_ns"].to_numpy(dtype="int64") // 1000
    at_savevm = holds["lock_site"].astype(str).str.startswith("migration/savevm.c:").to_numpy()
    assert (holds[at_savevm]["role"] == "load").all()
    for kind, s, e in sections(path):
        inside = int((at_savevm & (start >= s) & (start < e)).sum())
        assert inside == (1 if kind in (1, 4) else 0), (kind, s, e)
    # Sections are the load's: other holds (the main loop's) get a phase but no section.
    other = holds[holds["role"] != "load"]
    assert other["section"].isna().all() and other["phase"].notna().any()
    assert holds[at_savevm]["section"].notna().sum() >= 30


def test_7_2_main_thread_holds_the_bql_through_the_load(bql72: tracetool.BqlReport) -> None:
    main = 30905
    load_us = [
        micros(m)
        for m in map(EVENT.match, raw_lines(sample(*E72, "dst.trace.xz")))
        if m
        and int(m.group("tid")) == main
        and ("loadvm" in m.group("ev") or m.group("ev").startswith(("ram_load", "vmstate_load")))
    ]
    assert len(load_us) > 100_000
    dst = bql72.processes["dst"]
    h = dst.holds[(dst.holds["tid"] == main) & dst.holds["complete"]]
    start = h["start_ns"].to_numpy(dtype="int64") // 1000
    end = h["end_ns"].to_numpy(dtype="int64") // 1000
    i = np.searchsorted(start, np.array(load_us), side="right") - 1
    assert (i >= 0).all()
    assert (np.array(load_us) <= end[i]).all()
    assert dst.threads.iloc[0]["tid"] == main  # the main thread holds it longest


def test_by_phase_adds_up_hold_time_inside_each_phase(bql_tfy: tracetool.BqlReport) -> None:
    dst = bql_tfy.processes["dst"]
    assert {"precopy", "devices"} <= set(dst.by_phase["phase"])
    done = dst.holds[dst.holds["complete"]]
    for ph in dst.by_phase.to_dict("records"):
        total = 0
        for s, e in zip(done["start_ns"], done["end_ns"], strict=True):
            total += max(0, min(e, ph["end_ns"]) - max(s, ph["start_ns"]))
        assert ph["hold_us"] == pytest.approx(total / 1000, abs=1e-6)
        assert sum(t["hold_us"] for t in ph["threads"]) == pytest.approx(ph["hold_us"])
    devices = dst.by_phase.set_index("phase").loc["devices"]
    assert devices["threads"][0]["thread"] == "mig/dst/main"


# ------------------------------------------------------------------ inconsistent input
def write(tmp: Path, lines: list[str]) -> str:
    path = tmp / "dst.trace"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def first_line(lines: list[str], ev: str, addr: str, tid: str, after: int = 1000) -> int:
    """0-based index of the first matching mutex line after ``after``."""
    for i in range(after, len(lines)):
        m = MUTEX.match(lines[i])
        if m and m.group("ev") == ev and m.group("addr") == addr and m.group("tid") == tid:
            return i
    raise AssertionError("no such line")


@pytest.fixture(scope="module")
def lines72() -> list[str]:
    return raw_lines(sample(*E72, "dst.trace.xz"))


@pytest.fixture(scope="module")
def bql_addr72(lines72: list[str]) -> str:
    return plain_bql_address(mutex_events(sample(*E72, "dst.trace.xz")))


def kinds_at(result: BqlProcess, path: str) -> dict[int, str]:
    issues = result.inconsistencies
    here = issues[issues["path"] == path]
    return dict(zip(here["line"].tolist(), here["kind"].astype(str).tolist(), strict=True))


def test_missing_unlock_is_flagged_at_its_line(tmp_path: Path, lines72: list[str], bql_addr72: str) -> None:
    drop = first_line(lines72, "qemu_mutex_unlock", bql_addr72, "30912")
    taken = max(
        i
        for i in range(drop)
        if (m := MUTEX.match(lines72[i])) and m.group("tid") == "30912" and m.group("addr") == bql_addr72
    )
    path = write(tmp_path, lines72[:drop] + lines72[drop + 1 :])
    result = tracetool.analyze_bql(tracetool.load(path)).processes["dst"]
    assert kinds_at(result, path).get(taken + 1) == "missing-unlock"
    assert len(result.threads) == 3  # still answers
    vcpu = result.threads[result.threads["tid"] == 30912].iloc[0]
    holds, _ = plain_holds_and_waits(mutex_events(sample(*E72, "dst.trace.xz")), bql_addr72)
    assert vcpu["holds"] == len(holds[30912]) - 1


def test_swapped_lines_are_flagged_and_the_figures_stay(
    tmp_path: Path, lines72: list[str], bql_addr72: str
) -> None:
    i = first_line(lines72, "qemu_mutex_locked", bql_addr72, "30912")
    j = first_line(lines72, "qemu_mutex_unlock", bql_addr72, "30912", i)
    swapped = list(lines72)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    path = write(tmp_path, swapped)
    result = tracetool.analyze_bql(tracetool.load(path)).processes["dst"]
    assert kinds_at(result, path) == {j + 1: "out-of-order"}
    events = mutex_events(sample(*E72, "dst.trace.xz"))
    assert_stats_equal(result, *plain_holds_and_waits(events, bql_addr72))


def test_out_of_order_lines_are_every_back_step_a_plain_walk_finds(
    tmp_path: Path, lines72: list[str], bql_addr72: str
) -> None:
    # Lines swapped with a mutex line a few lines further on, in the same thread or another:
    # each keeps its own timestamp, so the time sort moves it back and the file order breaks.
    rng = np.random.default_rng(7)
    mutex_lines = [
        i for i, line in enumerate(lines72) if (m := MUTEX.match(line)) and m["addr"] == bql_addr72
    ]
    edited = list(lines72)
    for i in sorted(rng.choice(len(mutex_lines) - 40, size=12, replace=False).tolist()):
        a, b = mutex_lines[i], mutex_lines[i + int(rng.integers(1, 40))]
        edited[a], edited[b] = edited[b], edited[a]
    path = write(tmp_path, edited)
    by_thread: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in mutex_events(path):
        if e["addr"] == bql_addr72:
            by_thread[e["tid"]].append(e)
    want = set()
    for events in by_thread.values():
        events.sort(key=lambda e: e["us"])  # stable: equal times keep the file order
        want |= {a["line"] for a, b in itertools.pairwise(events) if b["line"] < a["line"]}
    issues = tracetool.analyze_bql(tracetool.load(path)).processes["dst"].inconsistencies
    found = issues[issues["kind"] == "out-of-order"]
    assert len(want) > 12 and set(found["line"].tolist()) == want and len(found) == len(want)


def test_unlock_without_hold_and_locked_without_lock(
    tmp_path: Path, lines72: list[str], bql_addr72: str
) -> None:
    u = first_line(lines72, "qemu_mutex_unlock", bql_addr72, "30912")
    lk = first_line(lines72, "qemu_mutex_lock", bql_addr72, "30912", u + 1)
    edited = list(lines72)
    edited.insert(u + 1, lines72[u])  # the same release twice
    del edited[lk + 1]  # a lost "waiting" event (shifted by the insertion)
    path = write(tmp_path, edited)
    result = tracetool.analyze_bql(tracetool.load(path)).processes["dst"]
    kinds = kinds_at(result, path)
    assert kinds[u + 2] == "unlock-without-hold"
    locked = next(
        i
        for i in range(lk + 1, len(edited))
        if (m := MUTEX.match(edited[i])) and m.group("tid") == "30912" and m.group("addr") == bql_addr72
    )
    assert kinds[locked + 1] == "locked-without-lock"


def test_bql_address_used_by_another_lock_is_left_out(
    tmp_path: Path, lines72: list[str], bql_addr72: str
) -> None:
    sem = [i for i, line in enumerate(lines72) if "qemu-thread-posix.c" in line][:6]
    edited = list(lines72)
    for i in sem:
        edited[i] = re.sub(r"mutex 0x[0-9a-f]+", f"mutex {bql_addr72}", edited[i])
    path = write(tmp_path, edited)
    result = tracetool.analyze_bql(tracetool.load(path)).processes["dst"]
    assert kinds_at(result, path) == {i + 1: "not-bql-site" for i in sem}
    events = mutex_events(sample(*E72, "dst.trace.xz"))
    assert_stats_equal(result, *plain_holds_and_waits(events, bql_addr72))


def test_two_holders_at_once_and_a_hold_open_at_the_end(
    tmp_path: Path, lines72: list[str], bql_addr72: str
) -> None:
    # Real lines of the two threads, with the vCPU's hold moved inside the main thread's.
    main_locked = lines72[first_line(lines72, "qemu_mutex_locked", bql_addr72, "30905")]
    main_unlock = lines72[first_line(lines72, "qemu_mutex_unlock", bql_addr72, "30905")]
    cpu_locked = lines72[first_line(lines72, "qemu_mutex_locked", bql_addr72, "30912")]
    cpu_unlock = lines72[first_line(lines72, "qemu_mutex_unlock", bql_addr72, "30912")]

    def at(line: str, usec: int) -> str:
        return re.sub(r"^(\d+)@\d+\.\d{6}:", rf"\g<1>@1795694362.{usec:06d}:", line)

    lines = [
        at(main_locked, 100),
        at(cpu_locked, 200),
        at(cpu_unlock, 300),
        at(main_unlock, 400),
        at(cpu_locked, 500),
    ]
    path = write(tmp_path, lines)
    result = tracetool.analyze_bql(tracetool.load(path)).primary
    assert result is not None
    assert kinds_at(result, path) == {2: "two-holders"}
    edges = result.edges
    assert list(zip(edges["line"], edges["kind"].astype(str), strict=True)) == [(5, "held-at-end")]
    assert sorted(result.holds["duration_us"].dropna().tolist()) == [100.0, 300.0]


def test_unreadable_mutex_line_is_reported(tmp_path: Path, lines72: list[str]) -> None:
    edited = list(lines72[:3000])
    edited.insert(10, "30905@1795694361.440000:qemu_mutex_unlock released mutex nowhere")
    path = write(tmp_path, edited)
    result = tracetool.analyze_bql(tracetool.load(path)).processes["dst"]
    assert kinds_at(result, path).get(11) == "unreadable"


def test_strict_fails_only_on_inconsistencies(tmp_path: Path, lines72: list[str], bql_addr72: str) -> None:
    head = lines72[:20_000]  # a real trace cut short: holds open at the cut are edges only
    clean = write(tmp_path, head)
    out = run_cli("bql", clean, "--strict", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["bql"]["edge_count"] >= 1
    drop = first_line(head, "qemu_mutex_unlock", bql_addr72, "30912")
    (tmp_path / "bad").mkdir()
    bad = write(tmp_path / "bad", head[:drop] + head[drop + 1 :])
    lenient = run_cli("bql", bad, "--format", "json")
    assert lenient.returncode == 0, lenient.stderr
    data = json.loads(lenient.stdout)["bql"]
    assert data["inconsistency_count"] == 1
    assert set(data["inconsistencies"][0]) >= {"path", "line", "message"}
    assert data["inconsistencies"][0]["path"] == bad
    assert run_cli("bql", bad, "--strict").returncode == 1


# ------------------------------------------------------------------ the command
CONTRACT_THREAD = {
    "tid",
    "name",
    "role",
    "holds",
    "hold_total_us",
    "hold_max_us",
    "hold_p50_us",
    "hold_p90_us",
    "hold_p99_us",
    "waits",
    "wait_total_us",
    "wait_max_us",
    "wait_p50_us",
    "wait_p99_us",
}
CONTRACT_HOLD = {"tid", "thread", "start_ns", "duration_us", "lock_site", "phase", "section", "device"}


def test_json_contract_for_both_processes() -> None:
    out = run_cli(
        "bql",
        TFY_RUN,
        "--threads",
        f"{TFY_RUN}/dst-threads.json",
        "--threads",
        f"{TFY_RUN}/src-threads.json",
        "--top",
        "5",
        "--format",
        "json",
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data["processes"]) == {"dst", "src"}
    bql = data["bql"]
    assert bql == data["processes"]["dst"]
    assert {
        "mutex",
        "identified_by",
        "attribution",
        "threads",
        "longest_holds",
        "by_phase",
        "inconsistencies",
    } <= set(bql)
    assert re.fullmatch(r"0x[0-9a-f]+", bql["mutex"]) and bql["attribution"] == "thread"
    for t in bql["threads"]:
        assert set(t) >= CONTRACT_THREAD
        assert isinstance(t["tid"], int) and isinstance(t["hold_total_us"], float)
    assert len(bql["longest_holds"]) == 5
    durations = [h["duration_us"] for h in bql["longest_holds"]]
    assert durations == sorted(durations, reverse=True)
    for h in bql["longest_holds"]:
        assert set(h) >= CONTRACT_HOLD and isinstance(h["start_ns"], int)
    load = [h for h in bql["longest_holds"] if h["thread"] == "mig/dst/main"]
    assert load and all(h["lock_site"].startswith("migration/savevm.c:") for h in load)
    assert all(h["device"] for h in load)


def test_text_output_is_tables() -> None:
    out = run_cli("bql", sample(*E72, "dst.trace.xz"), "--threads", sample(*E72, "dst-threads.json"))
    assert out.returncode == 0, out.stderr
    assert "softmmu/cpus.c:511" in out.stdout
    assert "Longest holds" in out.stdout and "CPU 0/TCG" in out.stdout


def test_trace_without_mutex_events_says_what_to_enable(tmp_path: Path) -> None:
    path = write(tmp_path, raw_lines(sample("qemu-7.2", "a-precopy-plain", "dst.trace.xz"))[:5000])
    out = run_cli("bql", path, "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["note"] == ("not in this trace: enable qemu_mutex_lock, qemu_mutex_locked, qemu_mutex_unlock")
    assert data["bql"]["mutex"] is None and data["bql"]["threads"] == []
    text = run_cli("bql", path)
    assert text.returncode == 0 and "enable qemu_mutex_lock" in text.stdout


def test_bql_addr_override(
    t72: tracetool.Trace, bql72: tracetool.BqlReport, tmp_path: Path, lines72: list[str]
) -> None:
    addr = bql72.processes["dst"].mutex
    assert addr is not None
    given = tracetool.analyze_bql(t72, f"{addr:#x}").processes["dst"]
    assert given.identified_by == "given with --bql-addr" and given.mutex == addr
    assert given.threads.equals(bql72.processes["dst"].threads)
    # Another mutex, named by hand: the figures are that mutex's.
    other = "0x55861b3645a0"  # the vm-state lock of this trace (softmmu/runstate.c)
    named = tracetool.analyze_bql(t72, other).processes["dst"]
    events = mutex_events(sample(*E72, "dst.trace.xz"))
    assert_stats_equal(named, *plain_holds_and_waits(events, other))
    path = write(tmp_path, lines72[:5000])
    wrong = run_cli("bql", path, "--bql-addr", "0x1234")
    assert wrong.returncode == 2 and "0x1234" in wrong.stderr and "Traceback" not in wrong.stderr
    junk = run_cli("bql", path, "--bql-addr", "mutex")
    assert junk.returncode == 2 and "not a mutex address" in junk.stderr


@pytest.mark.parametrize(
    ("printed", "shown"),
    [
        ("../../softmmu/cpus.c", "softmmu/cpus.c"),
        ("../src/system/cpus.c", "system/cpus.c"),
        ("../qemu/src/migration/savevm.c", "migration/savevm.c"),
        ("/usr/src/qemu-10/src/include/qemu/lockable.h", "include/qemu/lockable.h"),
        ("./include/qemu/thread.h", "include/qemu/thread.h"),
        ("../../cpus-common.c", "cpus-common.c"),
        ("/usr/src/qemu-10/src/cpu-common.c", "cpu-common.c"),
    ],
)
def test_call_sites_are_shown_from_the_source_tree(printed: str, shown: str) -> None:
    assert normalize_site(printed) == shown


# ------------------------------------------------------------------ other backends
def site_counts(result: BqlProcess) -> Counter[str]:
    done = result.holds[result.holds["complete"]]
    return Counter(done["lock_site"].astype(str))


def test_ftrace_and_the_log_of_the_same_run_agree() -> None:
    """ftrace gives thread ids, the 10.1 log of the same run none: same holds either way."""
    run = ("qemu-threadify-ftrace", "a-precopy-mutex")
    by_thread = tracetool.analyze_bql(tracetool.load(sample(*run, "ftrace.txt.xz")))
    by_site = tracetool.analyze_bql(tracetool.load(sample(*run, "dst.trace.xz"))).primary
    assert by_site is not None and by_site.attribution == "call-site"
    dst = by_thread.processes["dst"]
    assert dst.attribution == "thread"
    assert site_counts(dst) == site_counts(by_site)
    done = dst.holds[dst.holds["complete"]]
    savevm = done[done["lock_site"].astype(str).str.startswith("migration/savevm.c:")]
    # By thread: savevm.c holds are the load thread's, but for one the main thread takes.
    assert Counter(savevm["thread"].astype(str)) == {"mig/dst/main": len(savevm) - 1, "qemu-system-x86": 1}
    assert savevm[savevm["role"] == "main"]["lock_site"].tolist() == ["migration/savevm.c:153"]
    # By call site: every savevm.c hold is counted for the load role.
    assert by_site.threads.set_index("role").loc["load", "holds"] == len(savevm)
    # Two clocks (kernel trace clock, gettimeofday) measure the same holds.
    total_t = dst.holds["duration_us"].sum()
    total_s = by_site.holds["duration_us"].sum()
    assert abs(total_t - total_s) < 0.01 * total_s


def test_simple_backend_holds_match_the_log_of_the_same_run() -> None:
    simple = tracetool.analyze_bql(tracetool.load(sample(*TFY, "dst.simple.xz"))).primary
    log = tracetool.analyze_bql(tracetool.load(sample(*TFY, "dst.trace.xz"))).primary
    assert simple is not None and log is not None
    assert simple.attribution == "call-site" and simple.mutex == log.mutex
    s, g = site_counts(simple), site_counts(log)
    assert s["migration/savevm.c:3091"] == g["migration/savevm.c:3091"] == 34
    # The simple file starts a little later (records before the backend opened its file).
    assert sum((g - s).values()) <= 2 and not (s - g)


def test_without_timestamps_holds_are_counted_not_timed(tmp_path: Path, lines72: list[str]) -> None:
    bare = [re.sub(r"^\d+@\d+\.\d{6}:", "", line) for line in lines72[:30_000]]
    path = write(tmp_path, bare)
    result = tracetool.analyze_bql(tracetool.load(path)).primary
    assert result is not None and result.attribution == "call-site"
    addr = f"mutex {result.mutex:#x} "
    held, holds = False, 0
    for line in bare:  # file order is the only order there is
        if addr in line and line.startswith("qemu_mutex_locked "):
            held = True
        elif addr in line and line.startswith("qemu_mutex_unlock ") and held:
            holds, held = holds + 1, False
    assert int(result.threads["holds"].sum()) == holds > 50
    assert result.threads["hold_total_us"].isna().all()
    assert result.longest_holds().empty
    assert "no timestamps in this trace: counts only, no durations" in result.notes


# ------------------------------------------------------------------ scale: lazy frames, counted issues
def test_longest_holds_are_the_longest_rows_of_the_hold_frame(bql_tfy: tracetool.BqlReport) -> None:
    dst = bql_tfy.processes["dst"]
    done = dst.holds[dst.holds["complete"] & dst.holds["duration_us"].notna()]
    want = done.sort_values(["duration_us", "start_ns"], ascending=[False, True], kind="stable").head(400)
    got = dst.longest_holds(400)
    assert want["duration_us"].duplicated().any()  # ties: the earlier hold first
    assert got.index.tolist() == want.index.tolist()
    for column in ("tid", "start_ns", "duration_us", "lock_site", "phase", "section", "device", "line"):
        assert got[column].astype(object).tolist() == want[column].astype(object).tolist(), column


def test_every_broken_event_is_counted_and_the_first_thousand_listed(tmp_path: Path) -> None:
    # Threads that never complete lock -> locked -> unlock: lock, unlock, unlock, locked, locked.
    cycle = [
        ("qemu_mutex_lock", "waiting on", "util/main-loop.c:311"),
        ("qemu_mutex_unlock", "released", "system/cpus.c:575"),
        ("qemu_mutex_unlock", "released", "system/cpus.c:575"),
        ("qemu_mutex_locked", "taken", "migration/savevm.c:3091"),
        ("qemu_mutex_locked", "taken", "migration/savevm.c:3182"),
    ]
    tids = [101, 102, 103]
    lines = []
    for i in range(3000):
        ev, verb, site = cycle[(i // len(tids)) % len(cycle)]
        tid = tids[i % len(tids)]
        lines.append(f"{tid}@1795694362.{i:06d}:{ev} {verb} mutex 0x55aa00000040 (../src/{site})")
    path = write(tmp_path, lines)
    result = tracetool.analyze_bql(tracetool.load(path)).primary
    assert result is not None
    doc = result.issues.first(10_000)
    # Every event breaks the protocol, except what a trace edge explains: each thread's first
    # event (a lock with nothing before it) and last one.
    flagged = {i.line for i in doc}
    edges = set(range(1, 4)) | set(range(len(lines) - 2, len(lines) + 1))
    assert set(range(1, len(lines) + 1)) - flagged <= edges
    out = run_cli("bql", path, "--format", "json")
    data = json.loads(out.stdout)["bql"]
    assert data["inconsistency_count"] == result.inconsistency_count == len(doc) > 1000
    listed = data["inconsistencies"]
    assert len(listed) == 1000
    assert [i["line"] for i in listed] == sorted(i["line"] for i in listed)
    frame = result.inconsistencies
    assert len(frame) == data["inconsistency_count"]
    assert frame.head(1000)[["line", "kind", "message"]].astype(object).values.tolist() == [
        [i["line"], i["kind"], i["message"]] for i in listed
    ]


def _ram_end_then_timer(taken_in_ram_section: bool) -> list[str]:
    """QEMU 7.2 log lines of a main thread loading RAM's last section and then the first device
    (the timer), with one BQL hold taken inside RAM's section or after it ended."""
    bql = "0x55d0c0ffee40"
    steps = [
        "qemu_loadvm_state_section 3",
        "qemu_loadvm_state_section_partend 2",
        "ram_load_complete exit_code 0 seq iteration 68",
        "qemu_loadvm_state_section 4",
        "qemu_loadvm_state_section_startfull 0(timer) 0 2",
    ]
    take = [
        f"qemu_mutex_lock waiting on mutex {bql} (../../util/main-loop.c:318)",
        f"qemu_mutex_locked taken mutex {bql} (../../util/main-loop.c:318)",
    ]
    at = 2 if taken_in_ram_section else 3
    body = [
        *steps[:at],
        *take,
        *steps[at:],
        f"qemu_mutex_unlock released mutex {bql} (../../softmmu/cpus.c:511)",
    ]
    return [f"4242@{1000 + 0.01 * i:.6f}:{line}" for i, line in enumerate(body)]


@pytest.mark.parametrize("taken_in_ram_section", [True, False])
def test_a_hold_taken_in_rams_last_section_is_no_devices_load(
    tmp_path: Path, taken_in_ram_section: bool
) -> None:
    path = write(tmp_path, _ram_end_then_timer(taken_in_ram_section))
    holds = tracetool.analyze_bql(tracetool.load(path)).processes["dst"].holds
    assert len(holds) == 1
    device = None if holds["device"].isna().iloc[0] else str(holds["device"].iloc[0])
    # Taken before RAM's section ended, the hold was not taken to load the timer that starts
    # while it is held; taken between sections, it is the timer's (as the threaded load does).
    assert device == (None if taken_in_ram_section else "timer")


@pytest.mark.parametrize("case", [E72, TFY])
def test_per_role_table_has_no_empty_thread_columns(case: tuple[str, str]) -> None:
    path = sample(*case, "dst.trace.xz")
    # QEMU 7.2's log lines start with TID@; 10.1's with an ISO time and no thread id
    with_tids = all(re.match(rb"\d+@", line) for line in itertools.islice(read_lines(path), 100) if line)
    out = run_cli("bql", path, "--threads", sample(*case, "dst-threads.json"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    title = title_line(lines, "Holds and waits per")
    header = lines[title + 2].split()
    assert lines[title].rstrip().endswith("per thread") is with_tids
    assert header[:3] == (["tid", "thread", "role"] if with_tids else ["role", "holds", "total"])
    report = run_cli("report", path, "--threads", sample(*case, "dst-threads.json")).stdout.splitlines()
    title = title_line(report, "Holds and waits per")
    assert report[title].split()[4] == ("thread" if with_tids else "role")
    assert report[title + 2].split()[0] == ("thread" if with_tids else "role")
