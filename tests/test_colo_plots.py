"""COLO figures, Perfetto slices and the HTML report on the real 7.2 COLO run, against a plain
reading of its lines (tests/colo_plain.py)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
from matplotlib.patches import Rectangle

import tracetool
from reports.plots.colo import checkpoint_waterfall, colo_figure, pause_over_time
from tests import colo_plain as plain
from tests.conftest import run_cli, sample
from tests.test_export import abs_ns, events_of, track_names, validate
from tracetool import ColoReport
from tracetool.errors import NotInTrace

RUN = ("qemu-7.2-colo", "b-colo-periodic-mutex")
ARGS = [
    sample(*RUN, "dst.trace.xz"),
    sample(*RUN, "src.trace.xz"),
    "--threads",
    sample(*RUN, "dst-threads.json"),
    "--threads",
    sample(*RUN, "src-threads.json"),
]


@cache
def trace() -> tracetool.Trace:
    return tracetool.load(
        [sample(*RUN, "dst.trace.xz"), sample(*RUN, "src.trace.xz")],
        threads=[sample(*RUN, "dst-threads.json"), sample(*RUN, "src-threads.json")],
    )


@cache
def report() -> ColoReport:
    return tracetool.run_analysis(trace(), "colo")


@cache
def dst_lines() -> list[plain.Line]:
    return plain.read_72(sample(*RUN, "dst.trace.xz"))


@cache
def plain_secondary() -> list[plain.PlainCheckpoint]:
    ls = dst_lines()
    return plain.walk_secondary(plain.of_thread(ls, plain.busiest_colo_thread(ls)))


def ms(a: int | None, b: int | None) -> float | None:
    v = plain.us(a, b)
    return None if v is None else v / 1000.0


def test_waterfall_stacks_the_parts_of_each_pause() -> None:
    fig = checkpoint_waterfall(report())
    bars = {p.get_gid(): p for p in fig.axes[0].patches if isinstance(p, Rectangle) and p.get_gid()}
    for k, c in enumerate(plain_secondary(), 1):
        flush = ms(c.get("flush_begin"), c.get("flush_end"))
        ram = ms(c.get("ram_start"), c.get("ram_end"))
        assert bars[f"flush_us:{k}"].get_height() == pytest.approx(flush or 0.0)
        assert bars[f"ram_load_us:{k}"].get_height() == pytest.approx(ram or 0.0)
        top = bars[f"device_load_us:{k}"]
        pause = ms(c.get("stop"), c.get("resume"))
        assert top.get_y() + top.get_height() == pytest.approx(pause)  # the parts tile the pause
        assert bool(top.get_hatch()) == ("loaded" not in c.times)  # the cut checkpoint is hatched


def test_pauses_over_time_on_the_colo_time_axis() -> None:
    fig = pause_over_time(report())
    lines = {ln.get_gid(): ln for ln in fig.axes[0].get_lines()}
    zero = next(x.ns for x in dst_lines() if x.name == "migrate_set_state" and x.args == "new state colo")
    want = [
        ((c.request - zero) / 1e9, ms(c.get("stop"), c.get("resume")))
        for c in plain_secondary()
        if c.get("resume") is not None
    ]
    got = lines["pause:secondary"]
    assert list(got.get_xdata()) == pytest.approx([w[0] for w in want])
    assert list(got.get_ydata()) == pytest.approx([w[1] for w in want])
    asked = next(x.ns for x in dst_lines() if x.name == "qmp_enter_x_colo_lost_heartbeat")
    assert lines["failover:dst"].get_xdata()[0] == pytest.approx((asked - zero) / 1e9)
    assert "pause:primary" in lines


def test_pauses_over_time_from_the_traces_first_event_as_every_output() -> None:
    """``plot colo`` and the report count from the trace's first event, like the text."""
    first = min(x.ns for x in dst_lines() + plain.read_72(sample(*RUN, "src.trace.xz")))
    fig = pause_over_time(report(), start_ns=first)
    got = {ln.get_gid(): ln for ln in fig.axes[0].get_lines()}["pause:secondary"]
    want = [(c.request - first) / 1e9 for c in plain_secondary() if c.get("resume") is not None]
    assert list(got.get_xdata()) == pytest.approx(want)
    assert fig.axes[0].get_xlabel() == "time (s) since the trace's first event"


def test_figure_of_a_trace_without_colo_says_so() -> None:
    empty = tracetool.analyze_colo(tracetool.load(sample("qemu-7.2", "a-precopy-plain", "dst.trace.xz")))
    with pytest.raises(NotInTrace, match="no COLO"):
        colo_figure(empty)
    r = run_cli("plot", "colo", sample("qemu-7.2", "a-precopy-plain", "dst.trace.xz"), "-o", "/tmp/x.png")
    assert r.returncode == 2 and "not in this trace" in r.stderr


def test_plot_colo_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "colo.png"
    r = run_cli("plot", "colo", *ARGS, "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_perfetto_has_the_checkpoints_on_the_colo_thread(tmp_path: Path) -> None:
    out = tmp_path / "colo.json"
    r = run_cli("export", *ARGS, "--to", "perfetto", "-o", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert validate(doc) == []
    names = track_names(doc)
    colo_tid = plain.busiest_colo_thread(dst_lines())
    lane = names[next((e["pid"], e["tid"]) for e in events_of(doc, "X") if e["tid"] == colo_tid)]
    # On the COLO thread's track, or on its overflow track where a slice would overlap partially.
    slices = [e for e in events_of(doc, "X", "colo") if names[(e["pid"], e["tid"])].startswith(lane)]
    assert lane == "COLO incoming"
    assert sum(e["tid"] == colo_tid for e in slices) > 0.9 * len(slices)
    checkpoints = [e for e in slices if e["name"].startswith("checkpoint ")]
    want = plain_secondary()
    assert [e["args"]["checkpoint"] for e in checkpoints] == list(range(1, len(want) + 1))
    assert checkpoints[-1]["name"] == "checkpoint 15 (cut in device-load)"
    flushes = [e for e in slices if e["name"] == "RAM-cache flush"]
    assert [abs_ns(doc, e) for e in flushes] == [(c.times["flush_begin"], c.times["flush_end"]) for c in want]
    pauses = sorted((e for e in slices if e["name"] == "pause"), key=lambda e: e["ts"])
    assert [abs_ns(doc, e) for e in pauses] == [(c.times["stop"], c.times["resume"]) for c in want]


@pytest.mark.slow
def test_html_report_shows_the_colo_figure(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    r = run_cli("report", *ARGS, "-o", str(out))
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    section = html[html.index('id="sec-colo"') :]
    assert "<img" in section.split("</section>")[0]
    assert "COLO checkpoints: the parts of each pause" in section


def test_notebook_shows_a_colo_report() -> None:
    from reports.notebook import colo_html, formatters

    assert formatters()[ColoReport] is colo_html
    page = colo_html(report())
    done = sum("loaded" in c.times for c in plain_secondary())
    assert f"{len(plain_secondary())} checkpoints, {done} completed" in page
    assert "COLO incoming" in page and "<script" not in page
