"""COLO checkpoints: the parts of each pause stacked per checkpoint, and the pauses over time.

* :func:`checkpoint_waterfall` — one stacked bar per checkpoint of one side (the secondary when
  traced): its pause split into the parts ``migtrace colo`` times (secondary: wait for the
  state, RAM load, device-state receive, RAM-cache flush, device load; primary: save, ack,
  wait for 'vmstate-loaded', resume). A checkpoint that did not complete is hatched and says
  what it was doing. Bar gids: ``PART:INDEX`` (``ram_load_us:3``).
* :func:`pause_over_time` — each side's pauses at their checkpoint's request time on one axis
  (seconds since the trace's first event when the caller gives it, else since COLO start),
  with the failover requests as vertical lines. Line gids: ``pause:secondary``,
  ``pause:primary``, ``failover:LABEL``.
* :func:`colo_figure` — both, one above the other (``migtrace plot colo``).
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from reports.plots.common import GRID_COLOR, NOTE_COLOR, figure_of, legend_if_labelled, new_figure
from tracetool._analyses.colo.colo import ColoProcess, ColoReport
from tracetool._analyses.colo.records import COMPONENT_NAMES, COMPONENTS
from tracetool.errors import NotInTrace

PART_COLORS = ("#9ecae1", "#3182bd", "#fdae6b", "#e6550d", "#31a354", "#756bb1")
SIDE_STYLE = {"secondary": ("C0", "o"), "primary": ("C1", "s")}
NOT_IN_TRACE = "not in this trace: no COLO checkpoints (enable colo_* on both QEMUs)"


def _side(report: ColoReport, role: str | None) -> ColoProcess:
    side = report.side(role) if role else (report.secondary or report.primary)
    if side is None or not side.checkpoints:
        raise NotInTrace(NOT_IN_TRACE if role is None else f"not in this trace: no COLO {role}")
    return side


def checkpoint_waterfall(report: ColoReport, role: str | None = None, ax: Axes | None = None) -> Figure:
    """Stacked parts of each checkpoint's pause (ms) for one side (see module docstring)."""
    side = _side(report, role)
    if ax is None:
        fig = new_figure(12, 4.8)
        ax = fig.add_subplot()
    else:
        fig = figure_of(ax)
    cps = side.checkpoints
    x = np.array([c["index"] for c in cps], dtype=float)
    bottom = np.zeros(len(cps))
    for k, (key, _, _) in enumerate(COMPONENTS[side.role]):
        ms = np.array([0.0 if c[key] is None else c[key] / 1000.0 for c in cps])
        bars = ax.bar(x, ms, bottom=bottom, width=0.7, color=PART_COLORS[k % len(PART_COLORS)])
        bars.set_label(COMPONENT_NAMES[key])
        for bar, c in zip(bars, cps, strict=True):
            bar.set_gid(f"{key}:{c['index']}")
            if not c["completed"]:
                bar.set_hatch("//")
        bottom += ms
    top = float(bottom.max()) if len(bottom) else 0.0
    for c, height in zip(cps, bottom.tolist(), strict=True):
        if not c["completed"]:
            ax.annotate(
                f"cut: {c['cut_in'] or '?'}",
                (c["index"], height),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=7,
                color=NOTE_COLOR,
            )
        elif c["pause_us"] is not None and c["pause_us"] / 1000.0 > 0.5 * top:
            ax.annotate(
                f"{c['pause_us'] / 1000:.0f} ms",
                (c["index"], height),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=7,
            )
    ax.set_xticks(x)
    ax.set_xlabel("checkpoint")
    ax.set_ylabel("pause (ms)")
    ax.grid(True, axis="y", color=GRID_COLOR, lw=0.5)
    ax.set_title(f"COLO checkpoints of {side.label} ({side.role}): the parts of each pause", fontsize=10)
    legend_if_labelled(ax, loc="upper right", fontsize=8, ncol=2, frameon=False)
    return fig


def _at(side: ColoProcess, ns: int | None, zero_ns: int) -> float | None:
    if ns is None:
        return None
    return (ns + side.offset_ns - zero_ns) / 1e9


def pause_over_time(report: ColoReport, ax: Axes | None = None, start_ns: int | None = None) -> Figure:
    """Each side's pauses (ms) at the time of their checkpoint's request, failovers marked;
    times in seconds since ``start_ns`` (the trace's first event, as every other output counts
    them), or since COLO started when it is not given."""
    if not any(p.checkpoints for p in report.processes):
        raise NotInTrace(NOT_IN_TRACE)
    if report.time_zero_ns is None:
        raise NotInTrace("not in this trace: timestamps (for COLO pauses over time)")
    zero_ns = report.time_zero_ns if start_ns is None else start_ns
    zero_name = report.time_zero if start_ns is None else "the trace's first event"
    if ax is None:
        fig = new_figure(12, 4.0)
        ax = fig.add_subplot()
    else:
        fig = figure_of(ax)
    for p in report.processes:
        color, marker = SIDE_STYLE.get(p.role, ("C7", "x"))
        pts = [
            (t, c["pause_us"] / 1000.0)
            for c in p.checkpoints
            if c["pause_us"] is not None and (t := _at(p, c["request_ns"], zero_ns)) is not None
        ]
        if pts:
            xs, ys = zip(*pts, strict=True)
            (line,) = ax.plot(xs, ys, marker=marker, ms=4, lw=1, color=color, label=f"{p.label} ({p.role})")
            line.set_gid(f"pause:{p.role}")
        f = p.failover
        t = _at(p, f.request_ns, zero_ns) if f is not None else None
        if t is not None:
            v = ax.axvline(t, color=color, ls="--", lw=1, label=f"failover asked on {p.label}")
            v.set_gid(f"failover:{p.label}")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_xlabel(f"time (s) since {zero_name}")
    ax.set_ylabel("pause (ms, log scale)")
    ax.grid(True, color=GRID_COLOR, lw=0.5)
    ax.set_title("COLO pauses over time (the VM stopped by each checkpoint)", fontsize=10)
    legend_if_labelled(ax, loc="upper right", fontsize=8, frameon=False)
    return fig


def colo_figure(report: ColoReport, start_ns: int | None = None) -> Figure:
    """The checkpoint waterfall above the pauses over time (times since ``start_ns``, the
    trace's first event, when given)."""
    if report.empty:
        raise NotInTrace(NOT_IN_TRACE)
    fig = new_figure(12, 8.4)
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 2])
    checkpoint_waterfall(report, ax=top)
    if report.time_zero_ns is not None:
        pause_over_time(report, ax=bottom, start_ns=start_ns)
    else:
        bottom.set_axis_off()
        bottom.text(0.5, 0.5, "no timestamps: no pauses over time", ha="center", color=NOTE_COLOR)
    return fig
