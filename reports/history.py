"""``migtrace history`` as text: what ``add`` stored, a metric's points, the regression check."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from rich.console import Console

from reports.console import fmt_us, table
from tracetool._history.regressions import MetricCheck, RegressionReport, Verdict
from tracetool._history.store import Added
from tracetool._history.trend import Trend

MAX_LABELS_SHOWN = 3


def fmt_value(value: float | None, unit: str | None) -> str:
    """A metric value in its unit: ``12.3 ms``, ``136338``, ``0.42``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "us":
        return fmt_us(value) if value >= 0 else "-" + fmt_us(-value)
    if unit in ("count", "flag") and float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.4g}"


def fmt_time(ns: int) -> str:
    """UTC time to the second: ``2026-12-04 19:29:26``."""
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_labels(labels: dict[str, str], keep: Sequence[str] = ()) -> str:
    """``k=v, k=v`` (the ``keep`` keys first; at most a few)."""
    keys = [k for k in keep if k in labels] + [k for k in labels if k not in keep]
    shown = [f"{k}={labels[k]}" for k in keys[:MAX_LABELS_SHOWN]]
    more = len(keys) - MAX_LABELS_SHOWN
    return ", ".join(shown) + (f", +{more}" if more > 0 else "")


def added_lines(added: Sequence[Added], where: str) -> list[str]:
    """One line per run added (new, or already there with labels merged) and a total."""
    lines = []
    for a in added:
        what = f"added, {a.metrics} metric ids" if a.new else "already there: labels merged"
        if not a.new and a.metrics:
            what += f", {a.metrics} new metric ids"
        lines.append(f"{a.run}  {a.source or ''}: {what}")
    new = sum(1 for a in added if a.new)
    lines.append(f"{len(added)} runs -> {where} ({new} new, {len(added) - new} already there)")
    return lines


def render_trend(trend: Trend, out: Console) -> None:
    """The metric's points, oldest first, and each group's baseline band."""
    keep = [trend.by] if trend.by else []
    rows = [
        [fmt_time(p.time_ns), p.run, fmt_labels(p.labels, keep), fmt_value(p.value, trend.unit)]
        for p in trend.points
    ]
    title = f"{trend.metric} ({trend.unit or '?'}): {len(trend.points)} runs; times UTC (first event)"
    out.print(table(title, ["time", "run", "labels", "value"], rows, right=["value"]))
    for band in trend.bands:
        s = band.spread
        who = f"{trend.by}={band.group}" if trend.by else "all runs"
        out.print(
            f"baseline of {who}: median {fmt_value(s.median, trend.unit)}, quartiles "
            f"{fmt_value(s.q1, trend.unit)} .. {fmt_value(s.q3, trend.unit)} over {s.n} runs "
            f"({fmt_time(band.start_ns)} .. {fmt_time(band.end_ns)})"
        )


def _verdict_text(c: MetricCheck) -> str:
    if c.verdict is Verdict.TOO_FEW_RUNS:
        return f"too few runs ({c.baseline.n} + {c.recent.n})"
    return c.verdict.value.upper() if c.verdict is Verdict.REGRESSION else c.verdict.value


def render_regressions(report: RegressionReport, out: Console) -> None:
    """One row per metric (and group): baseline and recent medians, the shift with its
    interval and p-value, the verdict; then the count of regressions."""
    rows = []
    for c in report.checks:
        ch = c.change
        interval = (
            f"[{fmt_value(ch.ci_low, c.unit)}, {fmt_value(ch.ci_high, c.unit)}]"
            if ch.ci_low is not None and ch.ci_high is not None
            else "-"
        )
        rel = f" ({ch.relative * 100:+.0f} %)" if ch.relative is not None else ""
        rows.append(
            [
                c.metric + (f" [{c.group}]" if report.by else ""),
                f"{fmt_value(c.baseline.median, c.unit)} ({c.baseline.n})",
                f"{fmt_value(c.recent.median, c.unit)} ({c.recent.n})",
                (fmt_value(ch.shift, c.unit) + rel) if ch.shift is not None else "-",
                interval,
                f"{ch.p_value:.3f}" if ch.p_value is not None else "-",
                _verdict_text(c),
            ]
        )
    title = (
        f"the newest {report.recent} runs against the {report.baseline} before them"
        + (f", per {report.by}" if report.by else "")
        + f"; regression: significant (p < {report.alpha:g}) and up by >= {report.min_change * 100:g} %"
    )
    columns = ["metric", "baseline (n)", "recent (n)", "shift", "95 % interval", "p", "verdict"]
    out.print(table(title, columns, rows, right=["baseline (n)", "recent (n)", "shift", "p"]))
    n = len(report.regressions)
    out.print(f"{n} regression{'s' if n != 1 else ''}" if n else "no regression")
