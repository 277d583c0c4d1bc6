"""migtrace colo on COLO runs it was not recorded with: traces generated here from the real 7.2
COLO run by cutting it at a point and dropping lines (failover while idle, during a RAM load,
a QEMU that stops tracing mid-checkpoint, lines out of order, no timestamps, clocks that
disagree). Expected values come from a plain reading of the generated lines."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import tracetool
from tests import colo_plain as plain
from tests.conftest import read_lines, run_cli, sample

RUN = ("qemu-7.2-colo", "b-colo-periodic-mutex")


@cache
def raw(side: str) -> tuple[bytes, ...]:
    """The run's lines without the mutex events (no BQL figures are checked here; the
    generated traces load faster)."""
    return tuple(r for r in read_lines(sample(*RUN, f"{side}.trace.xz")) if b":qemu_mutex_" not in r)


@cache
def parsed(side: str) -> tuple[tuple[bytes, plain.Line | None], ...]:
    return tuple((r, plain.parse_72(r, i)) for i, r in enumerate(raw(side), 1))


def colo_tid(side: str) -> int:
    return plain.busiest_colo_thread(x for _, x in parsed(side) if x is not None)


def nth(side: str, k: int, pred: Callable[[plain.Line], bool]) -> plain.Line:
    """The k-th (1-based) line of the side's COLO thread that ``pred`` accepts."""
    tid = colo_tid(side)
    hits = [x for _, x in parsed(side) if x is not None and x.tid == tid and pred(x)]
    return hits[k - 1]


def write(tmp: Path, name: str, keep: Callable[[plain.Line | None], bool], side: str = "dst") -> str:
    path = tmp / name
    path.write_bytes(b"".join(r + b"\n" for r, x in parsed(side) if keep(x)))
    return str(path)


def is_relaunch(x: plain.Line | None) -> bool:
    return x is not None and x.name == "colo_failover_set_state" and x.args == "new state relaunch"


def analyze(path: str, *more: str) -> dict[str, Any]:
    return tracetool.analyze_colo(tracetool.load([path, *more])).to_json()


def secondary(doc: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in doc["processes"] if p["role"] == "secondary")


def plain_checkpoints(path: str) -> list[plain.PlainCheckpoint]:
    ls = plain.read_72(path)
    return plain.walk_secondary(plain.of_thread(ls, plain.busiest_colo_thread(ls)))


def request(x: plain.Line) -> bool:
    return plain.msg(x, "Receive", "checkpoint-request")


# ---------------------------------------------------------------------------------- failover variants
def test_failover_while_idle(tmp_path: Path) -> None:
    """The COLO thread's lines from the 15th request on are dropped: the failover finds the
    secondary between checkpoints (and QEMU sets no relaunch then)."""
    tid, cut = colo_tid("dst"), nth("dst", 15, request)
    path = write(
        tmp_path, "idle.trace", lambda x: not (x and x.tid == tid and x.ns >= cut.ns) and not is_relaunch(x)
    )
    want = plain_checkpoints(path)
    doc = analyze(path)
    p = secondary(doc)
    assert len(p["checkpoints"]) == len(want) == 14
    assert all(c["completed"] for c in p["checkpoints"])
    f = p["failover"]
    asked = next(x for x in plain.read_72(path) if x.name == "qmp_enter_x_colo_lost_heartbeat")
    assert (f["during"], f["checkpoint"], f["request_ns"]) == ("idle", None, asked.ns)
    assert "relaunch" not in [s["state"] for s in f["states"]]
    assert doc["failover"] == {
        "process": "dst",
        "state": "completed",
        "during": "idle",
        "requested_by": "x-colo-lost-heartbeat",
    }
    assert (p["colo_end"], p["colo_end_ns"]) == ("failover", asked.ns)
    assert doc["alignment"] is None  # one side only


def test_failover_during_ram_load(tmp_path: Path) -> None:
    """The COLO thread's lines after the 15th 'vmstate-send' are dropped: at the failover the
    RAM load of checkpoint 15 had not finished."""
    tid = colo_tid("dst")
    cut = nth("dst", 15, lambda x: plain.msg(x, "Receive", "vmstate-send"))
    path = write(
        tmp_path, "ram.trace", lambda x: not (x and x.tid == tid and x.ns > cut.ns) and not is_relaunch(x)
    )
    last_plain = plain_checkpoints(path)[-1]
    asked = next(x for x in plain.read_72(path) if x.name == "qmp_enter_x_colo_lost_heartbeat")
    assert last_plain.get("ram_start") == cut.ns < asked.ns and "ram_end" not in last_plain.times
    doc = analyze(path)
    p = secondary(doc)
    last = p["checkpoints"][-1]
    assert (last["index"], last["completed"], last["cut_in"], last["cut_by"]) == (
        15,
        False,
        "ram-load",
        "failover",
    )
    assert last["end_ns"] == asked.ns
    assert last["ram_load_us"] is None and last["pause_us"] is None
    assert last["wait_us"] == plain.us(last_plain.get("stop"), last_plain.get("ram_start"))
    assert (p["failover"]["during"], p["failover"]["checkpoint"]) == ("ram-load", 15)
    # The VM stopped for checkpoint 15 and never ran again under COLO: paused until the failover.
    assert any(n.startswith("checkpoint 15: COLO stopped the VM") for n in p["notes"])
    paused = sum(
        (c.get("resume") or asked.ns) - c.get("stop")  # type: ignore[operator]
        for c in plain_checkpoints(path)
        if c.get("stop") is not None
    )
    assert p["summary"]["paused_us"] == pytest.approx(paused / 1000.0)
    r = run_cli("check", path, "--rule", "colo.failover.during == ram-load")
    assert r.returncode == 0, r.stdout + r.stderr


def test_trace_that_stops_mid_flush_has_no_failover(tmp_path: Path) -> None:
    """A QEMU that stopped tracing (wedged, killed) inside checkpoint 10's RAM-cache flush."""
    begin = nth("dst", 10, lambda x: x.name == "colo_flush_ram_cache_begin")
    path = write(tmp_path, "wedged.trace", lambda x: x is None or x.ns <= begin.ns)
    doc = analyze(path)
    p = secondary(doc)
    assert len(p["checkpoints"]) == len(plain_checkpoints(path)) == 10
    last = p["checkpoints"][-1]
    assert (last["completed"], last["cut_in"], last["cut_by"]) == (False, "flush", "trace-end")
    assert last["flush_pages"] == plain_checkpoints(path)[-1].pages and last["flush_us"] is None
    assert p["failover"] is None and doc["failover"]["state"] == "none"
    assert p["colo_end"] == "trace-end"
    r = run_cli("check", path, "--rule", "colo.cut{side=secondary} == 1")
    assert r.returncode == 0, r.stdout + r.stderr
    # No failover state in the trace: "none" or "not traced" cannot be told apart.
    r = run_cli("check", path, "--rule", "colo.failover == none")
    assert r.returncode == 1 and "not measurable: enable colo_failover_set_state" in r.stdout


def test_primary_alone_sees_its_peer_go_before_failover() -> None:
    doc = analyze(sample(*RUN, "src.trace.xz"))
    (p,) = doc["processes"]
    assert (p["role"], p["role_from"]) == ("primary", "messages")
    ls = plain.read_72(sample(*RUN, "src.trace.xz"))
    tid = plain.busiest_colo_thread(ls)
    closed = next(x.ns for x in plain.of_thread(ls, tid) if x.name == "qemu_file_fclose")
    f = p["failover"]
    assert f["channel_closed_ns"] == closed < f["request_ns"]
    assert p["colo_end"] == "channel-closed" and all(c["peer"] is None for c in p["checkpoints"])


# ---------------------------------------------------------------------------------- bad input
def test_event_out_of_protocol_order_is_an_issue(tmp_path: Path) -> None:
    """Checkpoint 3's 'vmstate-send' stamped after its flush began: listed with file and line,
    the checkpoint keeps its other steps, --strict fails."""
    moved = nth("dst", 3, lambda x: plain.msg(x, "Receive", "vmstate-send"))
    after = nth("dst", 3, lambda x: x.name == "colo_flush_ram_cache_begin").ns + 1000
    path = tmp_path / "order.trace"
    stamp = f"{moved.tid}@{after // 10**9}.{after % 10**9 // 1000:06d}:".encode()
    path.write_bytes(
        b"".join(
            (stamp + r.split(b":", 1)[1] if x is not None and x.number == moved.number else r) + b"\n"
            for r, x in parsed("dst")
        )
    )
    doc = analyze(str(path))
    assert doc["issues"] == [
        f"{path}:{moved.number}: colo_receive_message out of order in checkpoint 3 of dst"
    ]
    c3 = secondary(doc)["checkpoints"][2]
    assert c3["ram_load_us"] is None and c3["wait_us"] is None and c3["flush_pages"] is not None
    r = run_cli("colo", str(path), "--strict")
    assert r.returncode == 1 and "inconsistencies" in r.stderr


def test_trace_without_timestamps_counts_checkpoints_only(tmp_path: Path) -> None:
    path = tmp_path / "notime.trace"
    path.write_bytes(b"".join(r.split(b":", 1)[1] + b"\n" for r, x in parsed("dst") if x is not None))
    doc = analyze(str(path))
    p = secondary(doc)
    want = sum(1 for _, x in parsed("dst") if x is not None and request(x))
    assert len(p["checkpoints"]) == want
    assert all(c["pause_us"] is None and c["request_ns"] is None for c in p["checkpoints"])
    assert p["summary"]["pause_max_us"] is None and doc["time_zero_ns"] is None
    r = run_cli("colo", str(path))
    assert r.returncode == 0 and "times: none (the trace has no timestamps)" in r.stdout


def test_clocks_that_disagree_are_paired_by_the_messages(tmp_path: Path) -> None:
    """The primary's timestamps moved 3.7 s ahead (two hosts, unsynchronised wall clocks):
    checkpoints still pair, through the messages, and the shift is found."""
    shift = 3_700_000_000
    src = tmp_path / "src.trace"
    out = []
    for r, x in parsed("src"):
        if x is None:
            out.append(r)
            continue
        t = x.ns + shift
        out.append(f"{x.tid}@{t // 10**9}.{t % 10**9 // 1000:06d}:".encode() + r.split(b":", 1)[1])
    src.write_bytes(b"".join(r + b"\n" for r in out))
    dst = write(tmp_path, "dst.trace", lambda x: True)
    doc = analyze(dst, str(src))
    a = doc["alignment"]
    assert a["method"] == "colo-messages" and abs(a["primary_offset_ns"] + shift) < 5_000_000
    received = sum(1 for _, x in parsed("dst") if x is not None and request(x))
    assert [c["peer"] for c in secondary(doc)["checkpoints"]] == list(range(1, received + 1))
    assert any("clocks disagree" in n for n in doc["notes"])
    text = run_cli("colo", dst, str(src), "-f", "json")
    assert json.loads(text.stdout)["alignment"]["method"] == "colo-messages"


@pytest.mark.slow
def test_threadify_run_without_thread_ids(tmp_path: Path) -> None:
    """The threadify per-thread logs merged into one file per process, as QEMU >= 10.1 writes
    them without -d tid: no thread ids, so no COLO thread and no BQL per checkpoint, but the
    checkpoints are still walked from the process's events."""
    folder = sample("qemu-threadify-colo", "b-colo-periodic-mutex", "per-thread")
    paths = []
    for side in ("dst", "src"):
        merged: list[tuple[int, bytes]] = []
        for p in sorted(Path(folder).glob(f"{side}.*.trace*")):
            for i, r in enumerate(read_lines(str(p)), 1):
                x = plain.parse_iso(r, i, 0)
                if x is not None:
                    merged.append((x.ns, r))
        out = tmp_path / f"{side}.trace"
        out.write_bytes(b"".join(r + b"\n" for _, r in sorted(merged, key=lambda v: v[0])))
        paths.append(str(out))
    doc = analyze(*paths)
    want = plain.walk_secondary(plain.read_per_thread(folder, "dst"))  # every thread's lines
    p = secondary(doc)
    assert p["thread"] == {"tid": None, "name": None}
    assert [c["request_ns"] for c in p["checkpoints"]] == [c.request for c in want]
    assert [c["pause_us"] for c in p["checkpoints"]] == [
        plain.us(c.get("stop"), c.get("resume")) for c in want
    ]
    assert all(c["bql_hold_us"] is None and c["bql_wait_us"] is None for c in p["checkpoints"])
    assert any("BQL per checkpoint needs thread ids" in n for n in p["notes"])
    assert [c["peer"] for c in p["checkpoints"]] == list(range(1, len(want) + 1))
