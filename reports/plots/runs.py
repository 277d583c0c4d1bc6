"""Repeated runs: one strip/box figure per metric, every run a dot, the quartiles a box.

Drawn from a :class:`tracetool._check.repeats.RunsComparison` only (each run's value, the
spread and the change it computed): one column per side, each run's value as a dot (spread
sideways in run order, so equal values stay visible), the box from the first to the third
quartile with the median as a line, and the shift, interval, p-value and verdict in the title.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.console import fmt_us
from reports.plots.common import GRID_COLOR, NOTE_COLOR, SIDE_COLORS, new_figure, value_scale
from tracetool._check.repeats import MetricChange, RunsComparison
from tracetool.errors import NotInTrace

STRIP_WIDTH = 0.28
BOX_WIDTH = 0.5


def _title(m: MetricChange) -> str:
    ch = m.change
    if ch.shift is None:
        return m.metric
    shift = fmt_us(abs(ch.shift)) if m.unit == "us" else f"{abs(ch.shift):,.4g}"
    sign = "+" if ch.shift > 0 else "-" if ch.shift < 0 else "±"
    note = ch.note or ""
    verdict = "significant" if ch.significant else "too few runs" if note.startswith("too few") else note
    p = "-" if ch.p_value is None else f"{ch.p_value:.2g}"
    return f"{m.metric}\nshift {sign}{shift}, p = {p}: {verdict}"


def runs_plot(cmp: RunsComparison, metric: str) -> Figure:
    """One metric of a several-runs comparison as a strip/box figure (see module docstring).

    Dots carry gids ``run:SIDE:K`` (K = the run's position on its side), boxes ``box:SIDE``.
    Raises NotInTrace when no run of either side had a value for the metric.
    """
    m = cmp.metric(metric)
    if not m.measured:
        why = m.reasons.get("before") or m.reasons.get("after") or "no run had a value"
        raise NotInTrace(f"not in these runs: {metric}: {why}")
    sides = (("before", cmp.before.label, m.before), ("after", cmp.after.label, m.after))
    div, unit = value_scale(m.before.measured + m.after.measured, m.unit)
    fig = new_figure(4.6, 3.6)
    ax = fig.subplots()
    for i, (side, label, spread) in enumerate(sides):
        vals = np.array([np.nan if v is None else v / div for v in spread.values], dtype=float)
        offsets = np.linspace(-STRIP_WIDTH / 2, STRIP_WIDTH / 2, len(vals)) if len(vals) > 1 else np.zeros(1)
        if spread.n >= 2 and spread.q1 is not None and spread.q3 is not None and spread.median is not None:
            box = ax.bar(
                i,
                (spread.q3 - spread.q1) / div,
                bottom=spread.q1 / div,
                width=BOX_WIDTH,
                color=SIDE_COLORS[i],
                alpha=0.35,
                edgecolor="#333333",
                lw=0.6,
            )
            box.patches[0].set_gid(f"box:{side}")
            ax.hlines(spread.median / div, i - BOX_WIDTH / 2, i + BOX_WIDTH / 2, color="#222222", lw=1.6)
        for k, (x, v) in enumerate(zip(offsets.tolist(), vals.tolist(), strict=True)):
            if np.isnan(v):
                continue
            dot = ax.scatter([i + x], [v], s=26, color=SIDE_COLORS[i], edgecolor="#222222", lw=0.6, zorder=3)
            dot.set_gid(f"run:{side}:{k}")
        missing = len(vals) - spread.n
        text = f"{label}\nn = {spread.n}" + (f" ({missing} without a value)" if missing else "")
        ax.annotate(
            text,
            (i, 0),
            xycoords=("data", "axes fraction"),
            xytext=(0, -6),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=8,
            color=NOTE_COLOR,
        )
    ax.set_xticks([0, 1], ["", ""])
    ax.set_xlim(-0.6, 1.6)
    shown = [v / div for v in m.before.measured + m.after.measured]
    lo, hi = min(shown), max(shown)
    pad = (hi - lo) * 0.12 or abs(hi) * 0.05 or 1.0
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_ylabel(f"{metric} ({unit})", fontsize=8)
    ax.set_title(_title(m), fontsize=9)
    ax.grid(axis="y", color=GRID_COLOR, lw=0.5)
    ax.set_axisbelow(True)
    return fig
