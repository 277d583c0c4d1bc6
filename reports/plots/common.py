"""What every figure shares: the time axis, the colours, the "not in this trace" errors, new
figures without pyplot, and :func:`save_figure`.

Colours: one per phase name (in the order of the phase rules, so a phase has the same colour
in the Gantt chart, the waterfall and any other figure), one per span kind, instant kind and
postcopy channel, and one per side of a comparison.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reports.atomic import atomic_path
from tracetool._analyses import registry
from tracetool._timeline.rules import rules
from tracetool.errors import NotInTrace, UsageError

# ---------------------------------------------------------------------------------- colours
KIND_COLORS = {
    "section": "#9ecae1",
    "device": "#fd8d3c",
    "command": "#9e9ac8",
    "postcopy": "#41ab5d",
    "wait": "#ef3b2c",
    "qmp": "#bdbdbd",
    "page-request": "#e7298a",
}
"""Bar colour per span kind."""
OTHER_KIND_COLOR = "#c7e9c0"
LIFETIME_COLOR = "#e8eef7"
"""A thread's lifetime: the background band of its lane."""
PHASE_COLORS = (
    "#1f77b4",
    "#aec7e8",
    "#17becf",
    "#9edae5",
    "#2ca02c",
    "#98df8a",
    "#bcbd22",
    "#dbdb8d",
    "#9467bd",
    "#c5b0d5",
    "#8c564b",
    "#c49c94",
    "#7f7f7f",
    "#c7c7c7",
    "#393b79",
    "#6b6ecf",
    "#637939",
    "#b5cf6b",
    "#8c6d31",
    "#e7cb94",
    "#7b4173",
)
"""Phase colours, given out in the order of the phase rules (no reds: red is the BQL's)."""
OTHER_PHASE_COLOR = "#525252"
BQL_COLOR = "#d62728"
INSTANT_COLORS = {
    "checkpoint": "#6a3d9a",
    "state": "#000000",
    "runstate": "#1b9e77",
    "vm-state": "#ff7f00",
    "channel": "#1f78b4",
    "end": "#33a02c",
    "cancel": "#b15928",
}
"""Tick colour per instant kind."""
OTHER_INSTANT_COLOR = "#444444"
CHANNEL_COLORS = {0: "C0", 1: "C3"}
"""Postcopy channels: 0 main, 1 preempt."""
UNKNOWN_CHANNEL_COLOR = "C7"
CHANNEL_NAMES = {0: "channel 0 (main)", 1: "channel 1 (preempt)"}
SIDE_COLORS = ("#6baed6", "#fd8d3c")
"""The two sides of a comparison: before, after."""
GRID_COLOR = "#e5e5e5"
NOTE_COLOR = "#555555"


@cache
def _phase_order() -> dict[str, int]:
    names = dict.fromkeys(p.name for p in rules().phases)
    return {name: i for i, name in enumerate(names)}


def phase_color(name: str) -> str:
    """The colour of phase ``name``, the same in every figure."""
    i = _phase_order().get(name)
    return PHASE_COLORS[i % len(PHASE_COLORS)] if i is not None else OTHER_PHASE_COLOR


def phase_colors(names: Iterable[str]) -> dict[str, str]:
    """The colour of each phase name (see :func:`phase_color`)."""
    return {n: phase_color(n) for n in dict.fromkeys(names)}


def kind_color(kind: str) -> str:
    """The bar colour of spans of ``kind``."""
    return KIND_COLORS.get(kind, OTHER_KIND_COLOR)


def instant_color(kind: str) -> str:
    """The tick colour of instants of ``kind``."""
    return INSTANT_COLORS.get(kind, OTHER_INSTANT_COLOR)


def channel_color(channel: int) -> str:
    """The colour of postcopy channel ``channel`` (-1: unknown)."""
    return CHANNEL_COLORS.get(channel, UNKNOWN_CHANNEL_COLOR)


def series_color(i: int) -> str:
    """The i-th colour of a figure's own series (threads of a CDF, ...)."""
    return f"C{i % 10}"


# ---------------------------------------------------------------------------------- time axis
@dataclass(frozen=True)
class TimeAxis:
    """Maps absolute ns to axis values: (ns - origin) / scale, in ``unit``."""

    origin: int
    scale: float
    unit: str
    label: str

    def x(self, ns: np.ndarray | int) -> np.ndarray:
        """Axis values of absolute times."""
        return (np.asarray(ns, dtype=np.int64) - self.origin) / self.scale


UNITS = ((2e9, 1e9, "s"), (2e6, 1e6, "ms"), (2e3, 1e3, "µs"), (0.0, 1.0, "ns"))


def time_axis(trace_start: int, start: int, end: int) -> TimeAxis:
    """A readable axis for the window [start, end]: the unit follows the window's width."""
    width = max(end - start, 1)
    scale, unit = next((s, u) for lim, s, u in UNITS if width >= lim)
    if start <= trace_start:
        return TimeAxis(trace_start, scale, unit, f"time since trace start ({unit})")
    offset = fmt_offset(start - trace_start)
    return TimeAxis(start, scale, unit, f"time ({unit}) since {offset} after trace start")


def fmt_offset(ns: int) -> str:
    """A time since the trace start, to the trace's resolution: ``2.666901 s``."""
    return f"{ns / 1e9:.6f} s" if ns % 1000 == 0 else f"{ns / 1e9:.9f} s"


# ---------------------------------------------------------------------------------- not in trace
def required_events(analysis: str) -> str:
    """The events without which ``analysis`` measures nothing, as the registry lists them."""
    info = registry.get(analysis).event_list
    return ", ".join(e.pattern for e in (info.required() if info else []))


def not_in_trace(analysis: str, what: str) -> NotInTrace:
    """A :class:`NotInTrace` asking to enable the required events of ``analysis`` for ``what``."""
    return NotInTrace(f"not in this trace: enable {required_events(analysis)} (for {what})")


# ---------------------------------------------------------------------------------- figures
def new_figure(width: float, height: float) -> Figure:
    """A figure with constrained layout and its own Agg canvas (no pyplot state)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_of(ax: Axes) -> Figure:
    """The top-level figure an axes belongs to."""
    fig = ax.get_figure(root=True)
    if not isinstance(fig, Figure):
        raise UsageError("the axes given to draw on belong to no figure")
    return fig


def frame_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts keyed by column name (for loops over a few hundred rows at most)."""
    return cast(list[dict[str, Any]], frame.to_dict("records"))


SAVE_FORMATS = ("png", "svg", "pdf")


def distinct_rows(*columns: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Groups rows by their values in ``columns`` (equal-length; NA is a value of its own):
    returns each row's group (codes 0, 1, ... in order of first appearance) and the first row
    of each group. What a plot draws per thread is then worked out once per thread, not once
    per hold."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for c in columns:
        codes, uniques = pd.factorize(c, use_na_sentinel=False)
        key = key * (len(uniques) + 1) + codes
    group, _ = pd.factorize(key)
    return group, pd.Series(group).drop_duplicates().index.to_numpy()


def rows_by_group(group: np.ndarray, groups: int) -> list[np.ndarray]:
    """The rows of each group (codes from :func:`distinct_rows`), ascending."""
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(groups + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(groups)]


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 130) -> None:
    """Writes ``fig`` to ``path`` atomically; the format follows the extension (png/svg/pdf)."""
    ext = os.fspath(path).rsplit(".", 1)[-1].lower() if "." in os.fspath(path) else ""
    if ext not in SAVE_FORMATS:
        raise UsageError(f"{os.fspath(path)}: give a .png, .svg or .pdf file name")
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=ext, dpi=dpi)


def legend_if_labelled(where: Axes | Figure, ax: Axes | None = None, **options: Any) -> None:
    """A legend of the labelled artists of ``ax`` (``where`` itself when it is an Axes), drawn
    on ``where``; none when nothing is labelled (a damaged or cut trace may leave a figure
    without any series)."""
    source = ax if ax is not None else where
    assert isinstance(source, Axes)
    if source.get_legend_handles_labels()[0]:
        where.legend(**options)


def value_scale(values: Sequence[float], unit: str | None) -> tuple[float, str]:
    """Divisor and axis unit for a metric's values: µs become ms or s when large."""
    if unit != "us":
        return 1.0, unit or ""
    top = max((abs(v) for v in values), default=0.0)
    if top >= 2e6:
        return 1e6, "s"
    if top >= 2e3:
        return 1e3, "ms"
    return 1.0, "µs"
