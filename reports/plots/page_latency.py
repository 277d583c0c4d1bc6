"""Postcopy page-request latency over time, per channel."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from parsers.segment import NO_TIME
from reports.console import fmt_us
from reports.plots.common import (
    CHANNEL_NAMES,
    GRID_COLOR,
    NOTE_COLOR,
    channel_color,
    figure_of,
    legend_if_labelled,
    new_figure,
    time_axis,
)
from tracetool._analyses.preempt import PreemptReport
from tracetool.errors import NotInTrace


def page_latency(preempt: PreemptReport, trace_start_ns: int, ax: Axes | None = None) -> Figure:
    """Postcopy page-request latency (``postcopy_page_req_add`` → ``_del``) over time.

    One point per request of ``preempt.requests`` at its start time (since ``trace_start_ns``,
    see :func:`tracetool._model.lanes.trace_start_ns`), on a log latency axis, coloured by the
    channel its page came on (0 = main, 1 = preempt); requests still open at the end of the
    trace are drawn as crosses at their age then. Draws on ``ax`` when given. Scatter gids:
    ``channel:0``, ``channel:1``, ``channel:unknown``, ``unresolved``.
    """
    req = preempt.requests
    if not len(req):
        raise NotInTrace(preempt.requests_note or "not in this trace: postcopy page requests")
    timed = req[req["start_ns"] != NO_TIME]
    if not len(timed):
        raise NotInTrace("not in this trace: timestamps (for page-request latency)")
    t0 = trace_start_ns
    width = int(timed["end_ns"].max() - timed["start_ns"].min())
    axis = time_axis(t0, t0, t0 + width)
    own_figure = ax is None
    if ax is None:
        fig = new_figure(12, 5.2)
        ax = fig.add_subplot()
    else:
        fig = figure_of(ax)
    done = timed[timed["closed"]]
    chan = done["channel"].astype("Int64")
    groups = [(int(c), done[(chan == c).fillna(False).to_numpy(dtype=bool)]) for c in (0, 1)]
    groups.append((-1, done[chan.isna().to_numpy()]))
    for c, g in groups:
        if not len(g):
            continue
        d = g["duration_us"].to_numpy(dtype=float)
        p50, p99 = (float(v) for v in np.percentile(d, [50, 99]))
        name = CHANNEL_NAMES.get(c, "channel unknown")
        coll = ax.scatter(
            axis.x(g["start_ns"].to_numpy(dtype=np.int64)),
            np.maximum(d, 0.5),
            s=12,
            alpha=0.7,
            color=channel_color(c),
            label=f"{name}: {len(g)} requests, p50 {fmt_us(p50)}, p99 {fmt_us(p99)}",
        )
        coll.set_gid(f"channel:{c if c >= 0 else 'unknown'}")
    open_ = timed[~timed["closed"]]
    if len(open_):
        coll = ax.scatter(
            axis.x(open_["start_ns"].to_numpy(dtype=np.int64)),
            np.maximum(open_["duration_us"].to_numpy(dtype=float), 0.5),
            marker="x",
            color="black",
            s=30,
            label=f"unresolved at trace end: {len(open_)}",
        )
        coll.set_gid("unresolved")
    ax.set_yscale("log")
    ax.set_xlabel(axis.label)
    ax.set_ylabel("page-request latency (µs, log scale)")
    ax.grid(True, color=GRID_COLOR, lw=0.5)
    known = done["channel_from"].dropna().unique().tolist() if len(done) else []
    how = f"channel from {' and '.join(sorted(known))}" if known else "channel not in trace"
    ax.set_title(f"Postcopy page-request latency ({how})", fontsize=10)
    note = preempt.channel_note
    if own_figure:
        legend_if_labelled(fig, ax, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
        if note:
            fig.text(0.01, 0.005, note, fontsize=8, color=NOTE_COLOR)
    else:
        legend_if_labelled(ax, loc="upper right", fontsize=8)
        if note:
            ax.text(0.01, 0.01, note, fontsize=8, color=NOTE_COLOR, transform=ax.transAxes)
    return fig
