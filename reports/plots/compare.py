"""Before/after: incoming phase durations and BQL hold time per thread role."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reports.console import fmt_us
from reports.plots.common import (
    GRID_COLOR,
    NOTE_COLOR,
    SIDE_COLORS,
    legend_if_labelled,
    new_figure,
    required_events,
)
from tracetool._analyses.comparison import Comparison
from tracetool.errors import NotInTrace


def compare_plot(before: Any, after: Any = None, labels: Sequence[str] = ("before", "after")) -> Figure:
    """Before/after: incoming phase durations (left) and BQL hold time per thread role (right).

    Either pass a :class:`tracetool._analyses.comparison.Comparison` alone (its phase deltas and its
    thread pairs, labelled ``role: before thread / after thread``, and its side labels), or
    two sides, each a ``(PhaseReport | None, BqlReport | None)`` pair or an object with
    ``phases`` and ``bql`` attributes (such as ``ReportData``): then BQL hold time is summed
    per role, so the coroutine load (main thread) and the threaded load (``mig/dst/main``)
    line up by what they do. Bar patches carry gids ``phase:LABEL`` and ``bql:LABEL``.
    """
    bql_title = "BQL hold time per role (primary process)"
    if after is None and isinstance(before, Comparison):
        labels = (str(before.before.label), str(before.after.label))
        phase_tables, bql_tables = _comparison_tables(before)
        bql_title = "BQL hold time per thread, matched by role"
    else:
        sides = [_compare_side(before), _compare_side(after)]
        phase_tables = [_phase_durations(p) for p, _ in sides]
        bql_tables = [_role_holds(b) for _, b in sides]
    panels = [
        ("phase", phase_tables) if any(len(t) for t in phase_tables) else None,
        ("bql", bql_tables) if any(len(t) for t in bql_tables) else None,
    ]
    used = [p for p in panels if p is not None]
    if not used:
        raise NotInTrace(
            f"not in this trace: enable {required_events('phases')} (phases) or "
            f"{required_events('bql')} (BQL holds) in both traces to compare them"
        )
    fig = new_figure(7 * len(used), 1.5 + 0.42 * max(len(_union(t)) for _, t in used))
    axes = fig.subplots(1, len(used), squeeze=False)[0]
    for ax, (what, tabs) in zip(axes, used, strict=True):
        _paired_bars(
            ax, tabs, list(labels), what, "Incoming phase durations" if what == "phase" else bql_title
        )
    return fig


def _comparison_tables(cmp: Comparison) -> tuple[list[pd.Series], list[pd.Series]]:
    """Phase durations and hold totals of both sides, from a Comparison's deltas and pairs."""
    phases = [
        pd.Series(
            {p.delta.name: v for p in cmp.phases if (v := getattr(p.delta, side)) is not None}, dtype=float
        )
        for side in ("before", "after")
    ]
    rows: dict[str, tuple[float | None, float | None]] = {}
    pairs = [("incoming load", cmp.bql_load)] if cmp.bql_load is not None else []
    pairs += [(pair.role, pair) for pair in cmp.bql_threads]
    for what, pair in pairs:
        names = " / ".join(ref.label() if ref is not None else "-" for ref in (pair.before, pair.after))
        m = pair.metric("hold_total_us")
        rows[f"{what}: {names}"] = (m.before, m.after)
    holds = [pd.Series({k: v[i] for k, v in rows.items() if v[i] is not None}, dtype=float) for i in (0, 1)]
    return phases, holds


def _compare_side(side: Any) -> tuple[Any, Any]:
    if isinstance(side, tuple):
        return side[0], side[1] if len(side) > 1 else None
    return getattr(side, "phases", None), getattr(side, "bql", None)


def _phase_durations(report: Any) -> pd.Series:
    """Duration (µs) per phase name, in start order; the first occurrence of each name."""
    if report is None or not len(report.phases):
        return pd.Series(dtype=float)
    ph = report.phases[report.phases["duration_us"].notna()].sort_values("start_ns", kind="stable")
    return (
        ph.drop_duplicates("name")
        .set_index(ph.drop_duplicates("name")["name"].astype(str))["duration_us"]
        .astype(float)
    )


def _role_holds(report: Any) -> pd.Series:
    """Total complete BQL hold time (µs) per holder role in the primary process."""
    p = getattr(report, "primary", None) if report is not None else None
    if p is None or p.mutex is None or not len(p.threads):
        return pd.Series(dtype=float)
    t = p.threads
    return t.groupby(t["role"].astype(str), sort=False)["hold_total_us"].sum().sort_values(ascending=False)


def _union(tables: Iterable[pd.Series]) -> list[str]:
    names: list[str] = []
    for t in tables:
        names += [str(n) for n in t.index if str(n) not in names]
    return names


def _paired_bars(ax: Axes, tables: list[pd.Series], labels: list[str], what: str, title: str) -> None:
    names = _union(tables)
    y = np.arange(len(names))
    h = 0.38
    for k, (t, label) in enumerate(zip(tables, labels, strict=True)):
        vals = np.array([float(t.get(n, np.nan)) for n in names])
        bars = ax.barh(
            y + (k - 0.5) * h,
            np.nan_to_num(vals, nan=0.0),
            height=h,
            color=SIDE_COLORS[k % 2],
            edgecolor="#333333",
            lw=0.4,
            label=label,
        )
        for patch in bars.patches:
            patch.set_gid(f"{what}:{label}")
        for yy, v in zip((y + (k - 0.5) * h).tolist(), vals.tolist(), strict=True):
            if v > 0:
                ax.text(v, yy, " " + fmt_us(v), va="center", fontsize=7)
            else:  # no bar on a log axis: the value at the axis' left edge
                ax.text(
                    0.005,
                    yy,
                    fmt_us(v) if not np.isnan(v) else "absent",
                    va="center",
                    fontsize=7,
                    color=NOTE_COLOR,
                    transform=ax.get_yaxis_transform(),
                )
    ax.set_xscale("log")
    ax.set_yticks(y, names, fontsize=8)
    ax.set_ylim(len(names) - 0.4, -0.6)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("µs (log scale)")
    legend_if_labelled(ax, fontsize=8, loc="lower right")
    ax.grid(axis="x", color=GRID_COLOR, lw=0.5)
    ax.set_axisbelow(True)
