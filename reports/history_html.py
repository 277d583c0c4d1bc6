"""The run history of one metric as one self-contained HTML page (``history show --format html``).

The same page frame as the report (:func:`reports.html.render_html`): inline CSS, the figure
embedded as a data URI, a Content Security Policy that forbids any fetch, no script. Every
string that came from a trace, a label or the store (run ids, label keys and values, the
metric id) is HTML-escaped by that frame.
"""

from __future__ import annotations

from reports.blocks import Para, Section
from reports.history import fmt_labels, fmt_time, fmt_value
from reports.html import EmbeddedFigure, embed, render_html
from tracetool._history.trend import Trend

FOOTER = "made by migtrace from its run history; this page loads nothing from the network"


def history_sections(trend: Trend) -> list[Section]:
    """The baseline of each group and every run's value, as page sections."""
    baseline = Section("baseline", "Baseline")
    for band in trend.bands:
        s = band.spread
        who = f"{trend.by}={band.group}" if trend.by else "all runs"
        baseline.blocks.append(
            Para(
                f"{who}: median {fmt_value(s.median, trend.unit)}, quartiles {fmt_value(s.q1, trend.unit)} "
                f".. {fmt_value(s.q3, trend.unit)} over {s.n} runs ({fmt_time(band.start_ns)} .. "
                f"{fmt_time(band.end_ns)} UTC)",
                "headline",
            )
        )
    if not trend.bands:
        baseline.blocks.append(Para("no group has runs before its recent window: no baseline yet", "note"))
    runs = Section("runs", "Runs")
    keep = [trend.by] if trend.by else []
    recent = {p.run for w in trend.windows for p in w.recent}
    runs.add_table(
        f"{trend.metric}: every run, oldest first (times UTC of the first event)",
        ["time (UTC)", "run", "labels", "value", "window"],
        [
            [
                fmt_time(p.time_ns),
                p.run,
                fmt_labels(p.labels, keep),
                fmt_value(p.value, trend.unit),
                "recent" if p.run in recent else "",
            ]
            for p in trend.points
        ],
        right=["value"],
    )
    return [baseline, runs]


def history_html(trend: Trend, where: str) -> str:
    """The page: the trend figure, the baselines and the runs."""
    figures: dict[str, list[EmbeddedFigure | str]] = {}
    try:
        from reports.plots.trend import trend_plot

        figures["baseline"] = [embed(trend_plot(trend), f"{trend.metric} over the runs")]
    except ImportError:
        figures["baseline"] = ["figure: not available (matplotlib is not installed)"]
    intro = [
        f"history: {where}",
        f"{len(trend.points)} runs" + (f", grouped by {trend.by}" if trend.by else ""),
    ]
    return render_html(f"migtrace history: {trend.metric}", history_sections(trend), figures, intro, [FOOTER])
