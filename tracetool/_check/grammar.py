"""The rule expression language: a tokenizer and a recursive-descent parser.

Grammar (whitespace is free between tokens)::

    expression := reference ( OP value | "exists" | "absent" ) END
    reference  := path [ "(" STRING ")" ] [ "{" [ term ( "," term )* [ "," ] ] "}" ]
    path       := NAME ( "." NAME )*
    term       := NAME ( "=" | "==" ) ( STRING | NAME | NUMBER )
    value      := NUMBER [ UNIT ] | STRING | NAME
    OP         := "<" | "<=" | ">" | ">=" | "==" | "!="

``NAME`` is a letter or ``_`` followed by letters, digits, ``_`` or ``-``; ``STRING`` is
double- or single-quoted with ``\\`` escapes; ``NUMBER`` is a decimal number (``12``, ``1.5``,
``2e3``), optionally followed by a unit name (``5ms``, ``5 ms``).

Examples: ``bql.hold.max{thread="mig/dst/main"} < 5ms``, ``unparsed_lines == 0``,
``event("postcopy_preempt_new_channel") exists``, ``outcome == completed``.

The parser only builds an :class:`Expression`; nothing is ever evaluated as Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
PRESENCE = ("exists", "absent")
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_µμ")
_NAME_REST = _NAME_START | frozenset("0123456789-")
_DIGITS = frozenset("0123456789")
_PUNCT = frozenset("{}(),.")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


class ExpressionError(ValueError):
    """A rule expression that does not follow the grammar; ``column`` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column

    def __str__(self) -> str:
        return f"column {self.column}: {self.message}"


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is name, string, number, op, punct or end; ``column`` 1-based."""

    kind: str
    text: str
    column: int

    def describe(self) -> str:
        """How an error message names this token."""
        if self.kind == "end":
            return "the end of the rule"
        if self.kind == "string":
            return f"the string {_quote(self.text)}"
        return f"'{self.text}'"


@dataclass(frozen=True)
class SelectorTerm:
    """``key = value`` inside ``{...}``: which threads, devices, phases... a metric covers."""

    key: str
    value: str
    column: int

    def __str__(self) -> str:
        return f"{self.key}={_quote(self.value)}"


@dataclass(frozen=True)
class Literal:
    """The right-hand side of a comparison, typed later against the metric.

    ``kind`` is ``number`` (with ``unit`` or None), ``string`` (quoted) or ``word`` (bare).
    """

    kind: str
    text: str
    column: int
    number: float | None = None
    unit: str | None = None
    unit_column: int | None = None

    def __str__(self) -> str:
        if self.kind == "number":
            return self.text + (self.unit or "")
        return _quote(self.text) if self.kind == "string" else self.text


@dataclass(frozen=True)
class Expression:
    """A parsed rule: metric, optional argument and selectors, operator, threshold."""

    metric: str
    argument: str | None
    selectors: tuple[SelectorTerm, ...]
    op: str
    value: Literal | None
    metric_column: int = 1
    op_column: int = 1

    def reference(self) -> str:
        """The measured side as it would be written: ``bql.hold.max{thread="x"}``."""
        text = self.metric
        if self.argument is not None:
            text += f"({_quote(self.argument)})"
        if self.selectors:
            text += "{" + ", ".join(str(s) for s in self.selectors) + "}"
        return text

    def __str__(self) -> str:
        if self.value is None:
            return f"{self.reference()} {self.op}"
        return f"{self.reference()} {self.op} {self.value}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------------------------- tokenizer
def tokenize(text: str, *, value_first: bool = False) -> list[Token]:
    """Splits an expression into tokens, ending with an ``end`` token.

    ``value_first``: the text is a lone value, so a leading sign belongs to a number.
    """
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        col = i + 1
        if ch.isspace():
            i += 1
        elif ch in "\"'":
            value, i = _string(text, i)
            tokens.append(Token("string", value, col))
        elif ch in _DIGITS or (
            ch in "+-." and i + 1 < n and text[i + 1] in _DIGITS and _starts_value(tokens, value_first)
        ):
            end = _number_end(text, i)
            tokens.append(Token("number", text[i:end], col))
            i = end
        elif ch in _NAME_START:
            end = i + 1
            while end < n and text[end] in _NAME_REST:
                end += 1
            tokens.append(Token("name", text[i:end], col))
            i = end
        elif text.startswith(("<=", ">=", "==", "!="), i):
            tokens.append(Token("op", text[i : i + 2], col))
            i += 2
        elif ch in "<>=":
            tokens.append(Token("op", ch, col))
            i += 1
        elif ch in _PUNCT:
            tokens.append(Token("punct", ch, col))
            i += 1
        else:
            raise ExpressionError(f"unexpected character {ch!r}", col)
    tokens.append(Token("end", "", n + 1))
    return tokens


def _starts_value(tokens: list[Token], value_first: bool) -> bool:
    """A sign or leading dot begins a number only where a value may stand."""
    return (value_first and not tokens) or (bool(tokens) and tokens[-1].kind == "op")


def _string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\\":
            if i + 1 >= len(text):
                break
            esc = text[i + 1]
            if esc not in _ESCAPES:
                raise ExpressionError(f"unknown escape '\\{esc}' in a string", i + 1)
            out.append(_ESCAPES[esc])
            i += 2
            continue
        out.append(ch)
        i += 1
    raise ExpressionError("unterminated string", start + 1)


def _number_end(text: str, i: int) -> int:
    n = len(text)
    if text[i] in "+-":
        i += 1
    while i < n and text[i] in _DIGITS:
        i += 1
    if i < n and text[i] == "." and i + 1 < n and text[i + 1] in _DIGITS:
        i += 1
        while i < n and text[i] in _DIGITS:
            i += 1
    # An exponent only when digits follow: "5e3" is a number, "5es" a number and a unit.
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j < n and text[j] in _DIGITS:
            while j < n and text[j] in _DIGITS:
                j += 1
            i = j
    return i


# ---------------------------------------------------------------------------------- parser
class _Parser:
    def __init__(self, text: str, *, value_first: bool = False) -> None:
        self.tokens = tokenize(text, value_first=value_first)
        self.pos = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != "end":
            self.pos += 1
        return tok

    def at(self, kind: str, text: str | None = None) -> bool:
        return self.tok.kind == kind and (text is None or self.tok.text == text)

    def expect(self, kind: str, text: str | None, what: str) -> Token:
        if not self.at(kind, text):
            raise ExpressionError(f"expected {what}, found {self.tok.describe()}", self.tok.column)
        return self.advance()

    def reference(self) -> Expression:
        """``path [ "(" STRING ")" ] [ selector ]``, as an expression without operator."""
        if self.at("end"):
            raise ExpressionError("empty rule: expected a metric such as bql.hold.max", 1)
        col = self.tok.column
        metric = self.path()
        argument = None
        if self.at("punct", "("):
            self.advance()
            argument = self.expect("string", None, f'a quoted name, as in {metric}("name")').text
            self.expect("punct", ")", "')'")
        selectors = self.selector() if self.at("punct", "{") else ()
        return Expression(metric, argument, selectors, "", None, col, col)

    def expression(self) -> Expression:
        ref = self.reference()
        op_tok = self.tok
        if op_tok.kind == "name" and op_tok.text in PRESENCE:
            self.advance()
            value = None
        elif op_tok.kind == "op" and op_tok.text in COMPARISONS:
            self.advance()
            value = self.value()
        else:
            hint = " (use == to compare)" if op_tok.text == "=" else ""
            raise ExpressionError(
                f"expected a comparison (< <= > >= == !=) or exists/absent, found {op_tok.describe()}{hint}",
                op_tok.column,
            )
        if not self.at("end"):
            raise ExpressionError(
                f"unexpected {self.tok.describe()} after the end of the rule", self.tok.column
            )
        return Expression(
            ref.metric, ref.argument, ref.selectors, op_tok.text, value, ref.metric_column, op_tok.column
        )

    def path(self) -> str:
        parts = [self.expect("name", None, "a metric name such as bql.hold.max").text]
        while self.at("punct", "."):
            self.advance()
            parts.append(self.expect("name", None, "a name after '.'").text)
        return ".".join(parts)

    def selector(self) -> tuple[SelectorTerm, ...]:
        self.advance()  # "{"
        terms: list[SelectorTerm] = []
        while not self.at("punct", "}"):
            key = self.expect("name", None, "a selector name such as thread, role or device")
            if not (self.at("op", "=") or self.at("op", "==")):
                raise ExpressionError(
                    f"expected '=' after {key.text}, found {self.tok.describe()}", self.tok.column
                )
            self.advance()
            if self.tok.kind not in ("string", "name", "number"):
                raise ExpressionError(
                    f"expected a value for {key.text} (a quoted string or a word), found "
                    f"{self.tok.describe()}",
                    self.tok.column,
                )
            terms.append(SelectorTerm(key.text, self.advance().text, key.column))
            if self.at("punct", ","):
                self.advance()
            elif not self.at("punct", "}"):
                raise ExpressionError(
                    f"expected ',' or '}}' in the selector, found {self.tok.describe()}", self.tok.column
                )
        self.advance()  # "}"
        return tuple(terms)

    def value(self) -> Literal:
        tok = self.tok
        if tok.kind == "number":
            self.advance()
            unit, unit_col = None, None
            if self.at("name"):
                unit_col = self.tok.column
                unit = self.advance().text
            number = float(tok.text)
            if not math.isfinite(number):
                raise ExpressionError(f"the number {tok.text[:20]} is out of range", tok.column)
            return Literal("number", tok.text, tok.column, number, unit, unit_col)
        if tok.kind == "string":
            self.advance()
            return Literal("string", tok.text, tok.column)
        if tok.kind == "name":
            self.advance()
            return Literal("word", tok.text, tok.column)
        raise ExpressionError(f'expected a value (5ms, 20, "text"), found {tok.describe()}', tok.column)


def parse_expression(text: str) -> Expression:
    """Parses one rule expression; raises :class:`ExpressionError` with a column."""
    return _Parser(text).expression()


def parse_reference(text: str) -> Expression:
    """Parses only the measured side (``metric("arg"){selectors}``), as the structured rule
    form writes it; the result has ``op == ""`` and no value."""
    p = _Parser(text)
    ref = p.reference()
    if not p.at("end"):
        raise ExpressionError(f"unexpected {p.tok.describe()} after the metric", p.tok.column)
    return ref


def parse_value(text: str) -> Literal:
    """Parses a threshold written on its own (``5ms``, ``-1``, ``completed``)."""
    p = _Parser(text, value_first=True)
    lit = p.value()
    if not p.at("end"):
        raise ExpressionError(f"unexpected {p.tok.describe()} after the value", p.tok.column)
    return lit
