"""The guest's pause on one axis: the source's and the destination's steps in two lanes, data in
transit between them, and the critical path drawn over them."""

from __future__ import annotations

import itertools
from typing import Any

from matplotlib.patches import Patch

from reports.console import fmt_us
from reports.plots.common import GRID_COLOR, NOTE_COLOR, SIDE_COLORS, new_figure
from tracetool._analyses.downtime.result import DowntimeReport
from tracetool.errors import NotInTrace

LANES = {"src": 2.0, "wire": 1.0, "dst": 0.0}
LANE_NAMES = {"src": "source", "wire": "in transit", "dst": "destination"}
COLORS = {"src": SIDE_COLORS[0], "dst": SIDE_COLORS[1], "wire": "#9e9e9e"}
CRITICAL_EDGE = "#b2182b"
LABEL_SHARE = 0.04
"""Steps longer than this share of the pause are named on the figure."""


def downtime_figure(report: DowntimeReport) -> Any:
    """Source and destination lanes on one axis (ms since the source stopped the VM, on the
    destination's clock); each side's steps as pale bars, the critical path as solid bars with
    a red edge (hatched where the clock alignment is less certain than the step). Gids:
    ``lane-src``, ``lane-dst``, ``critical``."""
    doc = report.to_json()
    path = doc["critical_path"]
    if not path or doc["start"] is None:
        why = "; ".join(doc["notes"]) or "no pause in this trace"
        raise NotInTrace(f"not in this trace: the pause end to end ({why})")
    zero = doc["start"]["ns"]
    total_ms = (doc["end"]["ns"] - zero) / 1e6

    def ms(ns: int) -> float:
        return (ns - zero) / 1e6

    fig = new_figure(12, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    for side in ("src", "dst"):
        steps = doc["steps"].get(side) or []
        bars = [(ms(s["start_ns"]), (s["end_ns"] - s["start_ns"]) / 1e6) for s in steps]
        colors = ["#eeeeee" if s["gap"] else COLORS[side] for s in steps]
        coll = ax.broken_barh(bars, (LANES[side] - 0.3, 0.6), facecolors=colors, alpha=0.35, linewidth=0)
        coll.set_gid(f"lane-{side}")
    for s in path:
        x, w = ms(s["start_ns"]), s["us"] / 1000.0
        bar = ax.broken_barh(
            [(x, w)],
            (LANES[s["side"]] - 0.18, 0.36),
            facecolors=COLORS[s["side"]],
            edgecolors=CRITICAL_EDGE,
            linewidth=0.8,
            hatch="//" if s["uncertain"] else None,
        )
        bar.set_gid("critical")
        if w >= LABEL_SHARE * total_ms:
            name = s["step"] + (f" {str(s['device']).rsplit('/', 1)[-1]}" if s["device"] else "")
            ax.text(x + w / 2, LANES[s["side"]] + 0.24, name, ha="center", va="bottom", fontsize=7)
    for a, b in itertools.pairwise(path):
        if a["side"] != b["side"]:
            ax.plot(
                [ms(b["start_ns"])] * 2, [LANES[a["side"]], LANES[b["side"]]], color=CRITICAL_EDGE, lw=0.8
            )
    if doc["source_end"] is not None:
        x = ms(doc["source_end"]["ns"])
        ax.axvline(x, color=NOTE_COLOR, lw=0.8, ls="--")
        ax.text(x, 2.55, " source done", fontsize=7, color=NOTE_COLOR, va="bottom")
    if doc["reported_us"] is not None:
        x = doc["reported_us"] / 1000.0
        ax.axvline(x, color=CRITICAL_EDGE, lw=0.8, ls=":")
        ax.text(x, -0.62, f" QEMU reported {fmt_us(doc['reported_us'])}", fontsize=7, color=CRITICAL_EDGE)
    ax.set_yticks([LANES[k] for k in LANES], [LANE_NAMES[k] for k in LANES])
    ax.set_ylim(-0.8, 2.9)
    ax.set_xlim(0, total_ms * 1.01)
    ax.set_xlabel("ms since the source stopped the VM (destination's clock)")
    ax.grid(axis="x", color=GRID_COLOR)
    title = f"guest paused {fmt_us(doc['end_to_end_us'])} end to end"
    if doc["reported_us"] is not None:
        title += f"; QEMU reported {fmt_us(doc['reported_us'])}"
    ax.set_title(title, loc="left", fontsize=10)
    ax.legend(
        handles=[
            Patch(facecolor=COLORS["src"], edgecolor=CRITICAL_EDGE, label="critical path"),
            Patch(facecolor=COLORS["dst"], alpha=0.35, label="a side's own steps"),
        ],
        loc="upper right",
        fontsize=7,
    )
    return fig
