"""BQL hold and wait durations per thread as CDFs, one row of panels per process."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reports.console import fmt_us
from reports.plots.common import (
    GRID_COLOR,
    distinct_rows,
    legend_if_labelled,
    new_figure,
    not_in_trace,
    series_color,
)
from tracetool._analyses.bql.report import BqlReport
from tracetool._model.lanes import thread_label
from tracetool.errors import NotInTrace

CDF_POINTS = 1500  # points per CDF line at most


def bql_distribution(bql_report: BqlReport) -> Figure:
    """BQL hold (left) and wait (right) durations per thread as CDFs on a log time axis.

    One row of plots per process with a BQL (destination first); one line per holder (thread,
    or role when the trace has no thread ids), with p50 (circle) and p99 (diamond) marked and
    given in the legend. Durations of 0 µs (below the trace's resolution) are drawn at 0.5 µs.
    Line gids: ``cdf:hold:LABEL``, ``cdf:wait:LABEL``, ``p50:...``, ``p99:...``.
    """
    procs = [
        p for p in bql_report.processes.values() if p.mutex is not None and (len(p.holds) or len(p.waits))
    ]
    if not procs:
        if bql_report.note:
            raise NotInTrace(bql_report.note)
        raise not_in_trace("bql", "BQL holds")
    procs.sort(key=lambda p: (p.side != "dst", p.side != "src", p.process))
    fig = new_figure(13, 0.8 + 5.0 * len(procs))
    axes = fig.subplots(len(procs), 2, squeeze=False)
    for row, p in enumerate(procs):
        holds = p.holds[p.holds["complete"].to_numpy(dtype=bool)]
        order = _holder_order(holds, p.waits, p.attribution)
        colors = {label: series_color(i) for i, label in enumerate(order)}
        for ax, frame, what in ((axes[row][0], holds, "hold"), (axes[row][1], p.waits, "wait")):
            _cdf_panel(ax, frame, what, p.attribution, colors)
            title = f"{p.process}: BQL {what} durations"
            if p.attribution == "call-site":
                title += " (no thread ids: per role, from the call site)"
            ax.set_title(title, fontsize=10)
    return fig


def _holders(frame: pd.DataFrame, attribution: str | None) -> tuple[np.ndarray, list[str]]:
    """Each row's holder (a code) and the label of each code, made once per distinct holder: a
    vCPU has tens of thousands of holds, and a label per row took seconds on large traces."""
    columns = ["thread", "role", "tid"] if attribution == "thread" else ["role"]
    holder, first = distinct_rows(*(frame[c] for c in columns))
    pick = frame.iloc[first]
    if attribution != "thread":
        return holder, [f"{r} (by call site)" for r in pick["role"].astype(str).tolist()]
    names = pick["thread"].astype(object).where(pick["thread"].notna(), None)
    labels = [
        thread_label(n, str(r), t)
        for n, r, t in zip(
            names.tolist(), pick["role"].astype(str).tolist(), pick["tid"].tolist(), strict=True
        )
    ]
    return holder, labels


def _holder_order(holds: pd.DataFrame, waits: pd.DataFrame, attribution: str | None) -> list[str]:
    """Holders by total hold time, then those that only waited: one colour each."""
    out: list[str] = []
    for frame in (holds, waits):
        d = frame["duration_us"].to_numpy(dtype=float)
        ok = ~np.isnan(d)
        if not ok.any():
            continue
        holder, labels = _holders(frame[ok], attribution)
        totals = pd.Series(d[ok]).groupby(np.asarray(labels, dtype=object)[holder]).sum()
        out += [str(x) for x in totals.sort_values(ascending=False).index if str(x) not in out]
    return out


def _cdf_panel(
    ax: Axes, frame: pd.DataFrame, what: str, attribution: str | None, colors: dict[str, str]
) -> None:
    d = frame["duration_us"].to_numpy(dtype=float)
    ok = ~np.isnan(d)
    frame, d = frame[ok], d[ok]
    if not len(frame):
        ax.text(0.5, 0.5, f"no timed BQL {what}s", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    holder, holder_labels = _holders(frame, attribution)
    label_of = np.asarray(holder_labels, dtype=object)
    floored = bool((d <= 0).any())
    for label in [x for x in colors if x in holder_labels]:
        color = colors[label]
        mine = d[np.isin(holder, np.flatnonzero(label_of == label))]
        x = np.sort(np.maximum(mine, 0.5))
        n = len(x)
        y = np.arange(1, n + 1) / n
        if n > CDF_POINTS:  # a vCPU has tens of thousands of holds: steps finer than a pixel
            keep = np.unique(
                np.r_[
                    np.linspace(0, n - 1, CDF_POINTS).astype(np.int64),
                    np.flatnonzero(np.r_[x[1:] != x[:-1], True])[-CDF_POINTS:],
                ]
            )
            x, y = x[keep], y[keep]
        x, y = np.r_[x[0], x], np.r_[0.0, y]  # the CDF rises from 0 at the shortest
        p50, p99 = (float(v) for v in np.percentile(mine, [50, 99]))
        legend = f"{label}: {n} {what}s, p50 {fmt_us(p50)}, p99 {fmt_us(p99)}"
        (line,) = ax.step(x, y, where="post", color=color, lw=1.4, label=legend)
        line.set_gid(f"cdf:{what}:{label}")
        for q, v, marker in ((0.5, p50, "o"), (0.99, p99, "D")):
            (m,) = ax.plot(
                [max(v, 0.5)],
                [q],
                marker=marker,
                color=color,
                ms=6,
                ls="",
                markeredgecolor="black",
                markeredgewidth=0.6,
            )
            m.set_gid(f"p{round(q * 100)}:{what}:{label}")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.axhline(0.5, color="#999999", lw=0.5, ls=":")
    ax.axhline(0.99, color="#999999", lw=0.5, ls=":")
    ax.set_xlabel(f"{what} duration (µs, log scale)" + ("; 0 µs drawn at 0.5 µs" if floored else ""))
    ax.set_ylabel(f"fraction of {what}s ≤ x")
    ax.grid(True, which="major", color=GRID_COLOR, lw=0.5)
    # Below the axes, not on them: inside, a legend covers some curve's p99+ tail.
    legend_if_labelled(
        ax,
        fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        title="● p50   ◆ p99",
        title_fontsize=7,
        frameon=False,
    )
