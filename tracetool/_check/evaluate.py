"""Evaluating rules on a loaded trace: PASS, FAIL or SKIP with the observed value."""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from tracetool._analyses import registry
from tracetool._analyses.events import event_data, missing_required
from tracetool._check.grammar import Expression
from tracetool._check.measure import Measurement, measure
from tracetool._check.metric_types import Kind, Metric
from tracetool._check.rulefile import load_rules, parse_rules
from tracetool._check.rules import (
    MetricReference,
    Rule,
    RuleSet,
    bind_reference,
    rules_from_expressions,
)
from tracetool._check.suggest import close_matches
from tracetool._check.units import format_duration, format_number
from tracetool._model.trace import Trace
from tracetool.errors import RulesError

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
MAX_NOTES = 2


class Status(StrEnum):
    """The verdict on one rule."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class RuleResult:
    """The verdict on one rule with what was observed.

    ``observed`` is in the metric's JSON unit (µs for durations) or None when the trace could
    not give the metric; ``reason`` then says why. ``measured`` says what the value is made of.
    """

    rule: Rule
    status: Status
    observed: Any
    measured: str
    reason: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True for PASS."""
        return self.status is Status.PASS

    @property
    def failed(self) -> bool:
        """True for FAIL."""
        return self.status is Status.FAIL

    @property
    def skipped(self) -> bool:
        """True for SKIP (optional rule, not measurable)."""
        return self.status is Status.SKIP

    @property
    def observed_text(self) -> str:
        """The observed value as a reader wants it: ``4.21 ms``, ``31``, ``"completed"``."""
        return format_value(self.rule.metric.kind, self.observed)

    def summary(self) -> str:
        """One line: ``bql.hold.max{...} = 4.21 ms, expected < 5 ms`` or why not measurable."""
        ref = self.rule.expression.reference()
        if self.observed is None:
            return f"{ref}: not measurable: {self.reason}"
        return f"{ref} = {self.observed_text}, expected {self.rule.expected}"

    def explain(self) -> str:
        """Several lines for a failure message: rule, where, observed, expected, measured."""
        r = self.rule
        where = f" ({r.location})" if r.line is not None else ""
        lines = [f"{self.status.value.upper()}: {r.name}{where}", f"  rule:     {r.expression}"]
        if self.observed is None:
            lines.append(f"  observed: not measurable: {self.reason}")
        else:
            lines.append(f"  observed: {self.observed_text}")
        lines.append(f"  expected: {r.expected}")
        lines.append(f"  measured: {self.measured}")
        if r.description:
            lines.append(f"  why:      {r.description}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The result as ``migtrace check --format json`` prints it."""
        r = self.rule
        return {
            "name": r.name,
            "group": r.group,
            "location": r.location,
            "expr": str(r.expression),
            "metric": r.metric.path,
            "kind": r.metric.kind.value,
            "unit": "us" if r.metric.kind is Kind.DURATION else None,
            "status": self.status.value,
            "observed": self.observed,
            "observed_text": None if self.observed is None else self.observed_text,
            "expected": r.expected,
            "optional": r.optional,
            "measured": self.measured,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class CheckReport:
    """The results of all rules, in order."""

    results: tuple[RuleResult, ...]
    inputs: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def passed(self) -> list[RuleResult]:
        """Rules that passed."""
        return [r for r in self.results if r.passed]

    @property
    def failed(self) -> list[RuleResult]:
        """Rules that failed (including required rules that were not measurable)."""
        return [r for r in self.results if r.failed]

    @property
    def skipped(self) -> list[RuleResult]:
        """Optional rules that were not measurable."""
        return [r for r in self.results if r.skipped]

    @property
    def ok(self) -> bool:
        """True when no rule failed."""
        return not self.failed

    @property
    def exit_code(self) -> int:
        """0 when every rule passed or was skipped, 1 otherwise."""
        return 0 if self.ok else 1

    def __bool__(self) -> bool:
        return self.ok

    def counts(self) -> dict[str, int]:
        """``{"total", "passed", "failed", "skipped"}``."""
        return {
            "total": len(self.results),
            "passed": len(self.passed),
            "failed": len(self.failed),
            "skipped": len(self.skipped),
        }

    def to_json(self) -> dict[str, Any]:
        """``migtrace check --format json``."""
        return {
            "inputs": list(self.inputs),
            "rules": [r.to_json() for r in self.results],
            **self.counts(),
            "exit_code": self.exit_code,
        }


def format_value(kind: Kind, value: Any) -> str:
    """A metric value for people."""
    if value is None:
        return "not measurable"
    if kind is Kind.DURATION:
        return format_duration(float(value))
    if kind in (Kind.COUNT, Kind.NUMBER):
        return format_number(float(value))
    if kind is Kind.PRESENCE:
        return "present" if value else "absent"
    if kind is Kind.FLAG:
        return "true" if value else "false"
    return f'"{value}"'


# ---------------------------------------------------------------------------------- evaluating
def evaluate(trace: Trace, rules: Iterable[Rule], query_migrate: Any = None) -> CheckReport:
    """Evaluates bound rules on a trace. Unknown event names raise :class:`RulesError`.

    ``query_migrate``: QEMU's own result, given to the analyses that compare with it."""
    rules = list(rules)
    for rule in rules:
        _check_event_name(trace, rule)
    start = time.perf_counter()
    results = []
    docs: dict[str, dict[str, Any]] = {}
    for rule in rules:
        t0 = time.perf_counter()
        m = _measure(trace, rule, docs, query_migrate)
        results.append(_verdict(rule, m, time.perf_counter() - t0))
    inputs = tuple(str(p) for p in trace.inputs["path"].tolist()) if len(trace.inputs) else ()
    return CheckReport(tuple(results), inputs, time.perf_counter() - start)


def _check_event_name(trace: Trace, rule: Rule) -> None:
    if rule.metric.names != "events" or rule.argument is None:
        return
    name = rule.argument
    if trace.catalog.is_known(name) or trace.code_of(name) is not None:
        return
    known = set(trace.catalog.names()) | set(trace.event_names)
    raise RulesError(
        f"unknown trace event {name!r}{close_matches(name, known)} (not in the "
        "migtrace catalog, the trace, or --events files)",
        rule.origin,
        rule.line,
        None,
        rule.name,
    )


def _measure(
    trace: Trace, rule: Rule, docs: dict[str, dict[str, Any]], query_migrate: Any = None
) -> Measurement:
    """One rule's observed value; ``docs`` keeps each analysis's JSON for the next rules."""
    return _measure_bound(trace, rule.metric, rule.argument, rule.selectors, docs, query_migrate)


def measure_metric(
    trace: Trace,
    metric: str | MetricReference,
    *,
    query_migrate: Any = None,
    docs: dict[str, dict[str, Any]] | None = None,
) -> Measurement:
    """The value of one metric id (``bql.hold.total{load=true}``, ``downtime.end_to_end``) on
    ``trace``, exactly as ``migtrace check`` observes it: in the metric's JSON unit (µs for
    durations), or not measurable with the reason. ``docs`` caches the analyses' JSON across
    calls on the same trace. A metric id that cannot be used raises RulesError.

        >>> measure_metric(trace, "bql.hold.total{load=true}").value
    """
    ref = bind_reference(metric) if isinstance(metric, str) else metric
    return _measure_bound(
        trace, ref.metric, ref.argument, ref.selectors, {} if docs is None else docs, query_migrate
    )


def load_tids(trace: Trace) -> frozenset[int]:
    """The thread ids that ran the incoming load (``carries_load``), for ``load=`` selectors."""
    th = trace.threads
    return frozenset(int(t) for t in th.loc[th["carries_load"], "tid"].dropna().tolist())


def _measure_bound(
    trace: Trace,
    metric: Metric,
    argument: str | None,
    selectors: Sequence[tuple[str, str]],
    docs: dict[str, dict[str, Any]],
    query_migrate: Any,
) -> Measurement:
    analysis = registry.get(metric.analysis)
    names = trace.event_names
    missing = [e for e in metric.needs if trace.code_of(e) is None]
    if missing:
        return Measurement(None, analysis.command, reason=_enable(missing, metric))
    if metric.kind is Kind.DURATION and not trace.has_time:
        return Measurement(
            None,
            analysis.command,
            reason="the trace has no timestamps (record with -msg timestamp=on; see migtrace events)",
        )
    doc = docs.get(metric.analysis)
    if doc is None:
        options = {"query_migrate": query_migrate} if "query_migrate" in analysis.options else {}
        doc = docs[metric.analysis] = registry.run(trace, metric.analysis, **options).to_json()
    m = measure(metric, argument, dict(selectors), doc, analysis.command, load_tids(trace))
    if m.measurable:
        return m
    reason = m.reason or "no value"
    notes = [n for n in notes_of(doc) if n][:MAX_NOTES]
    if notes:
        reason += f" ({'; '.join(notes)})"
    untraced = missing_required(metric.analysis, names)
    if untraced:
        reason += f"; if they were not traced, {_enable(untraced, metric)}"
    return Measurement(None, m.detail, m.records, reason)


def notes_of(doc: dict[str, Any]) -> list[str]:
    """The notes an analysis attached to its document (top level or one level down)."""
    notes = doc.get("notes")
    if isinstance(notes, list):
        return [str(n) for n in notes]
    for v in doc.values():
        if isinstance(v, dict) and isinstance(v.get("notes"), list):
            return [str(n) for n in v["notes"]]
    return []


def _enable(events: Sequence[str], metric: Metric) -> str:
    more = f" (migtrace events --for {metric.analysis})" if metric.analysis in event_data().analyses else ""
    return f"enable {', '.join(events)}{more}"


def _verdict(rule: Rule, m: Measurement, seconds: float) -> RuleResult:
    if not m.measurable or m.value is None or _is_nan(m.value):
        status = Status.SKIP if rule.optional else Status.FAIL
        return RuleResult(rule, status, None, m.detail, m.reason or "no value", seconds)
    ok = _holds(rule, m.value)
    return RuleResult(rule, Status.PASS if ok else Status.FAIL, m.value, m.detail, None, seconds)


def _holds(rule: Rule, value: Any) -> bool:
    op = rule.expression.op
    if op == "exists":
        return bool(value)
    if op == "absent":
        return not value
    assert rule.threshold is not None
    return _COMPARE[op](value, rule.threshold.value)


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


# ---------------------------------------------------------------------------------- public API
RulesLike = RuleSet | Rule | Expression | str | Path | Sequence[str | Rule | RuleSet]
"""What :func:`check` accepts as rules (see there)."""


def as_rules(rules: RulesLike) -> list[Rule]:
    """Turns anything :func:`check` accepts into bound rules.

    A ``str`` is a rules file path when it names an existing file or ends in ``.toml``, TOML
    text when it holds a newline or ``[[rule]]``, and otherwise one expression.
    """
    if isinstance(rules, RuleSet):
        return list(rules.rules)
    if isinstance(rules, Rule):
        return [rules]
    if isinstance(rules, Expression):
        return list(rules_from_expressions([str(rules)], "rules[0]", "python").rules)
    if isinstance(rules, Path):
        return list(load_rules(rules).rules)
    if isinstance(rules, str):
        if "\n" in rules or "[[rule]]" in rules:
            return list(parse_rules(rules, "<rules>", "python").rules)
        if rules.endswith(".toml") or Path(rules).is_file():
            return list(load_rules(rules).rules)
        return list(rules_from_expressions([rules], "rule", "python").rules)
    out: list[Rule] = []
    for i, item in enumerate(rules):
        if isinstance(item, str):
            out.extend(rules_from_expressions([item], f"rules[{i}]", "python").rules)
        else:
            out.extend(as_rules(item))
    return out


def check_trace(
    trace: Trace | str | Path | Sequence[str],
    rules: RulesLike,
    *,
    threads: Sequence[str] = (),
    events: Sequence[str] = (),
) -> CheckReport:
    """Checks a trace against rules and returns a :class:`CheckReport`.

    ``trace``: a loaded :class:`~tracetool.Trace`, or paths to load (with ``threads`` sidecars
    and ``events`` files as for :func:`tracetool.load`). ``rules``: a rules file path, TOML
    text, one expression, a list of expressions, or parsed rules. Raises
    :class:`~tracetool.errors.RulesError` for rules that cannot be used.

        >>> report = tracetool.check_trace(trace, ['bql.hold.max{role=load} < 5ms'])
        >>> report.ok, [r.summary() for r in report.failed]
    """
    bound = as_rules(rules)
    if not isinstance(trace, Trace):
        from tracetool._model.load import load

        paths = [str(trace)] if isinstance(trace, str | Path) else [str(p) for p in trace]
        trace = load(paths, threads=list(threads), events=list(events))
    return evaluate(trace, bound)
