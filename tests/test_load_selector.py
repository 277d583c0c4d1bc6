"""``{load=true}``: the thread that ran the incoming load, whichever it is, on QEMU 7.2 (the main
thread's coroutine) and on the threaded load (``mig/dst/main``), checked against a plain walk of
that thread's mutex lines; the thread is found from the sidecar, not from migtrace."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

import tracetool
from tests.conftest import run_cli, sample
from tests.test_bql import mutex_events, plain_bql_address, plain_holds_and_waits
from tracetool._check.evaluate import measure_metric
from tracetool.errors import RulesError

E72 = Path(sample("qemu-7.2", "e-precopy-mutex"))
TFY = Path(sample("qemu-threadify", "e-precopy-mutex", "per-thread"))


def plain_load_tid(build: str) -> int:
    """From the sidecar alone: QEMU 7.2 loads on the main thread (tid == pid), the threaded load
    on the thread named mig/dst/main."""
    if build == "7.2":
        return int(json.loads((E72 / "dst-threads.json").read_text())["pid"])
    names = json.loads((TFY / "dst-threads.json").read_text())["tid_to_name"]
    return next(int(t) for t, n in names.items() if n == "mig/dst/main")


@cache
def plain_holds(build: str) -> dict[int, list[int]]:
    """BQL hold durations (µs) per thread from the destination's raw mutex lines."""
    if build == "7.2":
        events = mutex_events(str(E72 / "dst.trace.xz"))
    else:
        events = []
        for f in sorted(TFY.glob("dst.*.trace.xz")):
            events += mutex_events(str(f), tid=int(f.name.split(".")[1]))
        events.sort(key=lambda e: e["us"])
    holds, _ = plain_holds_and_waits(events, plain_bql_address(events))
    return holds


@cache
def trace(build: str) -> tracetool.Trace:
    if build == "7.2":
        return tracetool.load(str(E72 / "dst.trace.xz"), threads=[str(E72 / "dst-threads.json")])
    return tracetool.load(str(TFY / "dst.*.trace.xz"), threads=[str(TFY / "dst-threads.json")])


@pytest.mark.parametrize("build", ["7.2", "threadify"])
def test_load_true_is_the_load_threads_own_holds(build: str) -> None:
    tid = plain_load_tid(build)
    holds = plain_holds(build)
    mine = holds[tid]
    others = [d for t, ds in holds.items() if t != tid for d in ds]
    assert mine and others
    t = trace(build)
    assert measure_metric(t, "bql.hold.total{load=true}").value == sum(mine)
    assert measure_metric(t, "bql.hold.max{load=true}").value == max(mine)
    assert measure_metric(t, "bql.holds{load=true}").value == len(mine)
    assert measure_metric(t, "bql.hold.total{load=false}").value == sum(others)


def test_on_7_2_role_load_has_nothing_and_load_true_does() -> None:
    t = trace("7.2")
    by_role = measure_metric(t, "bql.hold.total{role=load}")
    assert not by_role.measurable
    by_load = measure_metric(t, "bql.hold.total{load=true}")
    assert by_load.value == sum(plain_holds("7.2")[plain_load_tid("7.2")])


def test_migtrace_check_reads_the_same_figure() -> None:
    total = sum(plain_holds("threadify")[plain_load_tid("threadify")])
    ok = f"bql.hold.total{{load=true}} == {total}us"
    off = f"bql.hold.total{{load=true}} == {total + 1}us"
    args = (str(TFY / "dst.*.trace.xz"), "--threads", str(TFY / "dst-threads.json"))
    assert run_cli("check", *args, "--rule", ok).returncode == 0
    assert run_cli("check", *args, "--rule", off).returncode == 1


def test_without_thread_ids_it_says_why() -> None:
    t = tracetool.load(sample("qemu-threadify", "e-precopy-mutex", "dst.trace.xz"))
    m = measure_metric(t, "bql.hold.total{load=true}")
    assert not m.measurable
    assert m.reason is not None and "which thread ran the incoming load" in m.reason


def test_load_takes_true_or_false() -> None:
    with pytest.raises(RulesError, match="load is true or false"):
        measure_metric(trace("7.2"), "bql.hold.total{load=yes}")
