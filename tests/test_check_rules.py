"""Rules files and binding rules to metrics: every error names the file, the rule's line and,
for expressions, the column; unknown names come with close matches."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tracetool._check.metric_types import SELECTORS, Kind
from tracetool._check.metrics import METRICS, metric_table_markdown
from tracetool._check.rulefile import load_rules, parse_rules
from tracetool._check.rules import rules_from_expressions
from tracetool.errors import RulesError

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "rules"


def _error(text: str) -> RulesError:
    with pytest.raises(RulesError) as err:
        parse_rules(text, "ci.toml")
    return err.value


def _line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle`` (a plain search)."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


RULES = """\
[check]
name = "nightly"

[[rule]]
name = "load thread BQL"
expr = 'bql.hold.max{thread="mig/dst/main"} < 5ms'

[[rule]]
name = "structured"
metric = "devices.duration"
select = { device = "virtio-net" }
op = "<="
value = "20ms"
optional = true
description = "one device at a time"

[[rule]]
name = "no garbage"
metric = "unparsed_lines"
op = "=="
value = 0
"""


def test_rules_file_is_parsed_in_order_with_lines() -> None:
    rs = parse_rules(RULES, "ci.toml")
    assert rs.name == "nightly"
    assert [r.name for r in rs] == ["load thread BQL", "structured", "no garbage"]
    headers = [i for i, line in enumerate(RULES.splitlines(), 1) if line == "[[rule]]"]
    assert [r.line for r in rs] == headers
    first, second, third = rs.rules
    assert first.metric.path == "bql.hold.max" and first.selectors == (("thread", "mig/dst/main"),)
    assert first.threshold is not None and first.threshold.value == 5000.0
    assert second.optional and second.description == "one device at a time"
    assert second.threshold is not None and second.threshold.value == 20_000.0
    assert second.expression.op == "<=" and second.selectors == (("device", "virtio-net"),)
    assert third.threshold is not None and third.threshold.value == 0
    assert all(r.group == "nightly" for r in rs)


def test_group_defaults_to_the_file_name(tmp_path: Path) -> None:
    f = tmp_path / "smoke-test.toml"
    f.write_text('[[rule]]\nname = "a"\nexpr = "unparsed_lines == 0"\n')
    rs = load_rules(f)
    assert rs.name == "smoke-test" and rs.rules[0].origin == str(f)


def test_malformed_toml_reports_line_and_column() -> None:
    text = '[[rule]]\nname = "a"\nexpr = "x < 1"\nbroken line here\n'
    err = _error(text)
    # cross-check with tomllib's own position, read from its message
    with pytest.raises(tomllib.TOMLDecodeError) as plain:
        tomllib.loads(text)
    assert f"(at line {err.line}, column {err.column})" in str(plain.value)
    assert err.line == 4
    assert str(err).startswith("ci.toml:4:") and "invalid TOML" in str(err)


def test_bad_expression_points_at_file_line_and_column() -> None:
    text = RULES.replace("< 5ms", "< 5ms ms")
    err = _error(text)
    line = _line_of(text, "5ms ms")
    column = text.splitlines()[line - 1].index("ms ms") + 4  # the second "ms", 1-based
    assert (err.line, err.column) == (line, column)
    assert err.rule == "load thread BQL"
    assert "after the end of the rule" in str(err)


def test_expression_column_without_a_file_column_for_escaped_strings() -> None:
    text = '[[rule]]\nname = "a"\nexpr = "x{thread=\\"a\\"} <"\n'
    err = _error(text)
    assert err.line == 3 and err.column is None
    assert "column 16: expected a value" in str(err)


def test_unknown_metric_lists_close_matches() -> None:
    text = RULES.replace("bql.hold.max", "bql.hold.maxx")
    err = _error(text)
    assert err.line == _line_of(text, "bql.hold.maxx")
    assert "unknown metric bql.hold.maxx" in str(err) and "did you mean: bql.hold.max" in str(err)


def test_unknown_metric_with_placeholder_suggests_the_template() -> None:
    err = _error(RULES.replace('bql.hold.max{thread="mig/dst/main"}', "phases.devices.durration"))
    assert "did you mean: phases.devices.duration" in str(err)


def test_unknown_phase_name_lists_the_phases() -> None:
    err = _error(RULES.replace('bql.hold.max{thread="mig/dst/main"}', "phases.switchovr.duration"))
    assert "unknown phase 'switchovr'" in str(err) and "did you mean: switchover" in str(err)


def test_unknown_selector_lists_close_matches() -> None:
    err = _error(RULES.replace("{thread=", "{thraed="))
    assert "unknown selector 'thraed'" in str(err) and "did you mean: thread" in str(err)


def test_roles_are_a_closed_set() -> None:
    from tracetool._model.threads import ROLES

    with pytest.raises(RulesError, match="unknown role 'vpcu' \\(did you mean: vcpu"):
        rules_from_expressions(["bql.hold.max{role=vpcu} < 5ms"])
    plain = [r for r in ROLES if not r.endswith("_N")] + ["recv_3", "send_0", "load|listen", "recv_*"]
    rules_from_expressions([f'threads.count{{role="{r}"}} >= 0' for r in plain])


def test_selector_a_metric_does_not_take() -> None:
    err = _error(RULES.replace("{thread=", "{device="))
    assert "bql.hold.max does not take selector 'device'" in str(err)
    assert "thread, role, tid" in str(err)


def test_structured_selector_error_names_the_rule() -> None:
    err = _error(RULES.replace("select = { device", "select = { devcie"))
    assert err.rule == "structured" and "did you mean: device" in str(err)


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        ("5mss", "bad unit 'mss'"),
        ("5 hours", "bad unit 'hours'"),
        ("5", "give a unit"),
        ('"fast"', "expected a number"),
        ("fast", "expected a number"),
    ],
)
def test_bad_duration_thresholds(threshold: str, message: str) -> None:
    text = RULES.replace("< 5ms", f"< {threshold}")
    err = _error(text)
    assert message in str(err)
    line = _line_of(RULES, "< 5ms")
    assert err.line == line
    unit = threshold.lstrip("0123456789 ")
    if unit and unit[0].isalpha():  # the column of a bad unit is the unit's own column
        assert err.column == text.splitlines()[line - 1].index(unit) + 1


def test_zero_needs_no_unit_and_quoted_durations_are_read() -> None:
    rs = rules_from_expressions(["bql.hold.max < 0", 'bql.hold.max < "2ms"'])
    assert [r.threshold.value for r in rs if r.threshold] == [0.0, 2000.0]


def test_counts_reject_units() -> None:
    with pytest.raises(RulesError, match=r"bad unit 'ms': bql\.holds is a count"):
        rules_from_expressions(["bql.holds < 5ms"])


def test_text_metrics_take_only_equality_and_known_choices() -> None:
    with pytest.raises(RulesError, match="compare it with == or !="):
        rules_from_expressions(["outcome < completed"])
    with pytest.raises(RulesError, match="did you mean: completed"):
        rules_from_expressions(["outcome == complete"])


def test_flags_take_true_or_false() -> None:
    (r,) = rules_from_expressions(["preempt.enabled == true"])
    assert r.threshold is not None and r.threshold.value is True
    with pytest.raises(RulesError, match="true or false"):
        rules_from_expressions(["preempt.enabled == yes"])


def test_presence_and_comparison_are_not_mixed() -> None:
    with pytest.raises(RulesError, match="'exists' or 'absent'"):
        rules_from_expressions(['event("x") > 1'])
    with pytest.raises(RulesError, match="applies to event"):
        rules_from_expressions(["bql.hold.max exists"])
    with pytest.raises(RulesError, match='needs a name: event\\("name"\\)'):
        rules_from_expressions(["event exists"])


def test_command_line_rule_errors_quote_the_rule() -> None:
    text = "bql.hold.max{role=load} < 5 parsecs"
    with pytest.raises(RulesError) as err:
        rules_from_expressions([text])
    assert str(err.value).startswith(f"--rule '{text}': ")
    assert f"column {text.index('parsecs') + 1}: bad unit 'parsecs'" in str(err.value)


@pytest.mark.parametrize(
    ("mutate", "message", "key"),
    [
        (lambda t: t.replace('name = "no garbage"\n', ""), "needs a name", None),
        (
            lambda t: t.replace("optional = true", "optional = 1"),
            "optional must be true or false",
            "optional = 1",
        ),
        (lambda t: t.replace("optional = true", "optinal = true"), "did you mean: optional", "optinal"),
        (lambda t: t.replace('op = "<="', 'op = "=<"'), "op must be one of", 'op = "=<"'),
        (lambda t: t.replace('name = "structured"', 'name = "load thread BQL"'), "duplicate rule name", None),
        (lambda t: t.replace("[[rule]]", "[[rules]]"), "unknown top-level key 'rules'", None),
        (
            lambda t: t.replace('name = "structured"', 'name = "structured"\nexpr = "x < 1"'),
            "either expr or metric",
            'metric = "devices.duration"',
        ),
    ],
)
def test_rule_table_errors_name_the_line(mutate: object, message: str, key: str | None) -> None:
    text = mutate(RULES)  # type: ignore[operator]
    err = _error(text)
    assert message in str(err)
    assert err.line is not None
    if key is not None:
        assert err.line == _line_of(text, key)


def test_multiline_strings_do_not_confuse_rule_lines() -> None:
    text = (
        '[[rule]]\nname = "a"\ndescription = """\nfirst\n[[rule]]\nlast\n"""\n'
        'expr = "unparsed_lines == 0"\n[[rule]]\nname = "b"\nexpr = "bql.holds < 3ms"\n'
    )
    err = _error(text)
    assert err.line == 11 and err.rule == "b"


def test_missing_rules_file() -> None:
    with pytest.raises(RulesError, match="no such rules file"):
        load_rules("/nonexistent/rules.toml")


def test_every_metric_row_is_consistent() -> None:
    for m in METRICS:
        assert set(m.select) <= set(SELECTORS), m.path
        assert (m.kind is Kind.PRESENCE) == m.path.endswith(")"), m.path
        assert m.help, m.path
        assert m.path in metric_table_markdown()


@pytest.mark.parametrize("name", ["precopy.toml", "postcopy.toml"])
def test_example_rules_files_load(name: str) -> None:
    rs = load_rules(EXAMPLES / name)
    assert len(rs) >= 10 and rs.name == name.removesuffix(".toml")
