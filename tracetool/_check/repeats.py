"""Repeated runs compared: several migrations per side, metric by metric, with statistics.

Each side is a list of runs (run folders, or a build's folder of ``run-K`` folders as
``migtrace capture`` writes them). The runs of a side are loaded one after another; of each
only the values of the metrics are kept (each evaluated by :func:`measure_metric`, exactly as
``migtrace check`` would), so memory stays that of one trace. Per metric and side: every run's
value, n, median and quartiles; the change as a Hodges–Lehmann shift with its Mann–Whitney
interval and p-value (``tracetool._analyses.stats``).

    >>> cmp = compare_runs(["runs/qemu-7.2.22"], ["runs/threadify"])
    >>> cmp.metric("downtime.end_to_end").change.p_value
    >>> cmp.to_json()["metrics"][0]["before"]["median"]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracetool._analyses.stats import ALPHA, Change, Spread, change, spread
from tracetool._check.evaluate import measure_metric
from tracetool._check.metric_types import Kind
from tracetool._check.rules import MetricReference, bind_reference
from tracetool._model.load import load_run
from tracetool._model.runfolder import run_folder, runs_in
from tracetool.errors import UsageError

HEADLINE_METRICS = (
    "bql.hold.total{load=true}",
    "downtime.end_to_end",
    "total_time.dst",
    "phases.switchover.duration",
)
"""The metrics every comparison shows first (and draws)."""

DEFAULT_METRICS = (
    *HEADLINE_METRICS,
    "bql.hold.max{load=true}",
    "bql.wait.total{load=true}",
    "bql.hold.total{load=false}",
    "downtime.src",
    "downtime.dst",
    "total_time.src",
    "phases.precopy.duration",
    "phases.devices.duration",
    "phases.postcopy.duration",
    "ram.pages",
    "ram.iterations",
    "preempt.packaged_wait",
    "preempt.page_requests.p50",
    "preempt.page_requests.p99",
)
"""The metrics compared unless others are asked for (metric ids as ``migtrace check`` spells
them; one a run cannot give is left without a value for that run)."""

NUMERIC = (Kind.DURATION, Kind.COUNT, Kind.NUMBER)
UNITS = {Kind.DURATION: "us", Kind.COUNT: "count", Kind.NUMBER: "number"}

RunProgress = Callable[[str, int, int, str], None]
"""Called before each run is loaded: (side label, run number from 1, runs of that side, name)."""


@dataclass(frozen=True)
class RunValues:
    """What is kept of one run: where it came from and its metric values (None: not
    measurable in that run; ``reasons`` says why)."""

    name: str
    paths: tuple[str, ...]
    label: str | None
    outcome: str | None
    values: dict[str, float | None]
    reasons: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``{"name", "paths", "label", "outcome"}``."""
        return {"name": self.name, "paths": list(self.paths), "label": self.label, "outcome": self.outcome}


@dataclass(frozen=True)
class Side:
    """The runs of one side under its label."""

    label: str
    runs: tuple[RunValues, ...]

    def to_json(self) -> dict[str, Any]:
        """``{"label", "runs": [...]}``."""
        return {"label": self.label, "runs": [r.to_json() for r in self.runs]}


@dataclass(frozen=True)
class MetricChange:
    """One metric on both sides and the change between them."""

    metric: str
    kind: Kind
    before: Spread
    after: Spread
    change: Change
    headline: bool = False
    reasons: dict[str, str | None] = field(default_factory=dict)  # side -> why runs had no value

    @property
    def unit(self) -> str:
        """``us`` for durations, ``count`` or ``number``."""
        return UNITS[self.kind]

    @property
    def measured(self) -> bool:
        """Whether any run of either side had a value."""
        return bool(self.before.n or self.after.n)

    def to_json(self) -> dict[str, Any]:
        """``{"metric", "unit", "headline", "before", "after", "change", "not_measurable"}``."""
        return {
            "metric": self.metric,
            "unit": self.unit,
            "headline": self.headline,
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "change": self.change.to_json(),
            "not_measurable": {side: why for side, why in self.reasons.items() if why},
        }


@dataclass(frozen=True)
class RunsComparison:
    """Several runs per side compared metric by metric (see the module docstring)."""

    before: Side
    after: Side
    metrics: tuple[MetricChange, ...]
    alpha: float = ALPHA

    @property
    def single(self) -> bool:
        """One run per side: no spread, so no noise estimate."""
        return len(self.before.runs) == 1 and len(self.after.runs) == 1

    def metric(self, metric_id: str) -> MetricChange:
        """The comparison of one metric id (KeyError when it was not compared)."""
        for m in self.metrics:
            if m.metric == metric_id:
                return m
        raise KeyError(metric_id)

    @property
    def headline(self) -> list[MetricChange]:
        """The headline metrics that had values."""
        return [m for m in self.metrics if m.headline and m.measured]

    def to_json(self) -> dict[str, Any]:
        """``{"before", "after", "metrics", "alpha", "method"}`` (keys in the README)."""
        return {
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "metrics": [m.to_json() for m in self.metrics],
            "alpha": self.alpha,
            "method": "Hodges-Lehmann shift (after - before) with the interval of the two-sided "
            "Mann-Whitney test; significant: p < alpha and the interval excludes 0",
        }


# ---------------------------------------------------------------------------------- runs
def side_runs(paths: Sequence[str]) -> list[tuple[str, ...]]:
    """The runs a side's paths stand for: each run folder is a run (a folder of ``run-K``
    folders is each of them); trace files and globs together are one run."""
    runs: list[tuple[str, ...]] = []
    loose: list[str] = []
    for p in paths:
        folders = runs_in(p) if p != "-" else []
        if folders:
            runs.extend((f.path,) for f in folders)
        else:
            loose.append(p)
    if loose:
        runs.append(tuple(loose))
    return runs


def bind_metrics(metrics: Sequence[str]) -> list[MetricReference]:
    """Binds metric ids; only numeric metrics (durations, counts, numbers) can be compared."""
    refs = [bind_reference(m) for m in dict.fromkeys(metrics)]
    for r in refs:
        if r.metric.kind not in NUMERIC:
            raise UsageError(
                f"{r.text} is a {r.metric.kind} metric: compare takes durations, counts and numbers"
            )
    return refs


def measure_run(
    paths: Sequence[str],
    refs: Sequence[MetricReference],
    *,
    events: Sequence[str] = (),
    input_format: str | None = None,
    force: bool = False,
) -> RunValues:
    """Loads one run, evaluates the metrics on it and keeps only their values."""
    run = load_run(list(paths), events=events, input_format=input_format, force=force)
    docs: dict[str, dict[str, Any]] = {}
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for ref in refs:
        m = measure_metric(run.trace, ref, query_migrate=run.query_migrate, docs=docs)
        values[ref.text] = float(m.value) if m.measurable and m.value is not None else None
        if values[ref.text] is None:
            reasons[ref.text] = m.reason or "no value"
    outcome = measure_metric(run.trace, "outcome", docs=docs)
    name = run.name if run.folder is not None else ", ".join(os.path.basename(p) for p in paths)
    return RunValues(
        name, tuple(paths), run.label, str(outcome.value) if outcome.measurable else None, values, reasons
    )


def _side_label(given: str | None, runs: Sequence[str | None], default: str) -> str:
    if given:
        return given
    found = set(runs)
    only = found.pop() if len(found) == 1 else None
    return only or default


def side_labels(
    given: tuple[str | None, str | None], before: Sequence[str | None], after: Sequence[str | None]
) -> tuple[str, str]:
    """The names of the two sides: as given, else the label all runs of a side share (the
    build's label in the capture, or its QEMU version), else before/after; two equal names
    become ``before (X)`` / ``after (X)``."""
    names = (_side_label(given[0], before, "before"), _side_label(given[1], after, "after"))
    if names[0] == names[1] and not (given[0] and given[1]):
        names = (f"before ({names[0]})", f"after ({names[1]})")
    return names


def folder_label(paths: Sequence[str]) -> str | None:
    """The label of a run given as one run folder (None for trace files)."""
    folder = run_folder(paths[0]) if len(paths) == 1 else None
    return folder.label if folder is not None else None


def compare_runs(
    before: str | Sequence[str],
    after: str | Sequence[str],
    *,
    labels: tuple[str | None, str | None] = (None, None),
    metrics: Sequence[str] = DEFAULT_METRICS,
    events: Sequence[str] = (),
    input_format: str | None = None,
    force: bool = False,
    progress: RunProgress | None = None,
) -> RunsComparison:
    """Compares the runs of two sides metric by metric (see the module docstring).

    ``before`` / ``after``: run folders, folders of ``run-K`` folders, or trace paths (which
    together are one run). ``labels``: the sides' names; by default the build's label in the
    capture or its QEMU version (when all runs of a side agree), else before/after.
    ``metrics``: metric ids as ``migtrace check`` spells them (numeric ones).
    Raises UsageError, RulesError or InputError as loading and binding do.
    """
    refs = bind_metrics(metrics)
    sides: list[list[RunValues]] = []
    for which, paths in (("before", before), ("after", after)):
        runs = side_runs([paths] if isinstance(paths, str) else list(paths))
        if not runs:
            raise UsageError(f"no runs on the {which} side")
        kept = []
        for i, run_paths in enumerate(runs, 1):
            if progress is not None:
                progress(which, i, len(runs), ", ".join(run_paths))
            kept.append(measure_run(run_paths, refs, events=events, input_format=input_format, force=force))
        sides.append(kept)
    names = side_labels(labels, [r.label for r in sides[0]], [r.label for r in sides[1]])
    b_side, a_side = Side(names[0], tuple(sides[0])), Side(names[1], tuple(sides[1]))
    changes = tuple(_metric_change(ref, b_side, a_side) for ref in refs)
    return RunsComparison(b_side, a_side, changes)


def _metric_change(ref: MetricReference, before: Side, after: Side) -> MetricChange:
    b = spread([r.values[ref.text] for r in before.runs])
    a = spread([r.values[ref.text] for r in after.runs])
    reasons = {
        side.label: next((r.reasons[ref.text] for r in side.runs if ref.text in r.reasons), None)
        for side in (before, after)
    }
    return MetricChange(
        ref.text,
        ref.metric.kind,
        b,
        a,
        change(b.measured, a.measured),
        ref.text in HEADLINE_METRICS,
        {"before": reasons[before.label], "after": reasons[after.label]},
    )
