"""When the trace ended: what each thread did last in a run that stops without a final migration
state, checked against a plain walk of the lines; nothing to show for a finished migration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tracetool
from tests.conftest import run_cli, sample
from tests.test_bql_at_end import events_of, lines_of
from tracetool._analyses.trace_end import analyze_trace_end
from tracetool._timeline.builder import build_timeline

KILLED = Path(sample("qemu-7.2", "f3-postcopy-dst-killed"))
DONE = Path(sample("qemu-7.2", "e-precopy-mutex"))


def last_states(path: Path) -> str | None:
    """The last ``migrate_set_state`` state of a log file."""
    state = None
    for e in events_of({path: None}):
        if e["ev"] == "migrate_set_state":
            state = e["args"].rsplit(" ", 1)[-1]
    return state


@pytest.fixture(scope="module")
def killed() -> tracetool.Trace:
    return tracetool.load(str(KILLED / "dst.trace.xz"), threads=[str(KILLED / "dst-threads.json")])


def test_killed_destination_each_thread_s_last_event(killed: tracetool.Trace) -> None:
    end = analyze_trace_end(killed)
    assert not end.empty and end.issue_count == 0
    doc = end.to_json()
    events = events_of({KILLED / "dst.trace.xz": None})
    last: dict[int, dict[str, Any]] = {}
    for e in events:
        last[e["tid"]] = e
    ended_us = max(e["us"] for e in events)
    assert doc["ended_ns"] // 1000 == ended_us
    assert doc["final_state"] == {"src": None, "dst": last_states(KILLED / "dst.trace.xz")}
    assert doc["final_state"]["dst"] == "postcopy-active"
    got = {t["tid"]: t for t in doc["threads"]}
    assert set(got) == set(last)
    for tid, e in last.items():
        assert got[tid]["last_event"] == e["ev"]
        assert got[tid]["last_ns"] // 1000 == e["us"]
        assert got[tid]["since_us"] == pytest.approx(ended_us - e["us"], abs=1)
    names = json.loads((KILLED / "dst-threads.json").read_text())["tid_to_name"]
    assert {t["thread"] for t in doc["threads"]} <= set(names.values())


def test_open_spans_are_the_timeline_s_unclosed_spans(killed: tracetool.Trace) -> None:
    doc = analyze_trace_end(killed).to_json()
    spans = build_timeline(killed).spans
    unclosed = spans[~spans["closed"].to_numpy(dtype=bool)]
    want = sorted(
        (int(s["tid"]), str(s["kind"]), str(s["name"]), int(s["start_ns"]))
        for s in unclosed.to_dict("records")
    )
    got = sorted(
        (t["tid"], s["kind"], s["name"], s["start_ns"]) for t in doc["threads"] for s in t["open_spans"]
    )
    assert got == want
    # The listen thread was still in the postcopy phase when the destination was killed.
    listen = next(t for t in doc["threads"] if t["role"] == "listen")
    assert ("phase", "postcopy") in {(s["kind"], s["name"]) for s in listen["open_spans"]}


def test_a_finished_migration_has_nothing_to_show() -> None:
    for side in ("dst", "src"):
        assert last_states(DONE / f"{side}.trace.xz") == "completed"
    out = run_cli("report", str(DONE / "dst.trace.xz"), str(DONE / "src.trace.xz"), "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert list(doc) == ["summary", "phases", "downtime", "bql", "trace_end", "preempt", "colo", "notes"]
    assert doc["trace_end"] is None
    assert doc["notes"]["trace_end"] == [
        "the trace ends with a final migration state (src: completed, dst: completed)"
    ]
    text = run_cli("bql", str(DONE / "dst.trace.xz")).stdout
    assert "what each thread did last" not in text


def test_bql_and_report_text_show_the_end_of_a_killed_run() -> None:
    args = (str(KILLED / "dst.trace.xz"), "--threads", str(KILLED / "dst-threads.json"))
    bql = run_cli("bql", *args)
    assert bql.returncode == 0, bql.stderr
    assert "not in this trace: enable qemu_mutex_lock" in bql.stdout  # no mutex events here
    assert "The trace ends without a final migration state (dst last in 'postcopy-active')" in bql.stdout
    assert "ram_load_complete" in bql.stdout  # the listen thread's last event
    report = run_cli("report", *args)
    assert report.returncode == 0, report.stderr
    assert "When the trace ended" in report.stdout
    data = json.loads(run_cli("report", *args, "--format", "json").stdout)
    assert data["trace_end"]["final_state"] == {"src": None, "dst": "postcopy-active"}
    assert data["notes"]["trace_end"] == []


def test_processes_of_no_known_side_are_judged_each_by_its_own_states() -> None:
    # Both QEMUs in one ftrace buffer without the TGID column: one process, no side.
    path = Path(sample("qemu-threadify-ftrace", "e-precopy-markers-only", "ftrace.txt.xz"))
    states = [line.rsplit(" ", 1)[-1] for line in lines_of(path) if "migrate_set_state" in line]
    end = analyze_trace_end(tracetool.load(str(path)))
    (label,) = [k for k in end.to_json()["final_state"] if k not in ("src", "dst")]
    assert end.to_json()["final_state"][label] == states[-1] == "completed"
    assert end.empty
