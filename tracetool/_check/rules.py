"""Rules: an expression (``metric{selector=value} OP threshold``) bound to its metric, with the
threshold typed for it; rules built from expressions. Rules files are read by
:mod:`tracetool._check.rulefile`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tracetool._check.grammar import (
    PRESENCE,
    Expression,
    ExpressionError,
    Literal,
    parse_expression,
    parse_reference,
    parse_value,
)
from tracetool._check.metric_lookup import MetricError, find_metrics, pick_metric
from tracetool._check.metric_types import Kind, Metric
from tracetool._check.suggest import close_matches
from tracetool._check.units import DURATION_UNITS, UNIT_NAMES, format_duration, format_number, to_microseconds
from tracetool.errors import RulesError

RULE_KEYS = ("name", "expr", "metric", "select", "op", "value", "optional", "description")
TOP_KEYS = ("check", "rule")
CHECK_KEYS = ("name", "description")
COMMAND_LINE = "--rule"


@dataclass(frozen=True)
class Threshold:
    """The right-hand side, typed for its metric: µs for durations, a number, text or flag."""

    value: float | str | bool
    text: str


@dataclass(frozen=True)
class Rule:
    """One rule, bound to its metric and ready to evaluate.

    ``name`` is unique within its rule set; ``origin``/``line`` say where it was written;
    ``group`` is the rule set's name (the JUnit class name).
    """

    name: str
    expression: Expression
    metric: Metric
    argument: str | None
    selectors: tuple[tuple[str, str], ...]
    threshold: Threshold | None
    optional: bool = False
    description: str | None = None
    origin: str = COMMAND_LINE
    line: int | None = None
    group: str = "migtrace"

    @property
    def expected(self) -> str:
        """The condition as text: ``< 5 ms``, ``== completed``, ``exists``."""
        if self.threshold is None:
            return self.expression.op
        return f"{self.expression.op} {self.threshold.text}"

    @property
    def location(self) -> str:
        """``file:line`` (or the origin alone)."""
        return f"{self.origin}:{self.line}" if self.line is not None else self.origin


@dataclass(frozen=True)
class RuleSet:
    """The rules of one file (or of the command line), in order."""

    name: str
    rules: tuple[Rule, ...]
    origin: str = COMMAND_LINE

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)


# ---------------------------------------------------------------------------------- binding
def bind(expr: Expression) -> tuple[Metric, str | None, tuple[tuple[str, str], ...], Threshold | None]:
    """Checks an expression against the metric registry and types its threshold.

    Raises :class:`MetricError` (with the column of the offending part).
    """
    metric, name, selectors = _bind_metric(expr)
    return metric, name, selectors, _threshold(metric, expr)


@dataclass(frozen=True)
class MetricReference:
    """A metric as written without a comparison (``bql.hold.total{load=true}``), bound to its
    row of the metric table."""

    text: str
    metric: Metric
    argument: str | None
    selectors: tuple[tuple[str, str], ...]


def bind_reference(text: str) -> MetricReference:
    """Parses and binds a metric id the way a rule's left-hand side is; errors are
    :class:`~tracetool.errors.RulesError` naming the column."""
    try:
        expr = parse_reference(text)
        metric, name, selectors = _bind_metric(expr)
    except ExpressionError as exc:
        raise RulesError(f"column {exc.column}: {exc.message}", f"metric {text!r}") from None
    except MetricError as exc:
        raise RulesError(f"column {exc.column}: {exc}", f"metric {text!r}") from None
    return MetricReference(text, metric, name, selectors)


def _bind_metric(expr: Expression) -> tuple[Metric, str | None, tuple[tuple[str, str], ...]]:
    try:
        rows, name = find_metrics(expr.metric, expr.argument)
    except MetricError as exc:
        raise MetricError(str(exc), expr.metric_column) from None
    keys = [s.key for s in expr.selectors]
    for i, s in enumerate(expr.selectors):
        if s.key in keys[:i]:
            raise MetricError(f"selector {s.key!r} given twice", s.column)
    column = expr.selectors[0].column if expr.selectors else expr.metric_column
    metric = pick_metric(rows, keys, _first_unknown_column(expr, rows) or column)
    if name is not None:
        _check_name(metric, name, expr.metric_column)
    for s in expr.selectors:
        if s.key == "tid" and not s.value.lstrip("-").isdigit():
            raise MetricError(f"tid must be a number, not {s.value!r}", s.column)
        if s.key == "role":
            _check_role(s.value, s.column)
        if s.key == "load" and s.value not in ("true", "false"):
            raise MetricError(f"load is true or false, not {s.value!r}", s.column)
    return metric, name, tuple((s.key, s.value) for s in expr.selectors)


def _first_unknown_column(expr: Expression, rows: list[Metric]) -> int | None:
    takes = {k for m in rows for k in m.select}
    for s in expr.selectors:
        if s.key not in takes:
            return s.column
    return None


def _check_name(metric: Metric, name: str, column: int) -> None:
    if metric.names == "phases":
        known = phase_names()
        if known and name not in known:
            raise MetricError(
                f"unknown phase {name!r}{close_matches(name, known)}; phases: " + ", ".join(known), column
            )


_NUMBERED_ROLE = re.compile(r"(?:recv|send)_\d+")


def _check_role(role: str, column: int) -> None:
    """Roles are a closed set (``tracetool._model.threads.ROLES``); globs and ``a|b`` pass."""
    from tracetool._model.threads import ROLES

    if any(c in role for c in "*?[|") or role in ROLES or _NUMBERED_ROLE.fullmatch(role):
        return
    known = [r.replace("_N", "_<n>") for r in ROLES]
    raise MetricError(
        f"unknown role {role!r}{close_matches(role, ROLES)}; roles: " + ", ".join(known), column
    )


def phase_names() -> list[str]:
    """The phase names the timeline rules define (empty when that module is absent)."""
    try:
        from tracetool._timeline.rules import rules as timeline_rules
    except ImportError:
        return []
    return [p.name for p in timeline_rules().phases]


def _threshold(metric: Metric, expr: Expression) -> Threshold | None:
    op, lit = expr.op, expr.value
    if metric.kind is Kind.PRESENCE:
        if op not in PRESENCE:
            raise MetricError(
                f"{metric.path.replace('<name>', 'name')} is checked with "
                "'exists' or 'absent', not a comparison",
                expr.op_column,
            )
        return None
    if op in PRESENCE:
        raise MetricError(
            f'\'{op}\' applies to event("name") and thread("name"); compare '
            f"{expr.metric} with < <= > >= == !=",
            expr.op_column,
        )
    assert lit is not None
    if metric.kind is Kind.DURATION:
        return _duration(expr.metric, _numeric(lit), op)
    if metric.kind in (Kind.COUNT, Kind.NUMBER):
        num = _numeric(lit)
        if num.unit is not None:
            raise MetricError(
                f"bad unit {num.unit!r}: {expr.metric} is a {metric.kind}, write a plain number",
                num.unit_column or num.column,
            )
        assert num.number is not None
        return Threshold(num.number, format_number(num.number))
    if op not in ("==", "!="):
        raise MetricError(f"{expr.metric} is {metric.kind}: compare it with == or !=", expr.op_column)
    if metric.kind is Kind.FLAG:
        if lit.kind == "word" and lit.text in ("true", "false"):
            return Threshold(lit.text == "true", lit.text)
        raise MetricError(f"{expr.metric} is true or false, not {lit}", lit.column)
    if metric.choices and lit.text not in metric.choices:
        raise MetricError(
            f"{expr.metric} is one of {', '.join(metric.choices)}, not {lit.text!r}"
            f"{close_matches(lit.text, metric.choices)}",
            lit.column,
        )
    return Threshold(lit.text, f'"{lit.text}"')


def _numeric(lit: Literal) -> Literal:
    """A number literal; a quoted threshold ("5ms") is read as one."""
    if lit.kind == "string":
        try:
            parsed = parse_value(lit.text)
        except ExpressionError as exc:
            raise MetricError(f"expected a number, not {lit}: {exc.message}", lit.column) from None
        # Columns inside the quotes are not columns of the rule: errors point at the string.
        lit = Literal(parsed.kind, parsed.text, lit.column, parsed.number, parsed.unit)
    if lit.kind != "number":
        raise MetricError(f"expected a number, not {lit}", lit.column)
    return lit


def _duration(metric: str, lit: Literal, op: str) -> Threshold:
    assert lit.number is not None
    if lit.unit is None:
        if lit.number != 0:
            raise MetricError(
                f"{metric} is a duration: give a unit ({UNIT_NAMES}), e.g. {lit.text}ms", lit.column
            )
        return Threshold(0.0, "0")
    if lit.unit not in DURATION_UNITS:
        raise MetricError(
            f"bad unit {lit.unit!r} (durations take {UNIT_NAMES}){close_matches(lit.unit, DURATION_UNITS)}",
            lit.unit_column or lit.column,
        )
    us = to_microseconds(lit.number, lit.unit)
    return Threshold(us, format_duration(us))


# ---------------------------------------------------------------------------------- building
def make_rule(
    expr: Expression,
    name: str | None = None,
    *,
    optional: bool = False,
    description: str | None = None,
    origin: str = COMMAND_LINE,
    line: int | None = None,
    group: str = "migtrace",
    error_line: int | None = None,
    column_offset: int | None = None,
) -> Rule:
    """Binds a parsed expression into a rule.

    ``line`` is where the rule starts; errors name ``error_line`` (default ``line``) and, with
    ``column_offset`` (characters of that line before the expression), the file column.
    """
    rule_name = name if name is not None else str(expr)
    try:
        metric, arg, sels, thr = bind(expr)
    except MetricError as exc:
        raise located_error(
            str(exc), exc.column, origin, error_line or line, rule_name, column_offset
        ) from None
    return Rule(rule_name, expr, metric, arg, sels, thr, optional, description, origin, line, group)


def located_error(
    message: str, column: int, origin: str, line: int | None, rule: str, column_offset: int | None
) -> RulesError:
    """A RulesError at the expression's column, counted from the start of its line when the
    expression's offset in that line is known."""
    if line is not None and column_offset is not None:
        return RulesError(message, origin, line, column_offset + column, rule)
    where = f"column {column}: " if column else ""
    return RulesError(where + message, origin, line, None, rule)


def rules_from_expressions(
    texts: Sequence[str], origin: str = COMMAND_LINE, group: str = "command-line"
) -> RuleSet:
    """One rule per expression, named by the expression itself."""
    out: list[Rule] = []
    for text in texts:
        try:
            expr = parse_expression(text)
        except ExpressionError as exc:
            raise RulesError(f"column {exc.column}: {exc.message}", f"{origin} {text!r}") from None
        try:
            out.append(make_rule(expr, text, origin=origin, group=group))
        except RulesError as exc:
            raise RulesError(exc.message, f"{origin} {text!r}") from None
    return RuleSet(group, unique_rules(out), origin)


def unique_rules(rules: list[Rule]) -> tuple[Rule, ...]:
    """The rules as a tuple; a name used twice is a RulesError."""
    seen: set[str] = set()
    for r in rules:
        if r.name in seen:
            raise RulesError(f"duplicate rule name {r.name!r}: rule names must be unique", r.origin, r.line)
        seen.add(r.name)
    return tuple(rules)
