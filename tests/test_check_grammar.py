"""The rule expression language: tokens, every operator, unit and selector kind, and errors
with their column."""

from __future__ import annotations

import pytest

from tracetool._check.grammar import (
    COMPARISONS,
    ExpressionError,
    parse_expression,
    parse_reference,
    parse_value,
    tokenize,
)
from tracetool._check.units import DURATION_UNITS, format_duration, to_microseconds


@pytest.mark.parametrize("op", COMPARISONS)
def test_every_comparison_operator_is_parsed(op: str) -> None:
    e = parse_expression(f"bql.holds {op} 3")
    assert (e.metric, e.op) == ("bql.holds", op)
    assert e.value is not None and e.value.number == 3.0 and e.value.unit is None


@pytest.mark.parametrize(
    ("text", "number", "unit"),
    [
        ("5ms", 5.0, "ms"),
        ("5 ms", 5.0, "ms"),
        ("1.5s", 1.5, "s"),
        ("250us", 250.0, "us"),
        ("250µs", 250.0, "µs"),
        ("250μs", 250.0, "μs"),
        ("800ns", 800.0, "ns"),
        ("2e3", 2000.0, None),
        ("-1", -1.0, None),
        (".5ms", 0.5, "ms"),
    ],
)
def test_numbers_with_and_without_units(text: str, number: float, unit: str | None) -> None:
    e = parse_expression(f"x < {text}")
    assert e.value is not None
    assert (e.value.kind, e.value.number, e.value.unit) == ("number", number, unit)


def test_duration_units_convert_to_microseconds() -> None:
    # every unit the grammar documents, against the plain factor of each unit
    factors = {"ns": 0.001, "us": 1, "µs": 1, "μs": 1, "ms": 1000, "s": 1_000_000}
    assert set(DURATION_UNITS) == set(factors)
    for unit, factor in factors.items():
        assert to_microseconds(7, unit) == pytest.approx(7 * factor)


@pytest.mark.parametrize(
    ("us", "text"),
    [
        (0.85, "850 ns"),
        (850.0, "850 µs"),
        (4210.0, "4.21 ms"),
        (1_500_000.0, "1.5 s"),
        (0.0, "0 s"),
    ],
)
def test_durations_are_shown_in_a_readable_unit(us: float, text: str) -> None:
    assert format_duration(us) == text


def test_selectors_take_quoted_strings_bare_words_and_numbers() -> None:
    e = parse_expression('bql.hold.max{thread="mig/dst/main", role=load, tid=1234,} <= 5ms')
    assert [(s.key, s.value) for s in e.selectors] == [
        ("thread", "mig/dst/main"),
        ("role", "load"),
        ("tid", "1234"),
    ]
    assert e.selectors[0].column == len("bql.hold.max{") + 1


def test_selector_accepts_double_equals_and_single_quotes() -> None:
    e = parse_expression("devices.duration{device=='virtio-net'} < 1s")
    assert [(s.key, s.value) for s in e.selectors] == [("device", "virtio-net")]


def test_presence_with_argument() -> None:
    e = parse_expression('event("postcopy_preempt_new_channel") exists')
    assert (e.metric, e.argument, e.op, e.value) == ("event", "postcopy_preempt_new_channel", "exists", None)
    assert parse_expression('thread("mig/dst/main"){process=dst} absent').op == "absent"


def test_text_values_quoted_or_bare() -> None:
    bare = parse_expression("outcome == completed").value
    quoted = parse_expression('load_thread.name != "mig/dst/main"').value
    assert bare is not None and (bare.kind, bare.text) == ("word", "completed")
    assert quoted is not None and (quoted.kind, quoted.text) == ("string", "mig/dst/main")


def test_string_escapes() -> None:
    e = parse_expression(r'x == "a \"b\" \\ c"')
    assert e.value is not None and e.value.text == 'a "b" \\ c'


def test_phase_names_with_hyphens_are_one_path_segment() -> None:
    assert (
        parse_expression("phases.postcopy-package.duration < 50ms").metric
        == "phases.postcopy-package.duration"
    )


def test_round_trip_through_text() -> None:
    text = 'bql.hold.max{thread="mig/dst/main", role="load"} < 5ms'
    assert str(parse_expression(text)) == text
    assert str(parse_expression(str(parse_expression(text)))) == text


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("", 1, "empty rule"),
        ("bql.hold.max < ", 16, "expected a value"),
        ("bql.hold.max = 5ms", 14, "use == to compare"),
        ("bql.hold.max 5ms", 14, "expected a comparison"),
        ("bql.hold.max{thread=} < 1ms", 21, "expected a value for thread"),
        ("bql.hold.max{thread} < 1ms", 20, "expected '=' after thread"),
        ("bql.hold.max{thread=a role=b} < 1ms", 23, "expected ',' or '}'"),
        ("bql.hold.max < 5ms and x", 20, "after the end of the rule"),
        ('x < "abc', 5, "unterminated string"),
        ("x % 3", 3, "unexpected character '%'"),
        ("bql..hold < 1", 5, "a name after '.'"),
        ("event(postcopy) exists", 7, "a quoted name"),
        ('x == "a\\q"', 8, "unknown escape"),
    ],
)
def test_errors_name_the_column(text: str, column: int, message: str) -> None:
    with pytest.raises(ExpressionError) as err:
        parse_expression(text)
    assert err.value.column == column
    assert message in err.value.message
    assert str(err.value).startswith(f"column {column}: ")


def test_structured_parts_parse_separately() -> None:
    ref = parse_reference('event("x"){process=dst}')
    assert (ref.metric, ref.argument, ref.op) == ("event", "x", "")
    assert [(s.key, s.value) for s in ref.selectors] == [("process", "dst")]
    with pytest.raises(ExpressionError, match="after the metric"):
        parse_reference("bql.hold.max < 5ms")
    lit = parse_value("-2.5ms")
    assert (lit.number, lit.unit) == (-2.5, "ms")


def test_tokens_carry_columns() -> None:
    toks = tokenize('a.b{c="d"} >= 10')
    assert [(t.kind, t.text, t.column) for t in toks] == [
        ("name", "a", 1),
        ("punct", ".", 2),
        ("name", "b", 3),
        ("punct", "{", 4),
        ("name", "c", 5),
        ("op", "=", 6),
        ("string", "d", 7),
        ("punct", "}", 10),
        ("op", ">=", 12),
        ("number", "10", 15),
        ("end", "", 17),
    ]
