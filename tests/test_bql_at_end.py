"""Who holds the BQL when a trace ends, who waits for it, and deadlocks: real traces checked
against a plain walk of their mutex lines, and small generated traces for the deadlocks."""

from __future__ import annotations

import gzip
import json
import lzma
import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli, sample
from tracetool._analyses.bql import at_end

REAL = Path(os.environ.get("MIGTRACE_REAL_TRACES", "/work/shared/traces"))

LINE = re.compile(
    r"^(?:(?P<tid>\d+)@(?P<sec>\d+)\.(?P<usec>\d{6}):|(?P<iso>\S+Z) )(?P<ev>\w+) ?(?P<args>.*)$"
)
MUTEX = re.compile(
    r"(?:waiting on|taken|released) mutex (?P<addr>0x[0-9a-f]+) \((?P<file>.*):(?P<line>\d+)\)$"
)


# ------------------------------------------------------------------ the plain reference
def lines_of(path: Path) -> Iterator[str]:
    opener: Any = {".xz": lzma.open, ".gz": gzip.open}.get(path.suffix, open)
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            yield line.rstrip("\n")


def micros(m: re.Match[str]) -> int:
    if m.group("sec"):
        return int(m.group("sec")) * 1_000_000 + int(m.group("usec"))
    dt = datetime.fromisoformat(m.group("iso").replace("Z", "+00:00"))
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def events_of(files: dict[Path, int | None]) -> list[dict[str, Any]]:
    """Every event line of one process (``files``: path -> its thread id, None when the lines
    carry it), in time order; lines of one file keep their order on equal times."""
    out = []
    for k, (path, tid) in enumerate(files.items()):
        for n, line in enumerate(lines_of(path)):
            m = LINE.match(line)
            if not m:
                continue
            e: dict[str, Any] = {"us": micros(m), "tid": int(m.group("tid")) if m.group("tid") else tid}
            e.update(ev=m.group("ev"), args=m.group("args"), order=(k, n))
            mm = MUTEX.match(m.group("args")) if m.group("ev").startswith("qemu_mutex_") else None
            if mm:
                e.update(addr=mm.group("addr"), file=mm.group("file"), site_line=int(mm.group("line")))
            out.append(e)
    out.sort(key=lambda e: (e["us"], e["order"]))
    return out


def bql_address(events: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for e in events:
        if e["ev"] == "qemu_mutex_unlock" and e["file"].endswith("/cpus.c"):
            counts[e["addr"]] = counts.get(e["addr"], 0) + 1
    return max(counts, key=lambda a: counts[a])


def plain_at_end(events: list[dict[str, Any]], bql: str) -> tuple[dict[str, Any] | None, list[int]]:
    """(holder, waiting tids): the holder is the thread of the last ``locked`` on the BQL if it
    did not release it afterwards; a waiter is a thread whose very last event is a ``lock`` on
    the BQL."""
    last_locked: dict[str, Any] | None = None
    released_after = False
    last_event: dict[int, dict[str, Any]] = {}
    for e in events:
        last_event[e["tid"]] = e
        if e.get("addr") != bql:
            continue
        if e["ev"] == "qemu_mutex_locked":
            last_locked, released_after = e, False
        elif e["ev"] == "qemu_mutex_unlock" and last_locked is not None and e["tid"] == last_locked["tid"]:
            released_after = True
    holder = None if last_locked is None or released_after else last_locked
    waiting = [t for t, e in last_event.items() if e["ev"] == "qemu_mutex_lock" and e.get("addr") == bql]
    return holder, sorted(waiting)


def check_against_walk(doc: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """The process's ``at_end`` against the plain walk; returns it."""
    bql = bql_address(events)
    assert doc["mutex"] == bql
    end = doc["at_end"]
    holder, waiting = plain_at_end(events, bql)
    if holder is None:
        assert end["holder"] is None
    else:
        got = end["holder"]
        assert got is not None
        assert got["tid"] == holder["tid"]
        assert got["since_ns"] // 1000 == holder["us"]
        path, _, line = got["site"].rpartition(":")
        assert holder["file"].endswith(path) and int(line) == holder["site_line"]
    assert sorted(w["tid"] for w in end["waiters"]) == waiting
    assert end["start_ns"] // 1000 == events[0]["us"]
    assert end["ended_ns"] // 1000 == events[-1]["us"]
    return dict(end)


def bql_text(*args: str) -> str:
    """``migtrace bql`` text with the line wrapping undone."""
    out = run_cli("bql", *args)
    assert out.returncode == 0, out.stderr
    return " ".join(out.stdout.split())


def bql_json(*args: str) -> dict[str, Any]:
    out = run_cli("bql", *args, "--format", "json")
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def per_thread(folder: Path, side: str) -> dict[Path, int | None]:
    files = sorted(folder.glob(f"{side}.*.trace*"))
    return {p: int(p.name.split(".")[1]) for p in files}


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real trace not here: {path} (set MIGTRACE_REAL_TRACES to the recorded traces)")
    return path


# ------------------------------------------------------------------ real traces
@pytest.mark.parametrize("pairs", ["flat", "numbered"])
def test_7_2_ends_with_the_main_thread_holding_the_bql(pairs: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if pairs == "numbered":  # the (thread, mutex) pairs numbered first, as for huge traces
        monkeypatch.setattr(at_end, "_DENSE_LIMIT", 0)
    run = Path(sample("qemu-7.2", "e-precopy-mutex"))
    doc = bql_json(str(run / "dst.trace.xz"), str(run / "src.trace.xz"))
    for side in ("dst", "src"):
        end = check_against_walk(doc["processes"][side], events_of({run / f"{side}.trace.xz": None}))
        assert end["holder"]["role"] == "main"
        assert end["held_by_non_main"] is False and end["deadlock"] == []


def test_threadify_per_thread_files_end_with_the_bql_free() -> None:
    run = Path(sample("qemu-threadify", "e-precopy-mutex", "per-thread"))
    doc = bql_json(str(run))
    for side in ("dst", "src"):
        end = check_against_walk(doc["processes"][side], events_of(per_thread(run, side)))
        assert end["holder"] is None and end["deadlock"] == []


@pytest.mark.slow
def test_colo_7_2_secondary_and_primary() -> None:
    run = need(REAL / "qemu-7.2-colo" / "b-colo-periodic-mutex")
    doc = bql_json(str(run / "dst.trace.gz"), str(run / "src.trace.gz"))
    for side in ("dst", "src"):
        end = check_against_walk(doc["processes"][side], events_of({run / f"{side}.trace.gz": None}))
        assert end["deadlock"] == []
        # The main thread re-took the BQL on a condition-variable wake-up (run_on_cpu) last.
        assert end["holder"]["site"] == "cpus-common.c:162"


@pytest.mark.slow
def test_colo_threadify_per_thread() -> None:
    run = need(REAL / "qemu-threadify-colo" / "b-colo-periodic-mutex" / "per-thread")
    doc = bql_json(str(run))
    for side in ("dst", "src"):
        end = check_against_walk(doc["processes"][side], events_of(per_thread(run, side)))
        assert end["deadlock"] == []


def test_without_thread_ids_the_holder_is_told_by_call_site() -> None:
    path = Path(sample("qemu-threadify", "e-precopy-mutex", "dst.trace.xz"))
    doc = bql_json(str(path))["bql"]
    assert doc["attribution"] == "call-site"
    events = events_of({path: None})
    bql = bql_address(events)
    ours = [e for e in events if e.get("addr") == bql and e["ev"] != "qemu_mutex_lock"]
    end = doc["at_end"]
    if ours[-1]["ev"] == "qemu_mutex_locked":
        assert end["holder"]["since_ns"] // 1000 == ours[-1]["us"]
    else:
        assert end["holder"] is None
    assert end["deadlock"] is None and "no thread ids" in end["note"]


# ------------------------------------------------------------------ generated deadlocks
BQL = "0x5607aa000040"
M1, M2 = "0x5607aa100000", "0x5607aa200000"
WORDS = {"lock": "waiting on", "locked": "taken", "unlock": "released"}


def line(us: int, tid: int, kind: str, addr: str, site: str) -> str:
    if kind == "event":  # another trace event: ``addr`` holds its name and arguments
        return f"{tid}@1796409839.{us:06d}:{addr}"
    return f"{tid}@1796409839.{us:06d}:qemu_mutex_{kind} {WORDS[kind]} mutex {addr} (../../{site})"


def write_trace(tmp: Path, lines: list[tuple[int, str, str, str]], names: dict[int, str]) -> tuple[str, str]:
    """The lines (tid, kind, mutex, site) one microsecond apart, and a thread-name sidecar."""
    trace = tmp / "dst.trace"
    trace.write_text("\n".join(line(i + 1, *x) for i, x in enumerate(lines)) + "\n", encoding="utf-8")
    threads = tmp / "dst-threads.json"
    threads.write_text(
        json.dumps({"tid_to_name": {str(t): n for t, n in names.items()}, "main_thread_tid": 100})
    )
    return str(trace), str(threads)


NAMES = {100: "qemu-system-x86", 200: "COLO incoming", 300: "CPU 0/KVM"}


def test_a_thread_waiting_for_the_bql_it_holds_is_a_self_deadlock(tmp_path: Path) -> None:
    trace, threads = write_trace(
        tmp_path,
        [
            (100, "lock", BQL, "util/main-loop.c:318"),
            (100, "locked", BQL, "util/main-loop.c:318"),
            (100, "unlock", BQL, "softmmu/cpus.c:511"),
            (200, "lock", BQL, "migration/colo.c:700"),
            (200, "locked", BQL, "migration/colo.c:700"),
            (200, "unlock", BQL, "cpus-common.c:162"),  # run_on_cpu: waits on a condition variable
            (300, "lock", BQL, "accel/kvm/kvm-all.c:3035"),
            (300, "locked", BQL, "accel/kvm/kvm-all.c:3035"),
            (300, "unlock", BQL, "softmmu/cpus.c:423"),
            (200, "locked", BQL, "cpus-common.c:162"),  # woken: holds the BQL again, no lock before
            (200, "lock", BQL, "migration/colo.c:712"),  # ... and takes it once more
            (100, "lock", BQL, "util/main-loop.c:318"),
            (300, "lock", BQL, "accel/kvm/kvm-all.c:3035"),
        ],
        NAMES,
    )
    end = bql_json(trace, "--threads", threads)["bql"]["at_end"]
    assert end["holder"] == {
        "tid": 200,
        "thread": "COLO incoming",
        "role": end["holder"]["role"],
        "since_ns": 1796409839_000010_000,
        "site": "cpus-common.c:162",
    }
    assert [(w["tid"], w["site"]) for w in end["waiters"]] == [
        (200, "migration/colo.c:712"),
        (100, "util/main-loop.c:318"),
        (300, "accel/kvm/kvm-all.c:3035"),
    ]
    assert [(d["tid"], d["kind"], d["mutex"], d["held_by"]) for d in end["deadlock"]] == [
        (200, "self", BQL, 200)
    ]
    assert end["held_by_non_main"] is True
    text = bql_text(trace, "--threads", threads)
    assert "COLO incoming (200) held the BQL since 0.000 s, taken at cpus-common.c:162" in text
    assert "deadlock: COLO incoming (200) waits for the BQL, which it holds itself" in text
    check = run_cli("check", trace, "--threads", threads, "--rule", "bql.deadlocks == 0")
    assert check.returncode == 1
    held = run_cli("check", trace, "--threads", threads, "--rule", "bql.at_end.held == false")
    assert held.returncode == 1


def test_two_threads_waiting_for_each_others_mutex_are_a_cycle(tmp_path: Path) -> None:
    trace, threads = write_trace(
        tmp_path,
        [
            (100, "lock", BQL, "util/main-loop.c:318"),
            (100, "locked", BQL, "util/main-loop.c:318"),
            (100, "unlock", BQL, "softmmu/cpus.c:511"),
            (200, "lock", M1, "migration/colo.c:100"),
            (200, "locked", M1, "migration/colo.c:100"),
            (300, "lock", M2, "hw/core/cpu-common.c:50"),
            (300, "locked", M2, "hw/core/cpu-common.c:50"),
            (200, "lock", M2, "migration/colo.c:120"),  # 200 holds M1, waits for M2 (300's)
            (300, "lock", M1, "hw/core/cpu-common.c:60"),  # 300 holds M2, waits for M1 (200's)
            (100, "lock", BQL, "util/main-loop.c:318"),
            (100, "locked", BQL, "util/main-loop.c:318"),
        ],
        NAMES,
    )
    end = bql_json(trace, "--threads", threads)["bql"]["at_end"]
    assert end["holder"]["tid"] == 100 and end["waiters"] == []
    assert sorted((d["tid"], d["kind"], d["mutex"], d["held_by"]) for d in end["deadlock"]) == [
        (200, "cycle", M2, 300),
        (300, "cycle", M1, 200),
    ]
    assert end["held_by_non_main"] is False
    text = bql_text(trace, "--threads", threads)
    assert f"COLO incoming (200) waits for mutex {M2}, held by CPU 0/KVM (300)" in text
    deadlocks = run_cli("check", trace, "--threads", threads, "--rule", "bql.deadlocks == 2")
    assert deadlocks.returncode == 0, deadlocks.stdout


def test_a_released_mutex_and_a_lost_release_are_no_deadlock(tmp_path: Path) -> None:
    trace, threads = write_trace(
        tmp_path,
        [
            (100, "lock", BQL, "util/main-loop.c:318"),
            (100, "locked", BQL, "util/main-loop.c:318"),
            (100, "unlock", BQL, "softmmu/cpus.c:511"),
            (200, "lock", M1, "migration/colo.c:100"),
            (200, "locked", M1, "migration/colo.c:100"),  # its release is not in the trace...
            (300, "lock", M1, "hw/core/cpu-common.c:60"),
            (300, "locked", M1, "hw/core/cpu-common.c:60"),  # ... since 300 took M1 after it
            (200, "lock", M1, "migration/colo.c:120"),  # 200 waits for M1, held by 300
            (300, "unlock", M1, "hw/core/cpu-common.c:61"),
            (300, "lock", BQL, "hw/core/cpu-common.c:70"),  # waits for the BQL, held by nobody
            (100, "lock", BQL, "util/main-loop.c:318"),
            (100, "event", "colo_vm_state_change Change 'stop' => 'run'", ""),  # so it got it
        ],
        NAMES,
    )
    end = bql_json(trace, "--threads", threads)["bql"]["at_end"]
    assert end["holder"] is None
    assert [w["tid"] for w in end["waiters"]] == [300]
    assert end["deadlock"] == []
    text = bql_text(trace, "--threads", threads)
    assert "nobody held the BQL; CPU 0/KVM (300) was waiting for it." in text
