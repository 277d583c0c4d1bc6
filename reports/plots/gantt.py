"""The per-thread timeline (Gantt chart) of a trace: one lane per thread, phases on top."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from parsers.segment import NO_TIME
from reports.plots.common import (
    BQL_COLOR,
    LIFETIME_COLOR,
    PHASE_COLORS,
    TimeAxis,
    distinct_rows,
    figure_of,
    fmt_offset,
    frame_rows,
    instant_color,
    kind_color,
    new_figure,
    not_in_trace,
    phase_colors,
    rows_by_group,
    time_axis,
)
from tracetool._analyses.bql.report import BqlReport
from tracetool._model.lanes import thread_lanes, trace_end_ns, trace_start_ns
from tracetool._model.trace import Trace
from tracetool._timeline.result import Timeline
from tracetool.errors import UsageError

INSTANT_SKIP = ("downtime",)  # one per device load, already drawn as the device's bar
LANE_KINDS_BACKGROUND = ("thread",)  # thread lifetimes: drawn as the lane's background band
MAX_SUBROWS = 4
MAX_BAR_LABELS = 80
PIXELS_ACROSS = 2000  # BQL holds closer than 1/PIXELS_ACROSS of the window are drawn as one


def _lanes_of(frame: pd.DataFrame) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """The lane of each row of a spans/holds/instants frame (a code) and the (process, tid or
    -1) of each code."""
    tids = frame["tid"].astype("Int64").fillna(-1).to_numpy(dtype=np.int64)
    lane, first = distinct_rows(frame["process"], tids)
    procs = frame["process"].iloc[first].astype(str).tolist()
    return lane, list(zip(procs, tids[first].tolist(), strict=True))


def _pack(starts: np.ndarray, ends: np.ndarray, rows: int) -> np.ndarray:
    """Sub-row of each span: the first row free at its start (nested spans go below their
    parent). Spans beyond ``rows`` deep share the last row."""
    order = np.lexsort((-ends, starts))
    row_end: list[int] = []
    out = np.zeros(len(starts), dtype=np.int64)
    for i in order.tolist():  # spans of one lane: a few hundred at most
        s, e = int(starts[i]), int(ends[i])
        for k, last in enumerate(row_end):
            if s >= last:
                row_end[k] = e
                out[i] = k
                break
        else:
            row_end.append(e)
            out[i] = len(row_end) - 1
    return np.minimum(out, rows - 1)


def _merge_close(starts: np.ndarray, ends: np.ndarray, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Intervals closer than ``gap`` ns merged into one: what the eye sees at this zoom.

    A vCPU takes the BQL tens of thousands of times for a few µs each; drawing each hold as
    its own hatched bar costs minutes and shows the same strip."""
    if len(starts) < 2:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    new = np.r_[True, s[1:] - reach[:-1] > gap]
    group = np.cumsum(new) - 1
    return s[new], np.maximum.reduceat(e, np.flatnonzero(new)) if len(group) else e


def _in_window(frame: pd.DataFrame, start_col: str, end_col: str, lo: int, hi: int) -> pd.DataFrame:
    s = frame[start_col].astype("Int64").to_numpy(dtype=np.int64, na_value=NO_TIME)
    e = frame[end_col].astype("Int64").to_numpy(dtype=np.int64, na_value=NO_TIME)
    keep = (s != NO_TIME) & (e != NO_TIME) & (e >= lo) & (s <= hi)
    return frame[keep]


def _span_text(row: dict[str, Any]) -> str:
    name = str(row["name"])
    idstr = row.get("idstr")
    if row["kind"] == "section" and isinstance(idstr, str) and idstr != name:
        return f"{name} {idstr}"
    return name


def _bars(ax: Axes, x0: np.ndarray, x1: np.ndarray, y: float, h: float, gid: str, **style: Any) -> None:
    """One collection of horizontal bars [x0, x1] at y..y+h, tagged ``gid`` for inspection."""
    if not len(x0):
        return
    coll = ax.broken_barh(list(zip(x0.tolist(), (x1 - x0).tolist(), strict=True)), (y, h), **style)
    coll.set_gid(gid)


def gantt(
    trace: Trace,
    timeline: Timeline,
    bql: BqlReport | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Per-thread timeline of ``trace`` between ``start_ns`` and ``end_ns`` (absolute ns).

    One lane per thread that has something in the window (ordered as
    :func:`tracetool._model.lanes.thread_lanes`), and one ``phases`` lane per process on top.
    In each lane: the thread's lifetime as a light band, the spans of ``timeline`` (sections,
    device loads, commands, postcopy steps, QMP commands, waits, page requests) as bars,
    nested spans below their parent; the BQL holds of ``bql`` (when given) as a red hatched
    strip at the bottom of the holder's lane; instants (checkpoints, state changes) as ticks at
    the top. Traces without thread ids get one lane per process. Draws on ``ax`` when given,
    else on a new figure sized to the lanes. Collections carry gids (``span:KIND:LANE``,
    ``bql:LANE``, ``instant:KIND``) for inspection.
    """
    t0, t1 = trace_start_ns(trace), trace_end_ns(trace)
    lo = t0 if start_ns is None else int(start_ns)
    hi = t1 if end_ns is None else int(end_ns)
    if hi <= lo:
        raise UsageError(f"empty time window: end {hi} ns is not after start {lo} ns")
    tl = timeline
    holds = _holds(bql)
    spans = _in_window(tl.spans, "start_ns", "end_ns", lo, hi)
    inst = tl.instants[~tl.instants["kind"].isin(INSTANT_SKIP)]
    inst = _in_window(inst, "ts_ns", "ts_ns", lo, hi)
    holds = _in_window(holds, "start_ns", "end_ns", lo, hi) if holds is not None else None
    if not len(tl.spans) and not len(tl.instants) and holds is None:
        raise not_in_trace("timeline", "the migration timeline")
    lanes = _gantt_lanes(trace, spans, inst, holds)
    if not lanes:
        raise UsageError(
            "nothing in this time window: no spans, BQL holds or instants between "
            f"{fmt_offset(lo - t0)} and {fmt_offset(hi - t0)} after the trace start"
        )
    axis = time_axis(t0, lo, hi)
    if ax is None:
        fig = new_figure(14, 1.6 + 0.55 * len(lanes))
        ax = fig.add_subplot()
        own_figure = True
    else:
        fig, own_figure = figure_of(ax), False
    index = {lane.key: i for i, lane in enumerate(lanes)}
    xlo, xhi = float(axis.x(lo)), float(axis.x(hi))
    labels: list[tuple[float, float, float, str]] = []
    kinds_seen: set[str] = set()
    for y, lane in enumerate(lanes):
        if y % 2:
            ax.axhspan(y - 0.5, y + 0.5, color="#f7f7f7", zorder=0, lw=0)
        mine = spans.iloc[lane.span_rows] if lane.span_rows is not None else spans.iloc[0:0]
        _draw_lane(ax, mine, lane, y, axis, lo, hi, labels, kinds_seen)
    if holds is not None and len(holds):
        for key, members in _group_rows(holds).items():
            if key not in index:
                continue
            h = holds.iloc[members]
            s, e = _merge_close(
                np.maximum(h["start_ns"].to_numpy(dtype=np.int64), lo),
                np.minimum(h["end_ns"].to_numpy(dtype=np.int64), hi),
                (hi - lo) // PIXELS_ACROSS,
            )
            y = index[key]
            _bars(
                ax,
                axis.x(s),
                axis.x(e),
                y + 0.22,
                0.2,
                f"bql:{lanes[y].label}",
                facecolors=BQL_COLOR,
                edgecolors=BQL_COLOR,
                linewidths=0.4,
                hatch="////",
                alpha=0.85,
                label=f"{len(h)} BQL holds",
            )
    _draw_instants(ax, inst, index, axis)
    _label_bars(ax, labels, xhi - xlo)
    ax.set_xlim(xlo, xhi)
    ax.set_ylim(len(lanes) - 0.5, -0.5)
    ax.set_yticks(range(len(lanes)), [lane.label for lane in lanes], fontsize=8)
    ax.set_xlabel(axis.label)
    ax.grid(axis="x", color="#dddddd", lw=0.5)
    ax.set_axisbelow(True)
    ax.set_title(_gantt_title(trace, lo, hi, t0), fontsize=10)
    _gantt_legend(fig, ax, own_figure, kinds_seen, holds is not None and len(holds) > 0, inst)
    return fig


@dataclass
class _Lane:
    key: tuple[str, int]  # (process, tid or -1); phases lanes use tid -2
    label: str
    span_rows: np.ndarray | None = None


def _group_rows(frame: pd.DataFrame) -> dict[tuple[str, int], np.ndarray]:
    """The rows of each lane of a spans/holds frame, in lane order of first appearance."""
    lane, keys = _lanes_of(frame)
    return dict(zip(keys, rows_by_group(lane, len(keys)), strict=True))


def _gantt_lanes(
    trace: Trace, spans: pd.DataFrame, inst: pd.DataFrame, holds: pd.DataFrame | None
) -> list[_Lane]:
    """Lanes with something to draw, phases lane first in each process."""
    is_phase = (spans["kind"] == "phase").to_numpy(dtype=bool)
    thread_spans = _group_rows(spans[~is_phase])
    idx_thread = np.flatnonzero(~is_phase)
    idx_phase = np.flatnonzero(is_phase)
    phase_keys = spans["process"].astype(str).to_numpy()[idx_phase]
    busy = set(thread_spans) | set(_lanes_of(inst)[1])
    if holds is not None:
        busy |= set(_lanes_of(holds)[1])
    multi = trace.threads["process"].nunique() > 1
    out: list[_Lane] = []
    seen_process: set[str] = set()
    for r in frame_rows(thread_lanes(trace)):
        proc = r["process"]
        if proc not in seen_process:
            seen_process.add(proc)
            rows = idx_phase[phase_keys == proc]
            if len(rows):
                out.append(_Lane((proc, -2), f"{proc} · phases" if multi else "phases", rows))
        key = (proc, -1 if pd.isna(r["tid"]) else int(r["tid"]))
        if key in busy:
            rows = thread_spans.get(key)
            out.append(_Lane(key, r["label"], idx_thread[rows] if rows is not None else None))
    return out


def _draw_lane(
    ax: Axes,
    spans: pd.DataFrame,
    lane: _Lane,
    y: float,
    axis: TimeAxis,
    lo: int,
    hi: int,
    labels: list[tuple[float, float, float, str]],
    kinds: set[str],
) -> None:
    if not len(spans):
        return
    starts = np.maximum(spans["start_ns"].to_numpy(dtype=np.int64), lo)
    ends = np.minimum(spans["end_ns"].to_numpy(dtype=np.int64), hi)
    kind = spans["kind"].astype(str).to_numpy()
    bg = np.isin(kind, LANE_KINDS_BACKGROUND)
    for i in np.flatnonzero(bg).tolist():
        ax.broken_barh(
            [(float(axis.x(starts[i])), float(axis.x(ends[i]) - axis.x(starts[i])))],
            (y - 0.45, 0.9),
            facecolors=LIFETIME_COLOR,
            zorder=0.5,
        ).set_gid(f"lifetime:{lane.label}")
    fg = np.flatnonzero(~bg)
    if not len(fg):
        return
    rows = _pack(starts[fg], ends[fg], MAX_SUBROWS)
    nrows = int(rows.max()) + 1
    top, height = y - 0.42, 0.62  # the bottom 0.2 of the lane is the BQL strip
    h = height / nrows
    rows_fg = frame_rows(spans.iloc[fg])
    is_phase = lane.key[1] == -2
    colors = phase_colors(str(r["name"]) for r in rows_fg) if is_phase else {}
    for k in np.unique(kind[fg]).tolist():
        sel = kind[fg] == k
        color = kind_color(k)
        kinds.add(k)
        for row in np.unique(rows[sel]).tolist():
            pick = sel & (rows == row)
            x0 = axis.x(starts[fg][pick])
            x1 = axis.x(ends[fg][pick])
            style: dict[str, Any] = {"edgecolors": "#555555", "linewidths": 0.3}
            if is_phase:
                names = [str(rows_fg[j]["name"]) for j in np.flatnonzero(pick).tolist()]
                style["facecolors"] = [colors[n] for n in names]
            else:
                style["facecolors"] = color
            _bars(ax, x0, x1, top + row * h + 0.02, h - 0.04, f"span:{k}:{lane.label}", **style)
    for j, rec in enumerate(rows_fg):
        a, b = float(axis.x(starts[fg][j])), float(axis.x(ends[fg][j]))
        labels.append((a, b, top + float(rows[j]) * h + h / 2, _span_text(rec)))


def _label_bars(ax: Axes, labels: list[tuple[float, float, float, str]], width: float) -> None:
    """Names inside the bars wide enough to hold them, widest first, at most MAX_BAR_LABELS."""
    wide = [b for b in labels if (b[1] - b[0]) >= 0.04 * width]
    wide.sort(key=lambda b: b[0] - b[1])
    for x0, x1, yc, text in wide[:MAX_BAR_LABELS]:
        room = int((x1 - x0) / width * 160)  # about 160 characters across the axes
        shown = text if len(text) <= room else text[: max(room - 1, 1)] + "…"
        ax.text((x0 + x1) / 2, yc, shown, ha="center", va="center", fontsize=7, clip_on=True, zorder=5)


def _draw_instants(ax: Axes, inst: pd.DataFrame, index: dict[tuple[str, int], int], axis: TimeAxis) -> None:
    if not len(inst):
        return
    lane, keys = _lanes_of(inst)
    ys = np.array([index.get(k, -1) for k in keys], dtype=float)[lane]
    kind = inst["kind"].astype(str).to_numpy()
    x = axis.x(inst["ts_ns"].to_numpy(dtype=np.int64))
    for k in np.unique(kind).tolist():
        sel = (kind == k) & (ys >= 0)
        if not sel.any():
            continue
        coll = ax.scatter(
            x[sel],
            ys[sel] - 0.44,
            marker="|",
            s=90,
            linewidths=1.4,
            color=instant_color(k),
            zorder=6,
        )
        coll.set_gid(f"instant:{k}")


def _gantt_title(trace: Trace, lo: int, hi: int, t0: int) -> str:
    names = sorted(
        {
            "/".join(os.path.normpath(os.path.dirname(str(p))).split(os.sep)[-2:])
            for p in trace.inputs["path"].tolist()
        }
    )
    where = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
    span = f"{fmt_offset(lo - t0)} – {fmt_offset(hi - t0)} after trace start"
    return f"Per-thread timeline: {where} ({span})"


def _gantt_legend(
    fig: Figure, ax: Axes, own_figure: bool, kinds: set[str], has_bql: bool, inst: pd.DataFrame
) -> None:
    handles: list[Any] = (
        [Patch(facecolor=PHASE_COLORS[0], edgecolor="#555555", label="phase")] if "phase" in kinds else []
    )
    handles += [
        Patch(facecolor=kind_color(k), edgecolor="#555555", label=k) for k in sorted(kinds - {"phase"})
    ]
    handles.append(Patch(facecolor=LIFETIME_COLOR, label="thread alive"))
    if has_bql:
        handles.append(Patch(facecolor=BQL_COLOR, hatch="////", label="BQL held"))
    for k in sorted(set(inst["kind"].astype(str))):
        handles.append(
            Line2D(
                [],
                [],
                marker="|",
                ls="",
                markersize=10,
                mew=1.4,
                color=instant_color(k),
                label=k,
            )
        )
    ncol = min(len(handles), 8)
    if own_figure:
        fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)
    else:  # someone else's figure may not lay out legends outside its axes
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12),
            ncol=ncol,
            fontsize=8,
            frameon=False,
        )


def _holds(bql: BqlReport | None) -> pd.DataFrame | None:
    """All BQL holds with both ends known, or None when there are none to draw."""
    if bql is None:
        return None
    frames = [p.holds for p in bql.processes.values() if p.mutex is not None and len(p.holds)]
    if not frames:
        return None
    cols = ["process", "tid", "start_ns", "end_ns", "role"]
    holds = pd.concat([f[cols].astype({"process": str, "role": str}) for f in frames], ignore_index=True)
    return holds[holds["start_ns"].notna() & holds["end_ns"].notna()].reset_index(drop=True)
