"""Figures of a migration trace, as matplotlib ``Figure`` objects (no pyplot, no global state).

* :func:`gantt` — one lane per thread: phases, load sections, device loads and other spans as
  bars, BQL holds as a hatched strip along the bottom of the holder's lane, instants as ticks.
* :func:`bql_distribution` — BQL hold and wait durations per thread as CDFs, p50/p99 marked.
* :func:`phase_waterfall` — the incoming phases as a waterfall, and the slowest device loads.
* :func:`page_latency` — postcopy page-request latency over time, per channel.
* :func:`compare_plot` — phase durations and BQL hold totals per role, before and after.

Times given to these functions (``start_ns``/``end_ns``) are absolute trace nanoseconds, like
``Trace.ts`` and the ``start_ns`` columns; axes show time since the start of the trace (its
first timestamped event), or since the start of the window when zoomed in. When a trace lacks
what a figure needs, the function raises :class:`NotInTrace` naming the events to enable.
:func:`save_figure` writes a figure atomically as PNG, SVG or PDF.

    >>> fig = gantt(trace, start_ns=t0 + 1_000_000_000, end_ns=t0 + 1_100_000_000)
    >>> save_figure(fig, "gantt.png")
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from parsers.segment import NO_TIME
from reports.atomic import atomic_path
from reports.console import fmt_us
from tracetool._model.trace import Trace
from tracetool.errors import NotInTrace, UsageError

ROLE_ORDER = ("main", "load", "listen", "preempt", "fault", "recv_N", "vcpu")
"""Lane order of thread roles; every other role follows, then unknown threads."""
SIDE_ORDER = ("dst", "src")
MUTEX_EVENTS = "qemu_mutex_lock, qemu_mutex_locked, qemu_mutex_unlock"
PHASE_EVENTS = (
    "migrate_set_state, loadvm_state_setup, qemu_loadvm_state_section, "
    "runstate_set, migration_set_incoming_channel"
)
DEVICE_EVENTS = "qemu_loadvm_state_section_startfull"
PAGE_EVENTS = "postcopy_page_req_add, postcopy_page_req_del"
CHANNEL_EVENTS = "postcopy_ram_fault_thread_request, ram_load_postcopy_loop"
CHANNEL_NAMES = {0: "channel 0 (main)", 1: "channel 1 (preempt)"}

KIND_COLORS = {
    "section": "#9ecae1",
    "device": "#fd8d3c",
    "command": "#9e9ac8",
    "postcopy": "#41ab5d",
    "wait": "#ef3b2c",
    "qmp": "#bdbdbd",
    "page-request": "#e7298a",
}
OTHER_KIND_COLOR = "#c7e9c0"
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
)
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
INSTANT_SKIP = ("downtime",)  # one per device load, already drawn as the device's bar
LANE_KINDS_BACKGROUND = ("thread",)  # thread lifetimes: drawn as the lane's background band
MAX_SUBROWS = 4
MAX_BAR_LABELS = 80
CDF_POINTS = 1500  # points per CDF line at most
PIXELS_ACROSS = 2000  # BQL holds closer than 1/PIXELS_ACROSS of the window are drawn as one


def not_in_trace(events: str, what: str) -> NotInTrace:
    """A :class:`NotInTrace` asking to enable ``events`` (comma-separated names) for ``what``."""
    return NotInTrace(f"not in this trace: enable {events} (for {what})")


# ---------------------------------------------------------------------------------- lanes
def trace_start_ns(trace: Trace) -> int:
    """The first timestamp of the trace (ns); raises NotInTrace when it has none."""
    ts = trace.ts
    timed = ts[ts != NO_TIME]
    if not len(timed):
        raise NotInTrace(
            "not in this trace: timestamps (run QEMU with -msg timestamp=on, or use a "
            "trace backend that records them)"
        )
    return int(timed.min())


def trace_end_ns(trace: Trace) -> int:
    """The last timestamp of the trace (ns)."""
    ts = trace.ts
    timed = ts[ts != NO_TIME]
    return int(timed.max()) if len(timed) else NO_TIME


def _process_order(trace: Trace) -> list[str]:
    procs = trace.processes
    sides = dict(zip(procs["label"].astype(str), procs["side"], strict=True))
    labels = [str(x) for x in trace.threads["process"].cat.categories]
    rank = {s: i for i, s in enumerate(SIDE_ORDER)}
    return sorted(labels, key=lambda lab: (rank.get(str(sides.get(lab)), len(rank)), lab))


def _number_in(name: str) -> int:
    m = re.search(r"\d+", name)
    return int(m.group()) if m else -1


def thread_label(name: Any, role: str, tid: Any, carries_load: bool = False) -> str:
    """How a thread is shown: ``mig/dst/main (load, 22774)``; tid-less: ``all threads``."""
    if tid is None or tid is pd.NA:
        return "all threads (no thread ids)"
    what = f"{role}+load" if carries_load and role != "load" else role
    if name is None or name is pd.NA or (isinstance(name, float) and np.isnan(name)):
        return f"tid {int(tid)} ({what})"
    return f"{name} ({what}, {int(tid)})"


def thread_lanes(trace: Trace) -> pd.DataFrame:
    """Every thread of the trace in lane order: destination before source, then by role
    (main, load, listen, preempt, fault, recv_N, vCPU, others), then by number and TID.

    Columns: ``process``, ``tid`` (Int64, NA in traces without thread ids), ``role``, ``label``
    (with a ``dst · `` prefix when the trace has several processes), ``thread`` (the row of
    ``trace.threads``). The index is the lane number.
    """
    th = trace.threads
    procs = _process_order(trace)
    prank = {p: i for i, p in enumerate(procs)}
    rrank = {r: i for i, r in enumerate(ROLE_ORDER)}
    rows: list[dict[str, Any]] = []
    keys: list[tuple[int, int, int, int]] = []
    for i, r in enumerate(records(th)):
        role = str(r["role"])
        name = None if pd.isna(r["name"]) else str(r["name"])
        tid = None if pd.isna(r["tid"]) else int(r["tid"])
        label = thread_label(name, role, tid, bool(r["carries_load"]))
        if len(procs) > 1:
            label = f"{r['process']} · {label}"
        keys.append(
            (
                prank[str(r["process"])],
                rrank.get(role, len(rrank) + (role == "unknown")),
                _number_in(name or ""),
                tid if tid is not None else -1,
            )
        )
        rows.append({"process": str(r["process"]), "tid": tid, "role": role, "label": label, "thread": i})
    order = sorted(range(len(rows)), key=keys.__getitem__)
    out = pd.DataFrame([rows[i] for i in order], columns=["process", "tid", "role", "label", "thread"])
    out["tid"] = pd.array(out["tid"].tolist(), dtype="Int64")
    return out


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts keyed by column name (for loops over a few hundred rows at most)."""
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def _lane_keys(frame: pd.DataFrame) -> list[tuple[str, int]]:
    """(process, tid or -1) per row of a spans/holds/instants frame."""
    tids = frame["tid"].astype("Int64").fillna(-1).to_numpy(dtype=np.int64)
    return list(zip(frame["process"].astype(str).tolist(), tids.tolist(), strict=True))


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


# ---------------------------------------------------------------------------------- gantt
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
    timeline: Any = None,
    bql: Any = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> Figure:
    """Per-thread timeline of ``trace`` between ``start_ns`` and ``end_ns`` (absolute ns).

    One lane per thread that has something in the window (ordered as :func:`thread_lanes`),
    and one ``phases`` lane per process on top. In each lane: the thread's lifetime as a light
    band, spans (sections, device loads, commands, postcopy steps, QMP commands, waits, page
    requests) as bars, nested spans below their parent; BQL holds as a red hatched strip at the
    bottom of the holder's lane; instants (checkpoints, state changes) as ticks at the top.
    ``timeline``/``bql`` default to :func:`tracetool._timeline.timeline.build_timeline` and, when the
    trace has ``qemu_mutex_*`` events, :func:`tracetool._analyses.bql.report.analyze_bql`; pass ``bql=False``
    to leave the holds out. Traces without thread ids get one lane per process. Collections
    carry gids (``span:KIND:LANE``, ``bql:LANE``, ``instant:KIND``) for inspection.
    """
    from tracetool._timeline.timeline import build_timeline

    t0, t1 = trace_start_ns(trace), trace_end_ns(trace)
    lo = t0 if start_ns is None else int(start_ns)
    hi = t1 if end_ns is None else int(end_ns)
    if hi <= lo:
        raise UsageError(f"empty time window: end {hi} ns is not after start {lo} ns")
    tl = timeline if timeline is not None else build_timeline(trace)
    holds = _holds(trace, bql)
    spans = _in_window(tl.spans, "start_ns", "end_ns", lo, hi)
    inst = tl.instants[~tl.instants["kind"].isin(INSTANT_SKIP)]
    inst = _in_window(inst, "ts_ns", "ts_ns", lo, hi)
    holds = _in_window(holds, "start_ns", "end_ns", lo, hi) if holds is not None else None
    if not len(tl.spans) and not len(tl.instants) and holds is None:
        raise not_in_trace(PHASE_EVENTS, "the migration timeline")
    lanes = _gantt_lanes(trace, spans, inst, holds)
    if not lanes:
        raise UsageError(
            "nothing in this time window: no spans, BQL holds or instants between "
            f"{fmt_offset(lo - t0)} and {fmt_offset(hi - t0)} after the trace start"
        )
    axis = time_axis(t0, lo, hi)
    fig = Figure(figsize=(14, 1.6 + 0.55 * len(lanes)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
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
        for key, rows in _group_rows(_lane_keys(holds)).items():
            if key not in index:
                continue
            h = holds.iloc[rows]
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
    _gantt_legend(fig, kinds_seen, holds is not None and len(holds) > 0, inst)
    return fig


@dataclass
class _Lane:
    key: tuple[str, int]  # (process, tid or -1); phases lanes use tid -2
    label: str
    span_rows: np.ndarray | None = None


def _group_rows(keys: list[tuple[str, int]]) -> dict[tuple[str, int], np.ndarray]:
    groups: dict[tuple[str, int], list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return {k: np.array(v, dtype=np.int64) for k, v in groups.items()}


def _gantt_lanes(
    trace: Trace, spans: pd.DataFrame, inst: pd.DataFrame, holds: pd.DataFrame | None
) -> list[_Lane]:
    """Lanes with something to draw, phases lane first in each process."""
    is_phase = (spans["kind"] == "phase").to_numpy(dtype=bool)
    thread_spans = _group_rows(_lane_keys(spans[~is_phase]))
    idx_thread = np.flatnonzero(~is_phase)
    idx_phase = np.flatnonzero(is_phase)
    phase_keys = spans["process"].astype(str).to_numpy()[idx_phase]
    busy = set(thread_spans) | set(_lane_keys(inst))
    if holds is not None:
        busy |= set(_lane_keys(holds))
    multi = trace.threads["process"].nunique() > 1
    out: list[_Lane] = []
    seen_process: set[str] = set()
    for r in records(thread_lanes(trace)):
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
            facecolors="#e8eef7",
            zorder=0.5,
        ).set_gid(f"lifetime:{lane.label}")
    fg = np.flatnonzero(~bg)
    if not len(fg):
        return
    rows = _pack(starts[fg], ends[fg], MAX_SUBROWS)
    nrows = int(rows.max()) + 1
    top, height = y - 0.42, 0.62  # the bottom 0.2 of the lane is the BQL strip
    h = height / nrows
    rows_fg = records(spans.iloc[fg])
    is_phase = lane.key[1] == -2
    colors = phase_colors(str(r["name"]) for r in rows_fg) if is_phase else {}
    for k in np.unique(kind[fg]).tolist():
        sel = kind[fg] == k
        color = KIND_COLORS.get(k, OTHER_KIND_COLOR)
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


def phase_colors(names: Iterable[str]) -> dict[str, str]:
    """A distinct colour per phase name, in order of first appearance."""
    out: dict[str, str] = {}
    for n in names:
        if n not in out:
            out[n] = PHASE_COLORS[len(out) % len(PHASE_COLORS)]
    return out


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
    keys = _lane_keys(inst)
    ys = np.array([index.get(k, -1) for k in keys], dtype=float)
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
            color=INSTANT_COLORS.get(k, "#444444"),
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


def _gantt_legend(fig: Figure, kinds: set[str], has_bql: bool, inst: pd.DataFrame) -> None:
    handles: list[Any] = (
        [Patch(facecolor=PHASE_COLORS[0], edgecolor="#555555", label="phase")] if "phase" in kinds else []
    )
    handles += [
        Patch(facecolor=KIND_COLORS.get(k, OTHER_KIND_COLOR), edgecolor="#555555", label=k)
        for k in sorted(kinds - {"phase"})
    ]
    handles.append(Patch(facecolor="#e8eef7", label="thread alive"))
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
                color=INSTANT_COLORS.get(k, "#444444"),
                label=k,
            )
        )
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(len(handles), 8), fontsize=8, frameon=False
    )


def _holds(trace: Trace, bql: Any) -> pd.DataFrame | None:
    """All BQL holds with both ends known, or None when there are none to draw."""
    if bql is False:
        return None
    if bql is None:
        if trace.code_of("qemu_mutex_unlock") is None:
            return None
        from tracetool._analyses.bql.report import analyze_bql

        bql = analyze_bql(trace)
    frames = [p.holds for p in bql.processes.values() if p.mutex is not None and len(p.holds)]
    if not frames:
        return None
    cols = ["process", "tid", "start_ns", "end_ns", "role"]
    holds = pd.concat([f[cols].astype({"process": str, "role": str}) for f in frames], ignore_index=True)
    return holds[holds["start_ns"].notna() & holds["end_ns"].notna()].reset_index(drop=True)


# ---------------------------------------------------------------------------------- BQL CDFs
def bql_distribution(bql_report: Any) -> Figure:
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
        raise NotInTrace(
            getattr(bql_report, "note", None) or f"not in this trace: enable {MUTEX_EVENTS} (for BQL holds)"
        )
    procs.sort(key=lambda p: (p.side != "dst", p.side != "src", p.process))
    fig = Figure(figsize=(13, 0.8 + 3.8 * len(procs)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(procs), 2, squeeze=False)
    for row, p in enumerate(procs):
        holds = p.holds[p.holds["complete"].to_numpy(dtype=bool)]
        order = _holder_order(holds, p.waits, p.attribution)
        colors = {label: f"C{i % 10}" for i, label in enumerate(order)}
        for ax, frame, what in ((axes[row][0], holds, "hold"), (axes[row][1], p.waits, "wait")):
            _cdf_panel(ax, frame, what, p.attribution, colors)
            title = f"{p.process}: BQL {what} durations"
            if p.attribution == "call-site":
                title += " (no thread ids: per role, from the call site)"
            ax.set_title(title, fontsize=10)
    return fig


def _holder_labels(frame: pd.DataFrame, attribution: str | None) -> pd.Series:
    if attribution != "thread":
        return frame["role"].astype(str).map(lambda r: f"{r} (by call site)")
    names = frame["thread"].astype(object).where(frame["thread"].notna(), None)
    return pd.Series(
        [
            thread_label(n, str(r), t)
            for n, r, t in zip(
                names.tolist(), frame["role"].astype(str).tolist(), frame["tid"].tolist(), strict=True
            )
        ],
        index=frame.index,
    )


def _holder_order(holds: pd.DataFrame, waits: pd.DataFrame, attribution: str | None) -> list[str]:
    """Holders by total hold time, then those that only waited: one colour each."""
    out: list[str] = []
    for frame in (holds, waits):
        d = frame["duration_us"].to_numpy(dtype=float)
        ok = ~np.isnan(d)
        if not ok.any():
            continue
        labels = _holder_labels(frame[ok], attribution).to_numpy()
        totals = pd.Series(d[ok]).groupby(labels).sum().sort_values(ascending=False)
        out += [str(x) for x in totals.index if str(x) not in out]
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
    labels = _holder_labels(frame, attribution).to_numpy()
    floored = bool((d <= 0).any())
    for label in [x for x in colors if (labels == x).any()]:
        color = colors[label]
        x = np.sort(np.maximum(d[labels == label], 0.5))
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
        p50, p99 = (float(v) for v in np.percentile(d[labels == label], [50, 99]))
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
    ax.grid(True, which="major", color="#e5e5e5", lw=0.5)
    ax.legend(fontsize=7, loc="lower right", title="● p50   ◆ p99", title_fontsize=7)


# ---------------------------------------------------------------------------------- phases
def phase_waterfall(phase_report: Any, top: int = 15) -> Figure:
    """The incoming phases as a waterfall (top) and the ``top`` slowest device loads (bottom).

    Phase bars run from start to end on a time axis from the first phase's start; unclosed
    phases are hatched. Device bars give each device's load time (``idstr #instance`` when a
    device name occurs more than once). Gids: ``phases``, ``devices``.
    """
    ph = phase_report.phases
    if len(ph):
        ph = ph[ph["start_ns"].to_numpy(dtype=np.int64) != NO_TIME]
    if not len(ph):
        raise not_in_trace(PHASE_EVENTS, "incoming phases")
    dev = phase_report.devices
    if len(dev):
        dev = dev[dev["duration_us"].notna() & dev["closed"].to_numpy(dtype=bool)]
    shown = dev.sort_values("duration_us", ascending=False, kind="stable").head(top)
    nph, ndev = len(ph), len(shown)
    heights = [nph + 1.5] + ([ndev + 1.5] if ndev else [])
    fig = Figure(figsize=(12, 1.4 + 0.32 * sum(heights)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(heights), 1, squeeze=False, height_ratios=heights)[:, 0]
    _phase_panel(axes[0], ph, phase_report)
    if ndev:
        _device_panel(axes[1], shown, len(dev), dev)
    else:
        fig.text(
            0.01,
            0.005,
            f"no per-device loads in this trace: enable {DEVICE_EVENTS}",
            fontsize=8,
            color="#555555",
        )
    return fig


def _phase_panel(ax: Axes, ph: pd.DataFrame, report: Any) -> None:
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
    outcome = getattr(report, "outcome", None)
    proc = getattr(report, "process", None)
    ax.set_title(
        f"Incoming phases of {proc or 'the destination'}" + (f" — outcome: {outcome}" if outcome else ""),
        fontsize=10,
    )
    ax.grid(axis="x", color="#e5e5e5", lw=0.5)
    ax.set_axisbelow(True)


def _device_panel(ax: Axes, shown: pd.DataFrame, total: int, dev: pd.DataFrame) -> None:
    counts = dev["idstr"].astype(str).value_counts()
    labels = []
    for r in records(shown):
        name = str(r["idstr"])
        inst = r.get("instance_id")
        if counts.get(name, 0) > 1 and inst is not None and not pd.isna(inst):
            name += f" #{int(inst)}"
        labels.append(name)
    us = shown["duration_us"].to_numpy(dtype=float)
    scale, unit = (1000.0, "ms") if us.max() >= 2000 else (1.0, "µs")
    d = us / scale
    bars = ax.barh(
        np.arange(len(shown)), d, height=0.6, color=KIND_COLORS["device"], edgecolor="#333333", linewidth=0.5
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
    ax.grid(axis="x", color="#e5e5e5", lw=0.5)
    ax.set_axisbelow(True)


# ---------------------------------------------------------------------------------- postcopy
def page_requests(trace: Trace) -> pd.DataFrame:
    """Postcopy page requests of ``trace`` with the channel their page arrived on.

    Columns: ``process``, ``addr``, ``start_ns``, ``end_ns``, ``duration_us``, ``closed`` (False:
    not resolved before the trace ends), ``channel`` (Int64: 0 main, 1 preempt, NA unknown)
    and ``channel_from``: ``page`` when the ``ram_load_postcopy_loop`` that received the
    requested page says (its offset is found through ``postcopy_ram_fault_thread_request``),
    ``thread`` when only the resolving thread's role does (preempt: 1, listen/load: 0).
    """
    from tracetool._timeline.timeline import build_timeline

    s = build_timeline(trace).spans
    req = s[s["kind"] == "page-request"].reset_index(drop=True)
    out = pd.DataFrame(
        {
            "process": req["process"].astype(str),
            "addr": req["addr"].astype("Int64")
            if "addr" in req
            else pd.array([pd.NA] * len(req), dtype="Int64"),
            "start_ns": req["start_ns"].astype(np.int64),
            "end_ns": req["end_ns"].astype(np.int64),
            "duration_us": req["duration_us"].astype(float),
            "closed": req["closed"].astype(bool),
        }
    )
    channel = pd.array([pd.NA] * len(req), dtype="Int64")
    source = np.full(len(req), None, dtype=object)
    if len(req):
        by_page = _channel_by_page(trace, req)
        by_thread = _channel_by_thread(trace, req)
        for values, name in ((by_page, "page"), (by_thread, "thread")):
            fill = pd.isna(channel) & pd.notna(values)
            channel[fill] = values[fill]
            source[fill] = name
    out["channel"] = channel
    out["channel_from"] = pd.array(source, dtype="string")
    return out


def _channel_by_page(trace: Trace, req: pd.DataFrame) -> pd.arrays.IntegerArray:
    """Channel of the ram_load_postcopy_loop that loaded each requested page."""
    none = pd.array([pd.NA] * len(req), dtype="Int64")
    fault = trace.fields("postcopy_ram_fault_thread_request")
    loops = trace.fields("ram_load_postcopy_loop")
    if (
        not len(fault)
        or not len(loops)
        or not {"hostaddr", "offset"} <= set(fault.columns)
        or not {"channel", "addr"} <= set(loops.columns)
        or "addr" not in req
    ):
        return none
    q = pd.DataFrame(
        {
            "i": np.arange(len(req)),
            "hostaddr": req["addr"].astype("Int64").to_numpy(dtype=np.int64, na_value=-1),
            "begin": req["begin_row"].to_numpy(dtype=np.int64),
            "end": req["end_row"].astype("Int64").to_numpy(dtype=np.int64, na_value=-1),
        }
    )
    f = pd.DataFrame(
        {
            "hostaddr": fault["hostaddr"].to_numpy(dtype=np.int64, na_value=-2),
            "offset": fault["offset"].to_numpy(dtype=np.int64, na_value=-2),
            "frow": fault.index.to_numpy(dtype=np.int64),
        }
    )
    q = pd.merge_asof(
        q.sort_values("begin"),
        f.sort_values("frow"),
        left_on="begin",
        right_on="frow",
        by="hostaddr",
        direction="backward",
    )
    q = q[q["offset"].notna() & (q["end"] >= 0)].copy()
    q["offset"] = q["offset"].astype(np.int64)
    lp = pd.DataFrame(
        {
            "offset": loops["addr"].to_numpy(dtype=np.int64, na_value=-2),
            "channel": loops["channel"].to_numpy(dtype=np.int64, na_value=-1),
            "lrow": loops.index.to_numpy(dtype=np.int64),
        }
    )
    q = pd.merge_asof(
        q.sort_values("end"),
        lp.sort_values("lrow"),
        left_on="end",
        right_on="lrow",
        by="offset",
        direction="backward",
    )
    hit = q[q["channel"].notna() & (q["channel"] >= 0)]
    none[hit["i"].to_numpy(dtype=np.int64)] = hit["channel"].to_numpy(dtype=np.int64)
    return none


def _channel_by_thread(trace: Trace, req: pd.DataFrame) -> pd.arrays.IntegerArray:
    """1 when a preempt thread resolved the request, 0 for the listen/load thread."""
    out = pd.array([pd.NA] * len(req), dtype="Int64")
    if not trace.has_tids:
        return out
    end = req["end_row"].astype("Int64").to_numpy(dtype=np.int64, na_value=-1)
    ok = end >= 0
    roles = trace.threads["role"].astype(str).to_numpy()[trace.row_thread[end[ok]]]
    chan = np.select([roles == "preempt", np.isin(roles, ("listen", "load"))], [1, 0], -1)
    idx = np.flatnonzero(ok)[chan >= 0]
    out[idx] = chan[chan >= 0]
    return out


def page_latency(preempt_report_or_trace: Any) -> Figure:
    """Postcopy page-request latency (``postcopy_page_req_add`` → ``_del``) over time.

    One point per request at its start time, on a log latency axis, coloured by the channel
    its page came on (0 = main, 1 = preempt, see :func:`page_requests`); requests still open
    at the end of the trace are drawn as crosses at their age then. Accepts a Trace, or a
    report object carrying the Trace as ``trace`` or the frame of :func:`page_requests` as
    ``requests``. Scatter gids: ``channel:0``, ``channel:1``, ``channel:unknown``,
    ``unresolved``.
    """
    req, t0 = _page_request_source(preempt_report_or_trace)
    if not len(req):
        raise not_in_trace(PAGE_EVENTS, "postcopy page requests")
    timed = req[req["start_ns"] != NO_TIME]
    if not len(timed):
        raise NotInTrace("not in this trace: timestamps (for page-request latency)")
    width = int(timed["end_ns"].max() - timed["start_ns"].min())
    axis = time_axis(t0, t0, t0 + width)
    fig = Figure(figsize=(12, 5.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
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
            color={0: "C0", 1: "C3"}.get(c, "C7"),
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
    ax.grid(True, color="#e5e5e5", lw=0.5)
    fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    known = done["channel_from"].dropna().unique().tolist() if len(done) else []
    how = f"channel from {' and '.join(sorted(known))}" if known else "channel not in trace"
    ax.set_title(f"Postcopy page-request latency ({how})", fontsize=10)
    if not known:
        fig.text(0.01, 0.005, f"to split by channel, enable {CHANNEL_EVENTS}", fontsize=8, color="#555555")
    return fig


def _page_request_source(obj: Any) -> tuple[pd.DataFrame, int]:
    if isinstance(obj, Trace):
        return page_requests(obj), trace_start_ns(obj)
    trace = getattr(obj, "trace", None)
    if isinstance(trace, Trace):
        return page_requests(trace), trace_start_ns(trace)
    req = getattr(obj, "requests", None)
    if isinstance(req, pd.DataFrame):
        starts = req["start_ns"][req["start_ns"] != NO_TIME]
        return req, int(starts.min()) if len(starts) else 0
    raise TypeError(
        "page_latency needs the Trace (a PreemptReport holds only summary statistics of the page requests)"
    )


# ---------------------------------------------------------------------------------- compare
def compare_plot(before: Any, after: Any = None, labels: Sequence[str] = ("before", "after")) -> Figure:
    """Before/after: incoming phase durations (left) and BQL hold time per thread role (right).

    Either pass a :class:`tracetool._analyses.compare.Comparison` alone (its phase deltas and its
    thread pairs, labelled ``role: before thread / after thread``, and its side labels), or
    two sides, each a ``(PhaseReport | None, BqlReport | None)`` pair or an object with
    ``phases`` and ``bql`` attributes (such as ``ReportData``): then BQL hold time is summed
    per role, so the coroutine load (main thread) and the threaded load (``mig/dst/main``)
    line up by what they do. Bar patches carry gids ``phase:LABEL`` and ``bql:LABEL``.
    """
    bql_title = "BQL hold time per role (primary process)"
    if after is None and hasattr(before, "bql_threads"):
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
            f"not in this trace: enable {PHASE_EVENTS} (phases) or {MUTEX_EVENTS} "
            "(BQL holds) in both traces to compare them"
        )
    fig = Figure(
        figsize=(7 * len(used), 1.5 + 0.42 * max(len(_union(t)) for _, t in used)), layout="constrained"
    )
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(used), squeeze=False)[0]
    for ax, (what, tabs) in zip(axes, used, strict=True):
        _paired_bars(
            ax, tabs, list(labels), what, "Incoming phase durations" if what == "phase" else bql_title
        )
    return fig


def _comparison_tables(cmp: Any) -> tuple[list[pd.Series], list[pd.Series]]:
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
            color=("#6baed6", "#fd8d3c")[k % 2],
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
                    color="#555555",
                    transform=ax.get_yaxis_transform(),
                )
    ax.set_xscale("log")
    ax.set_yticks(y, names, fontsize=8)
    ax.set_ylim(len(names) - 0.4, -0.6)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("µs (log scale)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", color="#e5e5e5", lw=0.5)
    ax.set_axisbelow(True)


# ---------------------------------------------------------------------------------- saving
SAVE_FORMATS = ("png", "svg", "pdf")


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 130) -> None:
    """Writes ``fig`` to ``path`` atomically; the format follows the extension (png/svg/pdf)."""
    ext = os.fspath(path).rsplit(".", 1)[-1].lower() if "." in os.fspath(path) else ""
    if ext not in SAVE_FORMATS:
        raise UsageError(f"{os.fspath(path)}: give a .png, .svg or .pdf file name")
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=ext, dpi=dpi)
