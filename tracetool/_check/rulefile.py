"""Rules files: the TOML form of CI rules, read into bound rules with every error located.

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

Every error names the file, the line of the rule and, for expressions, the column (TOML syntax
errors: line and column from the TOML parser).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping
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
)
from tracetool._check.rules import (
    CHECK_KEYS,
    RULE_KEYS,
    TOP_KEYS,
    Rule,
    RuleSet,
    located_error,
    make_rule,
    unique_rules,
)
from tracetool._check.suggest import close_matches
from tracetool.errors import RulesError

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
    except RecursionError:
        raise RulesError("invalid TOML: nested too deeply", origin) from None
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POSITION.search(msg)
        if m:
            raise RulesError(
                f"invalid TOML: {msg[: m.start()]}", origin, int(m.group(1)), int(m.group(2))
            ) from None
        raise RulesError(f"invalid TOML: {msg}", origin) from None
    except ValueError as exc:  # an integer of thousands of digits
        raise RulesError(f"invalid TOML: {str(exc).split(';')[0]}", origin) from None
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
    return RuleSet(group, unique_rules(rules), origin)


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
            raise located_error(exc.message, exc.column, origin, line, name, offset) from None
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
        number = float(value) if -1e300 < value < 1e300 else math.nan
        if not math.isfinite(number):
            raise error(f"value {str(value)[:20]} is out of range (a finite number below 1e300)", "value")
        literal = Literal("number", str(value), 0, number)
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
