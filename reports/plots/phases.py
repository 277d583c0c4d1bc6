"""The incoming phases as a waterfall, and the slowest device loads."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from parsers.segment import NO_TIME
from reports.console import fmt_us
from reports.plots.common import (
    GRID_COLOR,
    NOTE_COLOR,
    frame_rows,
    kind_color,
    new_figure,
    not_in_trace,
    phase_colors,
    time_axis,
)
from tracetool._analyses.phases import PhaseReport
from tracetool._timeline.rules import rules


def phase_waterfall(phase_report: PhaseReport, top: int = 15) -> Figure:
    """The incoming phases as a waterfall (top) and the ``top`` slowest device loads (bottom).

    Phase bars run from start to end on a time axis from the first phase's start; unclosed
    phases are hatched. Device bars give each device's load time (``idstr #instance`` when a
    device name occurs more than once). Gids: ``phases``, ``devices``.
    """
    ph = phase_report.phases
    if len(ph):
        ph = ph[ph["start_ns"].to_numpy(dtype=np.int64) != NO_TIME]
    if not len(ph):
        raise not_in_trace("phases", "incoming phases")
    dev = phase_report.devices
    if len(dev):
        dev = dev[dev["duration_us"].notna() & dev["closed"].to_numpy(dtype=bool)]
    shown = dev.sort_values("duration_us", ascending=False, kind="stable").head(top)
    nph, ndev = len(ph), len(shown)
    heights = [nph + 1.5] + ([ndev + 1.5] if ndev else [])
    fig = new_figure(12, 1.4 + 0.32 * sum(heights))
    axes = fig.subplots(len(heights), 1, squeeze=False, height_ratios=heights)[:, 0]
    _phase_panel(axes[0], ph, phase_report)
    if ndev:
        _device_panel(axes[1], shown, len(dev), dev)
    else:
        device_events = ", ".join(rules().span_events("device", ends=False))
        fig.text(
            0.01,
            0.005,
            f"no per-device loads in this trace: enable {device_events}",
            fontsize=8,
            color=NOTE_COLOR,
        )
    return fig


def _phase_panel(ax: Axes, ph: pd.DataFrame, report: PhaseReport) -> None:
    ph = ph.assign(_len=ph["end_ns"] - ph["start_ns"]).sort_values(
        ["start_ns", "_len"], ascending=[True, False], kind="stable"
    )
    start = int(ph["start_ns"].min())
    end = int(ph["end_ns"].max())
    axis = time_axis(start, start, end)
    x0 = axis.x(ph["start_ns"].to_numpy(dtype=np.int64))
    x1 = axis.x(ph["end_ns"].to_numpy(dtype=np.int64))
    closed = ph["closed"].to_numpy(dtype=bool)
    names = ph["name"].astype(str).tolist()
    palette = phase_colors(names)
    colors = [palette[n] for n in names]
    bars = ax.barh(
        np.arange(len(ph)), x1 - x0, left=x0, height=0.6, color=colors, edgecolor="#333333", linewidth=0.5
    )
    for patch in bars.patches:
        patch.set_gid("phases")
    for bar, is_closed in zip(bars.patches, closed.tolist(), strict=True):
        if not is_closed:
            bar.set_hatch("///")
    width = max(float(x1.max() - x0.min()), 1e-9)
    for i, (a, b, dur) in enumerate(zip(x0.tolist(), x1.tolist(), ph["duration_us"].tolist(), strict=True)):
        if b - a < 0.004 * width:
            ax.plot([a], [i], marker="|", color="#333333", ms=10)
        text = fmt_us(dur) + ("" if closed[i] else " (unclosed)")
        ax.text(b + 0.005 * width, i, text, va="center", fontsize=8)
    threads = ph["thread"].astype(str).tolist() if "thread" in ph else [""] * len(ph)
    ax.set_yticks(
        range(len(ph)),
        [f"{n}  [{t}]" if t and t != "?" else n for n, t in zip(names, threads, strict=True)],
        fontsize=8,
    )
    ax.set_ylim(len(ph) - 0.4, -0.6)
    ax.set_xlim(float(x0.min()), float(x0.min()) + width * 1.15)
    ax.set_xlabel(axis.label.replace("trace start", "first phase"))
    outcome, proc = report.outcome, report.process
    ax.set_title(
        f"Incoming phases of {proc or 'the destination'}" + (f" — outcome: {outcome}" if outcome else ""),
        fontsize=10,
    )
    ax.grid(axis="x", color=GRID_COLOR, lw=0.5)
    ax.set_axisbelow(True)


def _device_panel(ax: Axes, shown: pd.DataFrame, total: int, dev: pd.DataFrame) -> None:
    counts = dev["idstr"].astype(str).value_counts()
    labels = []
    for r in frame_rows(shown):
        name = str(r["idstr"])
        inst = r.get("instance_id")
        if counts.get(name, 0) > 1 and inst is not None and not pd.isna(inst):
            name += f" #{int(inst)}"
        labels.append(name)
    us = shown["duration_us"].to_numpy(dtype=float)
    scale, unit = (1000.0, "ms") if us.max() >= 2000 else (1.0, "µs")
    d = us / scale
    bars = ax.barh(
        np.arange(len(shown)), d, height=0.6, color=kind_color("device"), edgecolor="#333333", linewidth=0.5
    )
    for patch in bars.patches:
        patch.set_gid("devices")
    for i, (v, u) in enumerate(zip(d.tolist(), us.tolist(), strict=True)):
        ax.text(v, i, f" {fmt_us(u)}", va="center", fontsize=8)
    ax.set_yticks(range(len(shown)), labels, fontsize=8)
    ax.set_ylim(len(shown) - 0.4, -0.6)
    ax.set_xlim(0, float(d.max()) * 1.18 if len(d) else 1)
    ax.set_xlabel(f"device state load time ({unit})")
    ax.set_title(f"Slowest device loads: {len(shown)} of {total}", fontsize=10)
    ax.grid(axis="x", color=GRID_COLOR, lw=0.5)
    ax.set_axisbelow(True)
