"""Regressions: the newest runs against a baseline window of the runs before them.

For each metric (and each group of ``--by LABEL``), the ``recent`` newest runs are compared
with the ``baseline`` runs just before them with the statistics of ``migtrace compare``
(:mod:`tracetool._analyses.stats`): the Hodges–Lehmann shift with its Mann–Whitney interval
and p-value. A change is beyond the baseline's own noise when it is significant (p < alpha
and the interval excludes 0); it is a **regression** when the metric went up by at least
``min_change`` of the baseline's median, an improvement when it went down by as much. Every
metric migtrace measures is a cost (time, work done, problems found), so up is worse.

Few runs cannot show a change: with 3 recent runs the baseline needs at least 5 for a 5 %
test to be able to reject (``stats.too_few_note`` says so instead of a verdict).

    >>> with History() as h:
    ...     report = find_regressions(h, by="machine")
    >>> report.exit_code, [c.metric for c in report.regressions]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tracetool._analyses.stats import ALPHA, Change, Spread, change, spread
from tracetool._check.repeats import DEFAULT_METRICS
from tracetool._check.runmetrics import canonical_id
from tracetool._history.store import History
from tracetool._history.trend import (
    DEFAULT_BASELINE,
    DEFAULT_RECENT,
    Windows,
    check_windows,
    group_points,
    split_windows,
    stored_metric,
)
from tracetool.errors import UsageError

DEFAULT_MIN_CHANGE = 0.05


class Verdict(StrEnum):
    """What the recent runs show against the baseline."""

    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    UNCHANGED = "unchanged"
    TOO_FEW_RUNS = "too few runs"


@dataclass(frozen=True)
class MetricCheck:
    """One metric (in one group) judged: both windows, the change and the verdict."""

    metric: str
    unit: str | None
    group: str | None
    baseline: Spread
    recent: Spread
    change: Change
    verdict: Verdict
    baseline_runs: tuple[str, ...]
    recent_runs: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """``{"metric", "unit", "group", "verdict", "baseline", "recent", "change", ...}``."""
        return {
            "metric": self.metric,
            "unit": self.unit,
            "group": self.group,
            "verdict": self.verdict.value,
            "baseline": self.baseline.to_json(),
            "recent": self.recent.to_json(),
            "change": self.change.to_json(),
            "baseline_runs": list(self.baseline_runs),
            "recent_runs": list(self.recent_runs),
        }


@dataclass(frozen=True)
class RegressionReport:
    """Every metric checked; ``exit_code`` is 1 when any regressed."""

    checks: tuple[MetricCheck, ...]
    by: str | None
    recent: int
    baseline: int
    min_change: float
    alpha: float = ALPHA

    @property
    def regressions(self) -> list[MetricCheck]:
        """The checks that found a regression."""
        return [c for c in self.checks if c.verdict is Verdict.REGRESSION]

    @property
    def exit_code(self) -> int:
        """1 when a regression was found, else 0."""
        return 1 if self.regressions else 0

    def to_json(self) -> dict[str, Any]:
        """``{"by", "recent", "baseline", "min_change", "alpha", "method", "regressions",
        "checks"}``."""
        return {
            "by": self.by,
            "recent": self.recent,
            "baseline": self.baseline,
            "min_change": self.min_change,
            "alpha": self.alpha,
            "method": "recent runs against the baseline runs before them: Hodges-Lehmann shift "
            "(recent - baseline) with the interval of the two-sided Mann-Whitney test; regression: "
            "significant (p < alpha, interval excludes 0) and up by at least min_change",
            "regressions": len(self.regressions),
            "checks": [c.to_json() for c in self.checks],
        }


def verdict(c: Change, min_change: float) -> Verdict:
    """The verdict on a change (see the module docstring)."""
    if c.shift is None or c.p_value is None:
        return Verdict.TOO_FEW_RUNS
    if not c.significant:
        return Verdict.TOO_FEW_RUNS if c.note and c.note.startswith("too few") else Verdict.UNCHANGED
    big = c.relative is None or abs(c.relative) >= min_change
    if not big:
        return Verdict.UNCHANGED
    return Verdict.REGRESSION if c.shift > 0 else Verdict.IMPROVEMENT


def check_windows_of(
    metric: str, unit: str | None, w: Windows, min_change: float, alpha: float
) -> MetricCheck:
    """One group's windows judged."""
    base = [p.value for p in w.baseline]
    new = [p.value for p in w.recent]
    c = change(base, new, alpha)
    return MetricCheck(
        metric,
        unit,
        w.group,
        spread(base),
        spread(new),
        c,
        verdict(c, min_change),
        tuple(p.run for p in w.baseline),
        tuple(p.run for p in w.recent),
    )


def find_regressions(
    history: History,
    metrics: Sequence[str] | None = None,
    *,
    by: str | None = None,
    where: Mapping[str, str] | None = None,
    recent: int = DEFAULT_RECENT,
    baseline: int = DEFAULT_BASELINE,
    min_change: float = DEFAULT_MIN_CHANGE,
    alpha: float = ALPHA,
) -> RegressionReport:
    """Checks ``metrics`` (default: those of ``migtrace compare`` the history has) for a
    regression of the ``recent`` newest runs against the ``baseline`` runs before them, per
    group of label ``by``; ``where`` keeps runs with those label values."""
    check_windows(recent, baseline)
    if min_change < 0:
        raise UsageError(f"--min-change {min_change}: not negative")
    if metrics:
        wanted = [stored_metric(history, m) for m in dict.fromkeys(metrics)]
    else:
        known = history.metric_ids()
        wanted = [m for m in (canonical_id(d) for d in DEFAULT_METRICS) if m in known]
        if not wanted:
            raise UsageError(
                f"{history.shown} has none of the default metrics: name some with --metric"
                + ("" if known else " (the history is empty: migtrace history add RUN...)")
            )
    checks = []
    for metric in wanted:
        unit, points = history.series(metric, where)
        for group, pts in group_points(points, by).items():
            w = split_windows(pts, group, recent, baseline)
            checks.append(check_windows_of(metric, unit, w, min_change, alpha))
    return RegressionReport(tuple(checks), by, recent, baseline, min_change, alpha)
