"""Postcopy preempt waits and page-request latency on the real postcopy traces, checked
against plain walks over the trace lines."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest

import tracetool
from tests.conftest import read_lines, run_cli, sample
from tracetool._analyses.preempt import PreemptReport, analyze_preempt, channel_by_thread
from tracetool._timeline.builder import build_timeline

LINE_72 = re.compile(rb"^(\d+)@(\d+)\.(\d{6}):(\w+) ?(.*)$")
LINE_ISO = re.compile(rb"^\S+ (\w+) ?(.*)$")


@cache
def waits(*paths: str) -> PreemptReport:
    return analyze_preempt(tracetool.load(list(paths)))


@cache
def plain_72(path: str) -> list[tuple[int, int, str, str]]:
    """(tid, ts_us, event, args) of every event line."""
    return [
        (int(m[1]), int(m[2]) * 1_000_000 + int(m[3]), m[4].decode(), m[5].decode())
        for m in map(LINE_72.match, read_lines(path))
        if m
    ]


def plain_page_requests(lines: list[tuple[int, int, str, str]]) -> tuple[list[float], int]:
    """add -> del latencies (µs) by address, and how many adds never saw their del."""
    pending: dict[str, int] = {}
    done = []
    for _, ts, ev, args in lines:
        if ev == "postcopy_page_req_add":
            pending[args.split()[3]] = ts
        elif ev == "postcopy_page_req_del" and args.split()[3] in pending:
            done.append(float(ts - pending.pop(args.split()[3])))
    return done, len(pending)


def plain_channels(lines: list[tuple[int, int, str, str]]) -> list[tuple[int, int | None]]:
    """(start µs, channel) of every answered request: the last fault for its host address
    before the request gives the page's RAM offset, the last ram_load_postcopy_loop of that
    offset before the answer gives the channel."""
    offset_of: dict[int, int] = {}
    chan_of: dict[int, int] = {}
    pending: dict[str, tuple[int, int | None]] = {}
    out: list[tuple[int, int | None]] = []
    for _, ts, ev, args in lines:
        kv = dict(x.split("=", 1) for x in args.split() if "=" in x)
        if ev == "postcopy_ram_fault_thread_request":
            offset_of[int(kv["HVA"], 16)] = int(kv["offset"], 16)
        elif ev == "ram_load_postcopy_loop":
            chan_of[int(kv["addr"], 16)] = int(kv["chan"])
        elif ev == "postcopy_page_req_add":
            pending[args.split()[3]] = (ts, offset_of.get(int(args.split()[3], 16)))
        elif ev == "postcopy_page_req_del" and args.split()[3] in pending:
            start, offset = pending.pop(args.split()[3])
            out.append((start, None if offset is None else chan_of.get(offset)))
    return out


D72 = sample("qemu-7.2/d-postcopy-preempt", "dst.trace.xz")
D72_THREADS = sample("qemu-7.2/d-postcopy-preempt", "dst-threads.json")
C72 = sample("qemu-7.2/c-postcopy", "dst.trace.xz")
F3 = sample("qemu-7.2/f3-postcopy-dst-killed", "dst.trace.xz")


def test_72_preempt_thread_did_not_wait_because_the_channel_came_first() -> None:
    lines = plain_72(D72)
    ready = next(ts for _, ts, ev, _ in lines if ev == "postcopy_preempt_new_channel")
    entry = next(ts for _, ts, ev, _ in lines if ev == "postcopy_preempt_thread_entry")
    assert ready < entry  # QEMU 7.2 opens the preempt channel at the start of the migration
    r = waits(D72)
    assert r.enabled and r.postcopy
    assert r.thread_wait_us == 0.0
    assert r.channel_ready_ns == ready * 1000 and r.thread_entry_ns == entry * 1000


def test_pages_per_channel_equal_a_plain_count() -> None:
    counts: dict[str, int] = {}
    for raw in read_lines(D72):
        m = re.search(rb"ram_load_postcopy_loop chan=(\d+) ", raw)
        if m:
            counts[m[1].decode()] = counts.get(m[1].decode(), 0) + 1
    r = waits(D72)
    assert r.pages_by_channel == counts
    assert counts["1"] == 128  # the preempt channel did carry pages in this run


@pytest.mark.parametrize("path", [D72, F3])
def test_page_request_latency_equals_a_plain_walk(path: str) -> None:
    done, unmatched = plain_page_requests(plain_72(path))
    pr = waits(path).page_requests
    assert pr["count"] == len(done) + unmatched
    assert pr["unmatched"] == unmatched
    assert pr["p50_us"] == pytest.approx(np.percentile(done, 50))
    assert pr["p99_us"] == pytest.approx(np.percentile(done, 99))
    assert pr["max_us"] == max(done)


@pytest.mark.parametrize("path", [D72, F3])
def test_page_request_rows_equal_a_plain_walk(path: str) -> None:
    done, unmatched = plain_page_requests(plain_72(path))
    req = waits(path).requests
    closed = req["closed"].to_numpy(dtype=bool)
    assert sorted(req[closed]["duration_us"].tolist()) == sorted(done)
    assert int((~closed).sum()) == unmatched
    # the JSON's summary is this frame's: the same requests, the same percentiles
    assert waits(path).page_requests["count"] == len(req)


def test_page_requests_carry_the_channel_their_page_came_on() -> None:
    trace = tracetool.load(D72, threads=[D72_THREADS])
    req = analyze_preempt(trace).requests
    assert len(req) == 604 and (req["channel_from"] == "page").all()
    got = sorted(zip((req["start_ns"] // 1000).tolist(), req["channel"].astype(int).tolist(), strict=True))
    assert got == sorted(plain_channels(plain_72(D72)))
    # the channel from the page agrees with the answering thread (fault-fast = preempt = 1),
    # which is also what the fallback for traces without ram_load_postcopy_loop says
    ends = req["end_row"].astype(int).to_numpy()
    roles = trace.threads["role"].astype(str).to_numpy()[trace.row_thread[ends]]
    assert (req["channel"].to_numpy(dtype=int) == np.where(roles == "preempt", 1, 0)).all()
    spans = build_timeline(trace).of_kind("page-request").reset_index(drop=True)
    by_thread = channel_by_thread(trace, spans)
    assert (np.asarray(by_thread, dtype=int) == req["channel"].to_numpy(dtype=int)).all()
    assert (req["channel"] == 1).sum() == 127


def test_page_request_notes_name_the_events_to_enable() -> None:
    r = waits(sample("qemu-7.2/a-precopy-plain", "dst.trace.xz"))
    assert r.requests.empty
    assert r.requests_note == (
        "not in this trace: enable postcopy_page_req_add, postcopy_page_req_del (for postcopy page requests)"
    )
    assert waits(D72).requests_note is None and waits(D72).channel_note is None


def test_killed_destination_leaves_requests_unanswered() -> None:
    assert waits(F3).page_requests["unmatched"] >= 1


def test_postcopy_without_preempt_says_so() -> None:
    r = waits(C72)
    assert r.postcopy and not r.enabled
    assert r.thread_wait_us is None
    on_main = sum(1 for raw in read_lines(C72) if b":ram_load_postcopy_loop chan=0 " in raw)
    assert on_main > 0
    assert r.pages_by_channel == {"0": on_main, "1": 0}  # the preempt channel is listed, empty
    assert "postcopy without preempt: no preempt thread, no preempt channel" in r.notes


def test_precopy_trace_has_no_postcopy() -> None:
    r = waits(sample("qemu-7.2/a-precopy-plain", "dst.trace.xz"))
    assert not r.postcopy and not r.enabled
    assert r.packaged_wait_us is None and r.page_requests["count"] == 0


def test_threaded_load_has_no_packaged_wait() -> None:
    d = Path(sample("qemu-threadify/d-postcopy-preempt/per-thread"))
    # plain: in the load thread's own file, the gap from _received to the next section event
    load_file = next(
        p
        for p in d.glob("dst.*.trace.xz")
        if any(b"loadvm_handle_cmd_packaged_received" in raw for raw in read_lines(str(p)))
    )
    lines = [m for m in map(LINE_ISO.match, read_lines(str(load_file))) if m]
    raw_ts = [raw.split(b" ", 1)[0] for raw in read_lines(str(load_file)) if LINE_ISO.match(raw)]
    i = next(k for k, m in enumerate(lines) if m[1] == b"loadvm_handle_cmd_packaged_received")
    j = next(k for k in range(i + 1, len(lines)) if lines[k][1].startswith(b"qemu_loadvm_state_section"))
    gap_us = _iso_us(raw_ts[j]) - _iso_us(raw_ts[i])
    r = waits(str(d))
    assert r.packaged_wait_us == gap_us
    assert r.packaged_wait_us < 100  # ~0: mig/dst/main loads while the main loop accepts
    assert r.enabled and r.thread_wait_us == 0.0


def _iso_us(stamp: bytes) -> float:
    from datetime import datetime

    dt = datetime.fromisoformat(stamp.decode().replace("Z", "+00:00"))
    return dt.timestamp() * 1e6


def test_source_side_counts_the_preempt_events() -> None:
    d = "qemu-threadify/d-postcopy-preempt"
    sent = sum(
        1 for raw in read_lines(sample(d, "src.trace.xz")) if b" postcopy_preempt_send_host_page " in raw
    )
    r = waits(sample(d, "dst.trace.xz"), sample(d, "src.trace.xz"))
    assert r.source is not None
    assert r.source["send_host_page"] == sent == 3054
    assert r.source["switch_channel"] == 0  # this QEMU no longer switches channels per page
    assert r.source["enabled"] is True


def test_preempt_json_document_keys() -> None:
    res = run_cli("preempt", D72, "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)["preempt"]
    assert {
        "enabled",
        "thread_wait_us",
        "packaged_wait_us",
        "page_requests",
        "pages_by_channel",
        "source",
        "notes",
    } <= set(doc)
    assert {"count", "p50_us", "p99_us", "max_us", "unmatched"} <= set(doc["page_requests"])
    assert doc["source"] is None and doc["enabled"] is True
    assert set(doc["pages_by_channel"]) == {"0", "1"}


def test_a_channel_that_comes_late_is_waited_for(tmp_path: Path) -> None:
    # Edge case not in the recordings (a slow channel, e.g. a TLS handshake): the same real run
    # with the accept moved to 1.5 ms after the preempt thread started.
    lines = list(read_lines(D72))
    ready = next(i for i, raw in enumerate(lines) if b":postcopy_preempt_new_channel" in raw)
    entry = next(i for i, raw in enumerate(lines) if b":postcopy_preempt_thread_entry" in raw)
    m = LINE_72.match(lines[entry])
    assert m is not None
    late = int(m[2]) * 1_000_000 + int(m[3]) + 1500
    tid = lines[ready].split(b"@", 1)[0]
    moved = b"%s@%d.%06d:postcopy_preempt_new_channel " % (tid, late // 1_000_000, late % 1_000_000)
    rest = lines[:ready] + lines[ready + 1 :]
    at = next(
        i
        for i, raw in enumerate(rest)
        if (x := LINE_72.match(raw)) is not None and i > entry and int(x[2]) * 1_000_000 + int(x[3]) > late
    )
    path = tmp_path / "late.trace"
    path.write_bytes(b"\n".join([*rest[:at], moved, *rest[at:]]) + b"\n")
    r = analyze_preempt(tracetool.load(str(path)))
    assert r.thread_wait_us == 1500.0
    assert not any("did not wait" in n for n in r.notes)
