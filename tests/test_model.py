"""The Trace model on real traces: ordering, DataFrames, typed fields, thread names and roles."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tracetool
from parsers.segment import NO_TIME
from tests.conftest import read_lines, sample
from tracetool._model.sidecar import parse_thread_map
from tracetool.errors import UsageError

E72 = ("qemu-7.2", "e-precopy-mutex")
TFY = ("qemu-threadify", "e-precopy-mutex")


@pytest.fixture(scope="module")
def t72() -> tracetool.Trace:
    return tracetool.load(sample(*E72, "dst.trace.xz"), threads=[sample(*E72, "dst-threads.json")])


@pytest.fixture(scope="module")
def tfy_per_thread() -> tracetool.Trace:
    d = sample(*TFY, "per-thread")
    return tracetool.load(d, threads=[f"{d}/dst-threads.json", f"{d}/src-threads.json"])


def test_events_are_time_sorted_and_each_thread_keeps_file_order(t72: tracetool.Trace) -> None:
    ev = t72.events
    assert ev["ts_ns"].is_monotonic_increasing
    # Within a thread the order of lines in the file is kept (line numbers increase).
    for _, g in ev.groupby("tid", observed=True):
        assert g["line"].is_monotonic_increasing
    # The file itself has cross-thread back-steps, so sorting really moved lines.
    assert not ev.sort_values("line")["ts_ns"].is_monotonic_increasing


def test_events_frame_shape(t72: tracetool.Trace) -> None:
    ev = t72.events
    assert list(ev.columns) == [
        "ts_ns",
        "time",
        "process",
        "pid",
        "tid",
        "thread",
        "role",
        "event",
        "args",
        "source",
        "line",
        "flags",
    ]
    assert ev["ts_ns"].dtype == np.int64
    assert isinstance(ev["time"].dtype, pd.DatetimeTZDtype)
    assert ev["event"].dtype == "category"
    first = next(read_lines(sample(*E72, "dst.trace.xz"))).decode()
    row = ev[ev["line"] == 1].iloc[0]
    tid, rest = first.split("@", 1)
    stamp, body = rest.split(":", 1)
    name, args = body.split(" ", 1)
    assert (row["tid"], row["event"], row["args"]) == (int(tid), name, args)
    sec, usec = stamp.split(".")
    assert row["ts_ns"] == int(sec) * 10**9 + int(usec) * 1000
    assert row["time"] == pd.Timestamp(row["ts_ns"], unit="ns", tz="UTC")


def test_typed_fields_match_the_raw_text(t72: tracetool.Trace) -> None:
    f = t72.fields("qemu_mutex_locked")
    assert f["decoded"].all()
    ev = t72.events.loc[f.index]
    pattern = re.compile(r"taken mutex (0x[0-9a-f]+) \((.*):(\d+)\)")
    for (_, fields), text in zip(f.head(500).iterrows(), ev["args"].head(500), strict=True):
        m = pattern.fullmatch(text)
        assert m, text
        assert fields["mutex"] == int(m.group(1), 16)
        assert fields["file"] == m.group(2)
        assert fields["line"] == int(m.group(3))


def test_thread_names_and_roles_on_7_2(t72: tracetool.Trace) -> None:
    sidecar = json.loads(Path(sample(*E72, "dst-threads.json")).read_text())
    th = t72.threads.set_index("tid")
    main = sidecar["pid"]
    assert th.loc[main, "role"] == "main"
    assert bool(th.loc[main, "carries_load"])  # the coroutine load runs on the main thread
    vcpu = next(int(t) for t, n in sidecar["tid_to_name"].items() if n.startswith("CPU "))
    assert th.loc[vcpu, "role"] == "vcpu"
    for tid, name in sidecar["tid_to_name"].items():
        if int(tid) in th.index:
            assert th.loc[int(tid), "name"] == name
    assert t72.processes.iloc[0]["side"] == "dst"


def test_thread_names_and_roles_on_threadify(tfy_per_thread: tracetool.Trace) -> None:
    th = tfy_per_thread.threads
    load = th[th["name"] == "mig/dst/main"]
    assert len(load) == 1 and load.iloc[0]["role"] == "load" and bool(load.iloc[0]["carries_load"])
    save = th[th["name"] == "mig/src/main"]
    assert save.iloc[0]["role"] == "save"
    dst_main = th[(th["process"] == "dst") & (th["role"] == "main")]
    assert len(dst_main) == 1 and not bool(dst_main.iloc[0]["carries_load"])
    assert set(tfy_per_thread.processes["side"]) == {"dst", "src"}


def test_per_thread_counts_match_the_files(tfy_per_thread: tracetool.Trace) -> None:
    d = Path(sample(*TFY, "per-thread"))
    th = tfy_per_thread.threads
    for f in sorted(d.glob("*.trace.xz")):
        side, tid = f.name.split(".")[:2]
        lines = sum(1 for _ in read_lines(str(f)))
        row = th[(th["process"] == side) & (th["tid"] == int(tid))]
        assert int(row["events"].iloc[0]) == lines, f.name


def test_event_counts_equal_a_plain_count(t72: tracetool.Trace) -> None:
    plain = Counter(
        line.split(b":", 1)[1].split(b" ", 1)[0].decode() for line in read_lines(sample(*E72, "dst.trace.xz"))
    )
    assert t72.event_counts() == dict(plain)


def test_untimed_trace_keeps_file_order() -> None:
    t = tracetool.load(sample("qemu-7.2", "g-precopy-plain-notimestamp", "dst.trace.xz"))
    assert not t.has_time and t.clock == "none"
    assert (t.ts == NO_TIME).all()
    assert np.array_equal(t.line, np.arange(1, len(t) + 1))
    assert t.threads["role"].tolist() == ["unknown"]


def test_src_and_dst_together() -> None:
    t = tracetool.load(
        [sample(*E72, "dst.trace.xz"), sample(*E72, "src.trace.xz")],
        threads=[sample(*E72, "dst-threads.json"), sample(*E72, "src-threads.json")],
    )
    assert sorted(t.processes["label"]) == ["dst", "src"]
    assert t.events["ts_ns"].is_monotonic_increasing
    save = t.threads[t.threads["role"] == "save"]
    assert len(save) == 1 and save.iloc[0]["process"] == "src"


@pytest.mark.parametrize(
    "data",
    [
        {"1": "a", "2": "mig/dst/main"},
        {"tid_to_name": {"1": "a", "2": "mig/dst/main"}, "pid": 1, "role": "dst"},
        {"threads": {"1": {"names": [{"name": "a"}]}, "2": {"names": ["x", "mig/dst/main"]}}},
    ],
)
def test_sidecar_shapes(data: dict) -> None:
    m = parse_thread_map(data)
    assert m.names == {1: "a", 2: "mig/dst/main"}


def test_bad_sidecar_is_a_usage_error(tmp_path: Path) -> None:
    p = tmp_path / "threads.json"
    p.write_text("{not json")
    with pytest.raises(UsageError, match=r"threads.json:1:2"):
        tracetool.load(sample(*E72, "dst.trace.xz"), threads=[str(p)])
    with pytest.raises(UsageError, match="no such file"):
        tracetool.load(sample(*E72, "dst.trace.xz"), threads=[str(tmp_path / "missing.json")])


def test_directory_side_files_are_skipped() -> None:
    t = tracetool.load(sample(*TFY, "per-thread"))
    assert all(".trace" in p for p in t.inputs["path"])


def test_results_show_as_html_in_notebooks(tfy_per_thread: tracetool.Trace) -> None:
    from reports.notebook import formatters
    from tracetool._analyses.phases import analyze_phases

    shown = formatters()
    bql_report = tracetool.analyze_bql(tfy_per_thread)
    phase_report = analyze_phases(tfy_per_thread)
    bql = shown[type(bql_report)](bql_report)
    phases = shown[type(phase_report)](phase_report)
    assert "<table" in bql and "mig/dst/main" in bql
    assert "<table" in phases and "switchover" in phases
    assert "<script" not in bql + phases
    assert "<table" in shown[tracetool.Trace](tfy_per_thread)


def test_unnamed_multifd_threads_take_their_channel_number(tmp_path: Path) -> None:
    lines = [
        "100@1795694361.000001:qmp_enter_migrate_incoming {}",
        "100@1795694361.000002:loadvm_state_setup ",
        "107@1795694361.000003:multifd_recv_thread_start 0",
        "108@1795694361.000004:multifd_recv_thread_start 1",
        "108@1795694361.000005:multifd_recv_thread_end 1 3 12",
    ]
    p = tmp_path / "dst.trace"
    p.write_text("\n".join(lines) + "\n")
    roles = tracetool.load(str(p)).threads.set_index("tid")["role"].astype(str).to_dict()
    assert roles == {100: "main", 107: "recv_0", 108: "recv_1"}
