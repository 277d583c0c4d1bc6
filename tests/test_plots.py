"""The figures, on the real sample traces: lanes, labels and bar counts read off the Figure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import Collection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

import tracetool
from reports.console import fmt_us
from reports.plots.bql import bql_distribution
from reports.plots.common import phase_color, save_figure
from reports.plots.compare import compare_plot
from reports.plots.gantt import gantt
from reports.plots.page_latency import page_latency
from reports.plots.phases import phase_waterfall
from tests.conftest import run_cli, sample
from tracetool._analyses.bql.report import analyze_bql
from tracetool._analyses.phases import analyze_phases
from tracetool._analyses.preempt import PreemptReport, analyze_preempt
from tracetool._model.lanes import thread_label, trace_start_ns
from tracetool._model.trace import Trace
from tracetool._timeline.builder import build_timeline
from tracetool.cli.plot import parse_time
from tracetool.errors import NotInTrace, UsageError

Q72_MUTEX = sample("qemu-7.2", "e-precopy-mutex", "dst.trace.xz")
Q72_MUTEX_THREADS = sample("qemu-7.2", "e-precopy-mutex", "dst-threads.json")
TFY_RUN = sample("qemu-threadify", "e-precopy-mutex", "per-thread")
TFY_RUN_THREADS = sample("qemu-threadify", "e-precopy-mutex", "per-thread", "dst-threads.json")
TFY_NO_TIDS = sample("qemu-threadify", "e-precopy-mutex", "dst.trace.xz")
Q72_PREEMPT = sample("qemu-7.2", "d-postcopy-preempt", "dst.trace.xz")
Q72_PREEMPT_THREADS = sample("qemu-7.2", "d-postcopy-preempt", "dst-threads.json")
Q72_KILLED = sample("qemu-7.2", "f3-postcopy-dst-killed", "dst.trace.xz")
Q72_NO_TIME = sample("qemu-7.2", "g-precopy-plain-notimestamp", "dst.trace.xz")


class Loaded:
    """A trace with its analyses, computed once per test module."""

    def __init__(self, path: str, threads: str | None = None) -> None:
        self.trace: Trace = tracetool.load(path, threads=[threads] if threads else [])
        self.timeline = build_timeline(self.trace)
        self._bql: Any = None
        self._phases: Any = None
        self._preempt: PreemptReport | None = None

    @property
    def bql(self) -> Any:
        if self._bql is None:
            self._bql = analyze_bql(self.trace)
        return self._bql

    @property
    def phases(self) -> Any:
        if self._phases is None:
            self._phases = analyze_phases(self.trace)
        return self._phases

    @property
    def preempt(self) -> PreemptReport:
        if self._preempt is None:
            self._preempt = analyze_preempt(self.trace)
        return self._preempt


@pytest.fixture(scope="module")
def q72() -> Loaded:
    return Loaded(Q72_MUTEX, Q72_MUTEX_THREADS)


@pytest.fixture(scope="module")
def tfy() -> Loaded:
    return Loaded(TFY_RUN, TFY_RUN_THREADS)


@pytest.fixture(scope="module")
def tfy_no_tids() -> Loaded:
    return Loaded(TFY_NO_TIDS)


@pytest.fixture(scope="module")
def preempt() -> Loaded:
    return Loaded(Q72_PREEMPT, Q72_PREEMPT_THREADS)


# ---------------------------------------------------------------------------------- helpers
def lane_labels(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_yticklabels()]


def collections(ax: Axes, prefix: str) -> Iterator[Collection]:
    return (c for c in ax.collections if (c.get_gid() or "").startswith(prefix))


def bar_count(ax: Axes, prefix: str) -> int:
    """Bars drawn in the collections whose gid starts with ``prefix``."""
    return sum(len(c.get_paths()) for c in collections(ax, prefix))


def lane_y(fig: Figure, label: str) -> int:
    return lane_labels(fig).index(label)


def points(c: Collection) -> int:
    """Points of a scatter collection."""
    return len(np.asarray(c.get_offsets()))


def gid(artist: Any) -> str:
    return str(artist.get_gid() or "")


def width(patch: Any) -> float:
    return float(patch.get_width())


def window(
    frame: pd.DataFrame, lo: int, hi: int, start: str = "start_ns", end: str = "end_ns"
) -> pd.DataFrame:
    s = frame[start].astype("Int64")
    e = frame[end].astype("Int64")
    return frame[(s.notna() & e.notna() & (e >= lo) & (s <= hi)).to_numpy(dtype=bool)]


# ---------------------------------------------------------------------------------- gantt
def test_gantt_lanes_bars_and_holds_of_a_72_trace(q72: Loaded) -> None:
    fig = gantt(q72.trace, q72.timeline, q72.bql)
    ax = fig.axes[0]
    assert lane_labels(fig) == [
        "phases",
        "qemu-system-x86 (main+load, 30905)",
        "CPU 0/TCG (vcpu, 30912)",
        "IO mon_iothread (other, 30910)",
        "qemu-system-x86 (other, 30908)",
    ]
    spans = q72.timeline.spans
    for kind in ("section", "device", "phase", "qmp"):
        assert bar_count(ax, f"span:{kind}:") == int((spans["kind"] == kind).sum()), kind
    # the sections and devices are the load's, on the main thread (the coroutine load)
    assert bar_count(ax, "span:device:qemu-system-x86 (main+load, 30905)") == 32
    # holds: every hold with both ends is counted on its holder's lane
    holds = q72.bql.processes["dst"].holds
    timed = holds[holds["start_ns"].notna() & holds["end_ns"].notna()]
    drawn = {c.get_gid(): int(str(c.get_label()).split()[0]) for c in collections(ax, "bql:")}
    assert drawn == {
        "bql:qemu-system-x86 (main+load, 30905)": int((timed["tid"] == 30905).sum()),
        "bql:CPU 0/TCG (vcpu, 30912)": int((timed["tid"] == 30912).sum()),
        "bql:qemu-system-x86 (other, 30908)": int((timed["tid"] == 30908).sum()),
    }
    inst = q72.timeline.instants
    for kind in ("state", "runstate", "vm-state"):
        got = sum(points(c) for c in collections(ax, f"instant:{kind}"))
        assert got == int((inst["kind"] == kind).sum()) > 0, kind
    assert ax.get_xlabel() == "time since trace start (s)"
    # one colour per phase name in the phases lane
    phase_colors = {tuple(fc) for c in collections(ax, "span:phase:") for fc in np.asarray(c.get_facecolor())}
    assert len(phase_colors) == spans[spans["kind"] == "phase"]["name"].nunique() == 9
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"phase", "section", "device", "BQL held", "state"} <= set(legend)


def test_gantt_zooms_to_100ms_and_10us(q72: Loaded) -> None:
    devices = q72.phases.phases.set_index("name").loc["devices"]
    start = int(devices["start_ns"])
    lo, hi = start - 1_000_000, start + 99_000_000
    fig = gantt(q72.trace, q72.timeline, q72.bql, start_ns=lo, end_ns=hi)
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 100.0)
    assert ax.get_xlabel().startswith("time (ms) since ")
    spans = q72.timeline.spans
    dev = window(spans[spans["kind"] == "device"], lo, hi)
    assert bar_count(ax, "span:device:") == len(dev) == 31  # all but the RAM START, 1.6 s earlier
    # bars at least 4% of the window wide carry their name
    shown = window(spans, lo, hi)
    seen = np.minimum(shown["end_ns"], hi) - np.maximum(shown["start_ns"], lo)
    wide = shown[np.asarray(seen >= 0.04 * (hi - lo), dtype=bool)]
    assert (
        sorted(t.get_text() for t in ax.texts)
        == sorted(wide["name"])
        == ["devices", "incoming", "switchover"]
    )

    lo, hi = start + 1_000, start + 11_000
    fig = gantt(q72.trace, q72.timeline, q72.bql, start_ns=lo, end_ns=hi)
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 10.0) and ax.get_xlabel().startswith("time (µs) since ")
    dev = window(spans[spans["kind"] == "device"], lo, hi)
    assert bar_count(ax, "span:device:") == len(dev) >= 1
    assert {t.get_text() for t in ax.texts} >= {str(n) for n in dev["name"]}
    holds = q72.bql.processes["dst"].holds
    assert bar_count(ax, "bql:") == len(window(holds, lo, hi)) >= 1


def test_gantt_of_both_processes_orders_lanes(tfy: Loaded) -> None:
    fig = gantt(tfy.trace, tfy.timeline, tfy.bql)
    labels = lane_labels(fig)
    dst = [x for x in labels if x.startswith("dst · ")]
    src = [x for x in labels if x.startswith("src · ")]
    assert labels == dst + src and len(dst) >= 4 and len(src) >= 4
    assert dst[:4] == [
        "dst · phases",
        "dst · qemu-system-x86 (main, 22760)",
        "dst · mig/dst/main (load, 22774)",
        "dst · CPU 0/TCG (vcpu, 22768)",
    ]
    assert src[:2] == ["src · phases", "src · tid 22761 (main)"]
    ax = fig.axes[0]
    devices = list(collections(ax, "span:device:"))
    assert [c.get_gid() for c in devices] == ["span:device:dst · mig/dst/main (load, 22774)"]
    assert len(devices[0].get_paths()) == 34
    # per-device downtime instants repeat the device bars: not drawn as ticks
    assert (tfy.timeline.instants["kind"] == "downtime").sum() > 0
    assert not list(collections(ax, "instant:downtime"))


def test_gantt_without_thread_ids_has_one_lane(tfy_no_tids: Loaded) -> None:
    fig = gantt(tfy_no_tids.trace, tfy_no_tids.timeline)
    assert lane_labels(fig) == ["phases", "all threads (no thread ids)"]
    assert not list(collections(fig.axes[0], "bql:"))
    assert bar_count(fig.axes[0], "span:section:all threads") == 72


def test_gantt_refuses_traces_without_timestamps_and_empty_windows(q72: Loaded) -> None:
    no_time = tracetool.load(Q72_NO_TIME)
    with pytest.raises(NotInTrace, match="timestamps"):
        gantt(no_time, build_timeline(no_time))
    t0 = trace_start_ns(q72.trace)
    with pytest.raises(UsageError, match="nothing in this time window"):
        gantt(q72.trace, q72.timeline, start_ns=t0 - 10_000, end_ns=t0 - 5_000)


def test_a_phase_has_one_colour_in_every_figure(tfy: Loaded) -> None:
    spans = tfy.timeline.spans
    phases = spans[spans["kind"] == "phase"]
    assert set(phases["process"]) == {"dst", "src"}
    # the Gantt chart: both processes' phases lanes, no two phase names share a colour
    ax = gantt(tfy.trace, tfy.timeline).axes[0]
    drawn = {tuple(fc) for c in collections(ax, "span:phase:") for fc in np.asarray(c.get_facecolor())}
    assert len(drawn) == phases["name"].nunique()
    assert drawn == {to_rgba(phase_color(n)) for n in phases["name"].unique()}
    # the waterfall: each bar, labelled by its phase, in that phase's colour
    top = phase_waterfall(tfy.phases).axes[0]
    names = [t.get_text().split()[0] for t in top.get_yticklabels()]
    bars = [p for p in top.patches if p.get_gid() == "phases"]
    assert len(bars) == len(names) > 5
    assert [tuple(p.get_facecolor()) for p in bars] == [to_rgba(phase_color(n)) for n in names]


def test_gantt_draws_on_a_given_axes(q72: Loaded) -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert gantt(q72.trace, q72.timeline, q72.bql, ax=ax) is fig
    assert lane_labels(fig)[0] == "phases"
    assert bar_count(ax, "span:device:") == int((q72.timeline.spans["kind"] == "device").sum())
    assert not fig.legends and ax.get_legend() is not None


# ---------------------------------------------------------------------------------- BQL
def test_bql_distribution_one_cdf_per_thread_with_percentiles(tfy: Loaded) -> None:
    fig = bql_distribution(tfy.bql)
    assert len(fig.axes) == 4
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "dst: BQL hold durations",
        "dst: BQL wait durations",
        "src: BQL hold durations",
        "src: BQL wait durations",
    ]
    for ax, proc in ((fig.axes[0], "dst"), (fig.axes[2], "src")):
        assert ax.get_xscale() == "log"
        p = tfy.bql.processes[proc]
        threads = p.threads[p.threads["holds"] > 0]
        cdfs = [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("cdf:hold:")]
        assert len(cdfs) == len(threads)
        legend = {t.get_text() for t in ax.get_legend().get_texts()}  # type: ignore[union-attr]
        for r in threads.to_dict("records"):
            label = thread_label(r["name"], r["role"], r["tid"])
            # percentiles as the BQL analysis computed them, written in the legend
            assert (
                f"{label}: {r['holds']} holds, p50 {fmt_us(r['hold_p50_us'])}, p99 {fmt_us(r['hold_p99_us'])}"
            ) in legend
        p50 = [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("p50:hold:")]
        assert len(p50) == len(threads)
        load = next(ln for ln in p50 if "22774" in str(ln.get_gid()) or proc == "src")
        assert list(np.asarray(load.get_ydata())) == [0.5]
    # the same thread has the same colour in the hold and the wait panel
    hold = {
        gid(ln).split(":", 2)[2]: ln.get_color()
        for ln in fig.axes[0].get_lines()
        if gid(ln).startswith("cdf:")
    }
    wait = {
        gid(ln).split(":", 2)[2]: ln.get_color()
        for ln in fig.axes[1].get_lines()
        if gid(ln).startswith("cdf:")
    }
    assert all(hold[k] == wait[k] for k in hold.keys() & wait.keys()) and hold.keys() & wait.keys()


def test_bql_distribution_by_call_site_without_thread_ids(tfy_no_tids: Loaded) -> None:
    fig = bql_distribution(tfy_no_tids.bql)
    assert "per role, from the call site" in fig.axes[0].get_title()
    gids = {ln.get_gid() for ln in fig.axes[0].get_lines()}
    assert {"cdf:hold:load (by call site)", "cdf:hold:main (by call site)"} <= gids


def test_bql_distribution_without_mutex_events_names_them(preempt: Loaded) -> None:
    with pytest.raises(
        NotInTrace, match="not in this trace: enable qemu_mutex_lock, qemu_mutex_locked, qemu_mutex_unlock"
    ):
        bql_distribution(preempt.bql)


# ---------------------------------------------------------------------------------- phases
def test_phase_waterfall_bars_and_slowest_devices(q72: Loaded) -> None:
    report = q72.phases
    fig = phase_waterfall(report, top=5)
    top, bottom = fig.axes
    phase_bars = [p for p in top.patches if p.get_gid() == "phases"]
    assert len(phase_bars) == len(report.phases) == 9
    assert [t.get_text().split()[0] for t in top.get_yticklabels()][:2] == ["incoming", "accept"]
    assert [p.get_gid() for p in bottom.patches].count("devices") == 5
    slowest = report.devices.sort_values("duration_us", ascending=False)["idstr"].head(5).tolist()
    assert [t.get_text() for t in bottom.get_yticklabels()] == slowest
    assert "outcome: completed" in top.get_title()
    assert bottom.get_title() == "Slowest device loads: 5 of 32"


def test_phase_waterfall_names_repeated_devices_by_instance(tfy: Loaded) -> None:
    fig = phase_waterfall(tfy.phases, top=40)
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert len(labels) == 34 and "dma #0" in labels and "dma #1" in labels


# ---------------------------------------------------------------------------------- postcopy
def test_page_latency_split_by_channel(preempt: Loaded) -> None:
    req = preempt.preempt.requests
    assert len(req) == 604 and (req["channel_from"] == "page").all()
    fig = page_latency(preempt.preempt, trace_start_ns(preempt.trace))
    ax = fig.axes[0]
    counts = {gid(c): points(c) for c in ax.collections}
    assert counts == {
        "channel:0": int((req["channel"] == 0).sum()),
        "channel:1": int((req["channel"] == 1).sum()),
    }
    assert counts["channel:1"] > 100 and ax.get_yscale() == "log"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[1].startswith("channel 1 (preempt): 127 requests, p50 ")


def test_page_latency_marks_requests_open_at_the_end() -> None:
    trace = tracetool.load(Q72_KILLED)
    report = analyze_preempt(trace)
    req = report.requests
    fig = page_latency(report, trace_start_ns(trace))
    counts = {gid(c): points(c) for c in fig.axes[0].collections}
    assert counts["unresolved"] == int((~req["closed"]).sum()) > 0
    assert sum(counts.values()) == len(req)


def test_page_latency_needs_postcopy(q72: Loaded) -> None:
    with pytest.raises(NotInTrace, match="enable postcopy_page_req_add, postcopy_page_req_del"):
        page_latency(q72.preempt, trace_start_ns(q72.trace))


def test_page_latency_draws_on_a_given_axes(preempt: Loaded) -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert page_latency(preempt.preempt, trace_start_ns(preempt.trace), ax=ax) is fig
    assert sum(points(c) for c in ax.collections) == len(preempt.preempt.requests)
    assert not fig.legends and ax.get_legend() is not None


# ---------------------------------------------------------------------------------- compare
def test_compare_plot_pairs_phases_and_roles(q72: Loaded, tfy: Loaded) -> None:
    fig = compare_plot((q72.phases, q72.bql), (tfy.phases, tfy.bql), ("7.2", "threadify"))
    left, right = fig.axes
    phases = [t.get_text() for t in left.get_yticklabels()]
    assert phases[:4] == ["incoming", "accept", "setup", "precopy"]
    assert sum(p.get_gid() == "phase:7.2" for p in left.patches) == len(phases)
    roles = [t.get_text() for t in right.get_yticklabels()]
    assert roles[0] == "main" and "load" in roles and "vcpu" in roles
    load = roles.index("load")
    bars = [p for p in right.patches if p.get_gid() == "bql:threadify"]
    total = tfy.bql.primary.threads.set_index("role").loc["load", "hold_total_us"]
    assert width(bars[load]) == pytest.approx(float(total))
    assert width([p for p in right.patches if p.get_gid() == "bql:7.2"][load]) == 0  # coroutine


def test_compare_plot_of_a_comparison(q72: Loaded, tfy: Loaded) -> None:
    from tracetool._analyses.compare import compare

    cmp = compare(q72.trace, tfy.trace, ("7.2", "threadify"))
    fig = compare_plot(cmp)
    right = fig.axes[1]
    labels = [t.get_text() for t in right.get_yticklabels()]
    assert any(x.startswith("load: ") and "mig/dst/main" in x for x in labels), labels
    assert {p.get_gid() for p in right.patches} == {"bql:7.2", "bql:threadify"}


# ---------------------------------------------------------------------------------- files and CLI
def test_save_figure_writes_png_svg_pdf(q72: Loaded, tmp_path: Path) -> None:
    fig = phase_waterfall(q72.phases)
    for ext, magic in (("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")):
        path = tmp_path / f"phases.{ext}"
        save_figure(fig, path)
        assert path.read_bytes()[:5].startswith(magic)
    assert "Slowest device loads" in (tmp_path / "phases.svg").read_text()
    with pytest.raises(UsageError):
        save_figure(fig, tmp_path / "phases.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phases.pdf", "phases.png", "phases.svg"]


def test_parse_time() -> None:
    assert parse_time("1.5", 1000) == 1_500_001_000
    assert parse_time("250ms", 0) == 250_000_000
    assert parse_time("40us", 0) == parse_time("40µs", 0) == 40_000
    assert parse_time("800ns", 5) == 805
    assert parse_time("@1795694364092905000", 0) == 1795694364092905000
    with pytest.raises(UsageError):
        parse_time("soon", 0)


def test_cli_plot(tmp_path: Path) -> None:
    out = tmp_path / "gantt.png"
    run = run_cli("plot", "gantt", Q72_KILLED, "--from", "1.5", "--to", "1600ms", "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"
    run = run_cli("plot", "bql", Q72_KILLED, "-o", str(tmp_path / "bql.png"))
    assert run.returncode == 2
    assert run.stderr == (
        "migtrace: not in this trace: enable qemu_mutex_lock, qemu_mutex_locked, qemu_mutex_unlock\n"
    )
    assert not (tmp_path / "bql.png").exists()
