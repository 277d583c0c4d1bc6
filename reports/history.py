"""``migtrace history`` as text: what ``add`` stored, a metric's points, the regression check."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from rich.console import Console

from reports.console import fmt_us, table
from tracetool._analyses.stats import min_p_value
from tracetool._history.regressions import MetricCheck, RegressionReport, Verdict
from tracetool._history.store import Added
from tracetool._history.trend import Band, Trend

MAX_LABELS_SHOWN = 2
LABELS_WIDTH = 40


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


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def fmt_labels(labels: dict[str, str], keep: Sequence[str] = ()) -> str:
    """``k=v, k=v``: the ``keep`` keys only when given, else the first few; cut to fit a
    terminal table."""
    keys = [k for k in keep if k in labels] if keep else list(labels)
    shown = ", ".join(f"{k}={shorten(labels[k], 24)}" for k in keys[:MAX_LABELS_SHOWN])
    more = len(keys) - MAX_LABELS_SHOWN
    return shorten(shown + (f", +{more}" if more > 0 else ""), LABELS_WIDTH)


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
        out.print(band_line(trend, band))


def band_line(trend: Trend, band: Band) -> str:
    """``baseline of build=X (10 runs): median 12.3 ms, quartiles 11.9 ms .. 13.0 ms``."""
    s = band.spread
    who = f"{trend.by}={shorten(str(band.group), 30)}" if trend.by else "all runs"
    return (
        f"baseline of {who} ({s.n} runs): median {fmt_value(s.median, trend.unit)}, quartiles "
        f"{fmt_value(s.q1, trend.unit)} .. {fmt_value(s.q3, trend.unit)}"
    )


def _verdict_text(c: MetricCheck) -> str:
    if c.verdict is Verdict.TOO_FEW_RUNS:
        return "too few runs"
    return c.verdict.value.upper() if c.verdict is Verdict.REGRESSION else c.verdict.value


def fmt_change(c: MetricCheck) -> str:
    """The shift relative to the baseline median with its interval: ``+17 % [+5, +30]``, or
    in the metric's unit when the baseline median is 0."""
    ch, base = c.change, c.baseline.median
    if ch.shift is None:
        return "-"
    if not base:
        low, high = ch.ci_low, ch.ci_high
        bounds = (
            f" [{fmt_value(low, c.unit)}, {fmt_value(high, c.unit)}]"
            if low is not None and high is not None
            else ""
        )
        return f"{fmt_value(ch.shift, c.unit)}{bounds}"
    text = f"{ch.shift / base * 100:+.0f} %"
    if ch.ci_low is not None and ch.ci_high is not None:
        text += f" [{ch.ci_low / base * 100:+.0f}, {ch.ci_high / base * 100:+.0f}]"
    return text


def baseline_needed(recent: int, alpha: float, most: int = 1000) -> int | None:
    """The fewest baseline runs with which ``recent`` runs can show a significant change."""
    return next((b for b in range(1, most) if min_p_value(b, recent) < alpha), None)


def render_regressions(report: RegressionReport, out: Console) -> None:
    """One row per metric (and group): baseline and recent medians, the change with its
    interval, the p-value and the verdict; then the count of regressions."""
    rows = [
        [
            shorten(c.metric + (f" [{c.group}]" if report.by else ""), 34),
            fmt_value(c.baseline.median, c.unit),
            fmt_value(c.recent.median, c.unit),
            fmt_change(c),
            f"{c.change.p_value:.3f}" if c.change.p_value is not None else "-",
            _verdict_text(c),
        ]
        for c in report.checks
    ]
    title = f"newest {report.recent} runs against the {report.baseline} before them" + (
        f", per {report.by}" if report.by else ""
    )
    columns = ["metric", "baseline", "recent", "change [95 %]", "p", "verdict"]
    out.print(table(title, columns, rows, right=["baseline", "recent", "change [95 %]", "p"]))
    few = [c for c in report.checks if c.verdict is Verdict.TOO_FEW_RUNS]
    if few:
        need = baseline_needed(report.recent, report.alpha)
        out.print(
            f"{len(few)} of {len(report.checks)}: too few runs to tell a change from noise"
            + (f" ({report.recent} recent runs need >= {need} before them)" if need else "")
        )
    n = len(report.regressions)
    rule = f"regression: significant (p < {report.alpha:g}) and up by at least {report.min_change * 100:g} %"
    out.print(f"{n} regression{'s' if n != 1 else ''} ({rule})" if n else f"no regression ({rule})")
