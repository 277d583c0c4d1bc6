"""A metric over the history: every run's value in time order, grouped by a label, with the
baseline band each group's recent runs are judged against.

The windows are the same as :mod:`tracetool._history.regressions` uses: in each group, the
``recent`` newest runs, and the ``baseline`` runs just before them. The band is the baseline's
median and quartiles.

    >>> with History() as h:
    ...     t = trend(h, "downtime.end_to_end", by="build")
    >>> t.to_json()["points"][0]
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tracetool._analyses.stats import Spread, spread
from tracetool._check.runmetrics import canonical_id
from tracetool._history.store import History, Point
from tracetool.errors import UsageError

DEFAULT_RECENT = 3
DEFAULT_BASELINE = 10
NO_LABEL = None


@dataclass(frozen=True)
class Windows:
    """One group's runs split in time order: ``baseline`` runs, then the ``recent`` ones."""

    group: str | None
    baseline: tuple[Point, ...]
    recent: tuple[Point, ...]
    earlier: int  # runs older than the baseline window, not used


@dataclass(frozen=True)
class Band:
    """A group's baseline: the spread of its values and the time span of its runs."""

    group: str | None
    spread: Spread
    start_ns: int
    end_ns: int


def check_windows(recent: int, baseline: int) -> None:
    """UsageError unless both windows hold at least one run."""
    if recent < 1 or baseline < 1:
        raise UsageError(f"--recent {recent} --baseline {baseline}: each window needs at least 1 run")


def group_points(points: Sequence[Point], by: str | None) -> dict[str | None, list[Point]]:
    """Points by the value of label ``by`` (None: one group; runs without it: group None),
    each group oldest first, groups in the order of their first run."""
    groups: dict[str | None, list[Point]] = {}
    for p in points:
        groups.setdefault(p.labels.get(by) if by else NO_LABEL, []).append(p)
    return groups


def split_windows(points: Sequence[Point], group: str | None, recent: int, baseline: int) -> Windows:
    """The newest ``recent`` points and the ``baseline`` before them (fewer when the group
    has fewer runs: the recent window fills first)."""
    ordered = sorted(points, key=lambda p: (p.time_ns, p.run))
    cut = max(0, len(ordered) - recent)
    new = tuple(ordered[cut:])
    start = max(0, cut - baseline)
    return Windows(group, tuple(ordered[start:cut]), new, start)


@dataclass(frozen=True)
class Trend:
    """One metric over the history (see the module docstring)."""

    metric: str
    unit: str | None
    points: tuple[Point, ...]
    by: str | None
    windows: tuple[Windows, ...]

    @property
    def bands(self) -> list[Band]:
        """The baseline band of each group that has baseline runs."""
        out = []
        for w in self.windows:
            if w.baseline:
                times = [p.time_ns for p in w.baseline]
                out.append(Band(w.group, spread([p.value for p in w.baseline]), min(times), max(times)))
        return out

    def groups(self) -> dict[str | None, list[Point]]:
        """The points of each group, oldest first."""
        return group_points(self.points, self.by)

    def to_json(self) -> dict[str, Any]:
        """``{"metric", "unit", "points": [{"run", "time_ns", "labels", "value"}]}``."""
        return {"metric": self.metric, "unit": self.unit, "points": [p.to_json() for p in self.points]}


def stored_metric(history: History, metric: str) -> str:
    """The canonical id of ``metric``; UsageError naming close ids when no run has it."""
    wanted = canonical_id(metric)
    known = history.metric_ids()
    if wanted in known:
        return wanted
    close = difflib.get_close_matches(wanted, list(known), n=3, cutoff=0.6)
    hint = f" (did you mean: {', '.join(close)}?)" if close else ""
    if not known:
        hint = " (the history is empty: migtrace history add RUN...)"
    raise UsageError(f"no run in {history.shown} has {wanted}{hint}")


def trend(
    history: History,
    metric: str,
    *,
    by: str | None = None,
    where: Mapping[str, str] | None = None,
    recent: int = DEFAULT_RECENT,
    baseline: int = DEFAULT_BASELINE,
) -> Trend:
    """The values of ``metric`` (a metric id as ``migtrace check`` spells it) in the history,
    grouped by label ``by``; ``where`` keeps runs with those label values."""
    check_windows(recent, baseline)
    wanted = stored_metric(history, metric)
    unit, points = history.series(wanted, where)
    windows = tuple(split_windows(pts, g, recent, baseline) for g, pts in group_points(points, by).items())
    return Trend(wanted, unit, tuple(points), by, windows)
