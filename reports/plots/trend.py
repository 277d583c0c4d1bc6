"""A metric over the run history: each run a point at its time, one colour per group, and each
group's baseline band.

Drawn from a :class:`tracetool._history.trend.Trend` only: the x axis is UTC wall time (each
run's first event, or when it was added when its trace has no wall clock), the y axis the
metric in its unit (µs become ms or s when large). Each group of ``--by`` is one colour, its
runs joined by a thin line; the recent runs (the ones ``history regressions`` judges) have a
dark edge. The baseline band spans the group's baseline quartiles, with its median dashed, from
its first baseline run to its last run.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reports.plots.common import GRID_COLOR, NOTE_COLOR, figure_of, new_figure, series_color, value_scale
from tracetool._history.trend import Trend
from tracetool.errors import UsageError

PNG_DPI = 120


def _when(ns: int) -> float:
    """A time in ns as matplotlib's date number (days since its epoch, UTC)."""
    return float(mdates.date2num(datetime.fromtimestamp(ns / 1e9, UTC)))


def _group_name(by: str | None, group: str | None) -> str:
    if by is None:
        return "all runs"
    return f"{by}={group}" if group is not None else f"no {by} label"


def trend_plot(trend: Trend, ax: Axes | None = None) -> Figure:
    """The trend figure (see the module docstring); draws on ``ax`` when given.

    Points carry gids ``run:<run id>``, bands ``band:<k>`` and medians ``median:<k>`` (k: the
    group's position). UsageError when the trend has no point.
    """
    if not trend.points:
        raise UsageError(f"no run has {trend.metric} (with the labels asked for)")
    if ax is None:
        fig = new_figure(8.0, 3.8)
        ax = fig.subplots()
    else:
        fig = figure_of(ax)
    div, unit = value_scale([p.value for p in trend.points], trend.unit)
    windows = {w.group: w for w in trend.windows}
    bands = {b.group: b for b in trend.bands}
    last_ns = max(p.time_ns for p in trend.points)
    for k, (group, points) in enumerate(trend.groups().items()):
        color = series_color(k)
        xs = [_when(p.time_ns) for p in points]
        ys = [p.value / div for p in points]
        ax.plot(xs, ys, color=color, lw=0.8, alpha=0.6)
        recent = {p.run for p in windows[group].recent} if group in windows else set()
        for p, x, y in zip(points, xs, ys, strict=True):
            edge = "#111111" if p.run in recent else color
            dot = ax.scatter([x], [y], s=30, color=color, edgecolor=edge, lw=1.2, zorder=3)
            dot.set_gid(f"run:{p.run}")
        ax.scatter([], [], s=30, color=color, label=f"{_group_name(trend.by, group)} ({len(points)})")
        band = bands.get(group)
        s = band.spread if band else None
        if band is None or s is None or s.q1 is None or s.q3 is None or s.median is None:
            continue
        span = [_when(band.start_ns), _when(max(last_ns, band.end_ns))]
        fill = ax.fill_between(span, [s.q1 / div] * 2, [s.q3 / div] * 2, color=color, alpha=0.15, lw=0)
        fill.set_gid(f"band:{k}")
        (median,) = ax.plot(span, [s.median / div] * 2, color=color, lw=1.0, ls="--")
        median.set_gid(f"median:{k}")
    ax.set_ylabel(f"{trend.metric} ({unit})" if unit else trend.metric, fontsize=8)
    ax.set_xlabel("time of each run's first event (UTC)", fontsize=8)
    ax.set_title(
        f"{trend.metric}: {len(trend.points)} runs; band: baseline quartiles, dashed: its median; "
        "dark edge: recent runs",
        fontsize=9,
    )
    ax.tick_params(labelsize=7)
    ax.grid(color=GRID_COLOR, lw=0.5)
    ax.set_axisbelow(True)
    ax.legend(fontsize=7, loc="best", labelcolor=NOTE_COLOR, frameon=False)
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    ax.xaxis.get_offset_text().set_fontsize(7)
    return fig


def trend_png(trend: Trend, dpi: int = PNG_DPI) -> bytes:
    """The trend figure as PNG bytes."""
    buf = io.BytesIO()
    trend_plot(trend).savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def trend_svg(trend: Trend) -> bytes:
    """The trend figure as SVG bytes."""
    buf = io.BytesIO()
    trend_plot(trend).savefig(buf, format="svg")
    return buf.getvalue()
