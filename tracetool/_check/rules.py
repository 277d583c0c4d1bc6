"""Rules: loading a rules file (TOML) or expressions, and binding each rule to its metric.

A rules file is a list of ``[[rule]]`` tables::

    [check]
    name = "precopy"            # optional: the JUnit class name (default: the file name)

    [[rule]]
    name = "load thread never holds the BQL long"
    expr = 'bql.hold.max{thread="mig/dst/main"} < 5ms'
    optional = false            # true: not measurable -> skipped instead of failed

    [[rule]]                    # the same rule, structured
    name = "..."
    metric = "bql.hold.max"
    select = { thread = "mig/dst/main" }
    op = "<"
    value = "5ms"

Every error names the file, the line of the rule and, for expressions, the column.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracetool._check.grammar import (
    COMPARISONS,
    PRESENCE,
    Expression,
    ExpressionError,
    Literal,
    SelectorTerm,
    parse_expression,
    parse_reference,
    parse_value,
)
from tracetool._check.metrics import (
    Kind,
    Metric,
    MetricError,
    close_matches,
    find_metrics,
    pick_metric,
)
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
        raise _located(str(exc), exc.column, origin, error_line or line, rule_name, column_offset) from None
    return Rule(rule_name, expr, metric, arg, sels, thr, optional, description, origin, line, group)


def _located(
    message: str, column: int, origin: str, line: int | None, rule: str, column_offset: int | None
) -> RulesError:
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
    return RuleSet(group, _unique(out), origin)


def _unique(rules: list[Rule]) -> tuple[Rule, ...]:
    seen: set[str] = set()
    for r in rules:
        if r.name in seen:
            raise RulesError(f"duplicate rule name {r.name!r}: rule names must be unique", r.origin, r.line)
        seen.add(r.name)
    return tuple(rules)


# ---------------------------------------------------------------------------------- files
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TABLE_HEADER = re.compile(r"^\s*\[")
_RULE_HEADER = re.compile(r"^\s*\[\[\s*rule\s*\]\]\s*(?:#.*)?$")
_KEY_LINE = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=\s*")


@dataclass
class _RuleLines:
    header: int
    keys: dict[str, tuple[int, str, int]]  # key -> (line number, line text, where the value starts)


def _scan_rule_lines(text: str) -> list[_RuleLines]:
    """Line numbers of each ``[[rule]]`` and of the keys inside it, skipping multi-line strings."""
    out: list[_RuleLines] = []
    current: _RuleLines | None = None
    open_quote: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if open_quote is not None:
            if line.count(open_quote) % 2 == 1:
                open_quote = None
            continue
        if _RULE_HEADER.match(line):
            current = _RuleLines(number, {})
            out.append(current)
        elif _TABLE_HEADER.match(line):
            current = None
        else:
            m = _KEY_LINE.match(line)
            if m and current is not None and m.group(1) not in current.keys:
                current.keys[m.group(1)] = (number, line, m.end())
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 == 1:
                open_quote = quote
                break
    return out


def parse_rules(text: str, origin: str = "<rules>", name: str | None = None) -> RuleSet:
    """Parses the TOML text of a rules file into bound rules.

    ``origin`` names the file in errors; ``name`` is the rule set's name when the file has no
    ``[check] name``.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POSITION.search(msg)
        if m:
            raise RulesError(
                f"invalid TOML: {msg[: m.start()]}", origin, int(m.group(1)), int(m.group(2))
            ) from None
        raise RulesError(f"invalid TOML: {msg}", origin) from None
    lines = _scan_rule_lines(text)
    for key in data:
        if key not in TOP_KEYS:
            raise RulesError(
                f"unknown top-level key {key!r}{close_matches(key, TOP_KEYS)}; "
                "a rules file has [check] and [[rule]] tables",
                origin,
                _top_line(text, key),
            )
    check = data.get("check", {})
    if not isinstance(check, dict):
        raise RulesError("[check] must be a table", origin, _top_line(text, "check"))
    for key in check:
        if key not in CHECK_KEYS:
            raise RulesError(
                f"unknown key {key!r} in [check]{close_matches(key, CHECK_KEYS)}",
                origin,
                _top_line(text, "check"),
            )
    group = check.get("name", name or Path(origin).stem)
    if not isinstance(group, str):
        raise RulesError("[check] name must be a string", origin, _top_line(text, "check"))
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list) or not all(isinstance(r, dict) for r in raw_rules):
        raise RulesError("rules are written as [[rule]] tables", origin, _top_line(text, "rule"))
    if not raw_rules:
        raise RulesError("no [[rule]] tables in the rules file", origin)
    located = len(lines) == len(raw_rules)
    rules = [
        _rule_from_table(raw, i, lines[i] if located else None, origin, group)
        for i, raw in enumerate(raw_rules)
    ]
    return RuleSet(group, _unique(rules), origin)


def _top_line(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*(\[\[?\s*{re.escape(key)}\s*\]\]?|{re.escape(key)}\s*=)")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return None


def _rule_from_table(
    raw: Mapping[str, Any], index: int, lines: _RuleLines | None, origin: str, group: str
) -> Rule:
    header = lines.header if lines else None

    def line_of(key: str) -> int | None:
        if lines and key in lines.keys:
            return lines.keys[key][0]
        return header

    name = raw.get("name")
    label = name if isinstance(name, str) else f"#{index + 1}"

    def error(message: str, key: str | None = None) -> RulesError:
        return RulesError(
            message,
            origin if header else f"{origin} rule #{index + 1}",
            line_of(key) if key else header,
            None,
            label if name else None,
        )

    for key in raw:
        if key not in RULE_KEYS:
            raise error(
                f"unknown key {key!r}{close_matches(key, RULE_KEYS)}; a rule has: " + ", ".join(RULE_KEYS),
                key,
            )
    if not isinstance(name, str) or not name.strip():
        raise error('every rule needs a name (name = "...")', "name")
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise error("optional must be true or false", "optional")
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise error("description must be a string", "description")
    structured = [k for k in ("metric", "select", "op", "value") if k in raw]
    if "expr" in raw and structured:
        raise error(f"give either expr or metric/select/op/value, not both ({structured[0]})", structured[0])
    if "expr" in raw:
        text = raw["expr"]
        if not isinstance(text, str):
            raise error("expr must be a string", "expr")
        line = line_of("expr")
        offset = _value_offset(*lines.keys["expr"][1:], text) if lines and "expr" in lines.keys else None
        try:
            expr = parse_expression(text)
        except ExpressionError as exc:
            raise _located(exc.message, exc.column, origin, line, name, offset) from None
        return make_rule(
            expr,
            name,
            optional=optional,
            description=description,
            origin=origin,
            line=header,
            group=group,
            error_line=line,
            column_offset=offset,
        )
    if not structured:
        raise error("the rule has no expr (or metric and op)")
    return make_rule(
        _structured(raw, error),
        name,
        optional=optional,
        description=description,
        origin=origin,
        line=header,
        group=group,
    )


def _value_offset(line: str, start: int, value: str) -> int | None:
    """How many characters of its TOML line precede the expression, when that is exact:
    single-line literal strings ('...'), and basic strings ("...") without escapes."""
    quote = line[start : start + 1]
    if quote not in ("'", '"') or line.startswith(quote * 3, start):
        return None
    end = line.find(quote, start + 1)
    if end < 0 or line[start + 1 : end] != value:
        return None
    return start + 1


def _structured(raw: Mapping[str, Any], error: Callable[[str, str | None], RulesError]) -> Expression:
    metric = raw.get("metric")
    if not isinstance(metric, str):
        raise error('metric must be a string such as "bql.hold.max"', "metric")
    try:
        ref = parse_reference(metric)
    except ExpressionError as exc:
        raise error(f"metric: column {exc.column}: {exc.message}", "metric") from None
    select = raw.get("select", {})
    if not isinstance(select, dict):
        raise error('select must be a table: select = { thread = "mig/dst/main" }', "select")
    terms = list(ref.selectors)
    for key, value in select.items():
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise error(f"select.{key} must be a string or a number", "select")
        terms.append(SelectorTerm(str(key), str(value), 0))
    op = raw.get("op")
    if op not in COMPARISONS + PRESENCE:
        raise error(f"op must be one of {' '.join(COMPARISONS + PRESENCE)}, not {op!r}", "op")
    value = raw.get("value")
    literal: Literal | None
    if op in PRESENCE:
        if value is not None:
            raise error(f'op = "{op}" takes no value', "value")
        literal = None
    elif value is None:
        raise error(f'op = "{op}" needs a value', "op")
    elif isinstance(value, bool):
        literal = Literal("word", "true" if value else "false", 0)
    elif isinstance(value, int | float):
        literal = Literal("number", str(value), 0, float(value))
    elif isinstance(value, str):
        literal = Literal("string", value, 0)
    else:
        raise error('value must be a number, a string ("5ms", "completed") or a boolean', "value")
    return Expression(ref.metric, ref.argument, tuple(terms), op, literal, 0, 0)


def load_rules(path: str | Path) -> RuleSet:
    """Reads and parses a rules file; errors name the file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesError("no such rules file", str(path)) from None
    except UnicodeDecodeError as exc:
        raise RulesError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)) from None
    except OSError as exc:
        raise RulesError(f"cannot read the rules file: {exc.strerror}", str(path)) from None
    return parse_rules(text, str(path), p.stem)
