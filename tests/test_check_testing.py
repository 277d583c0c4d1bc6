"""The Python side: ``tracetool._check`` with every form of rules, and the ``assert_trace``
helper for pytest (cached loading, readable failures)."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

import tracetool
from tests.conftest import read_lines, sample
from tracetool import testing
from tracetool._check.evaluate import Status
from tracetool._check.grammar import parse_expression
from tracetool._check.rulefile import load_rules
from tracetool.errors import RulesError
from tracetool.testing import TraceCheckFailed, assert_trace

TRACE = sample("qemu-7.2", "a-precopy-plain", "dst.trace.xz")
EVENT = re.compile(rb"^\d+@\d+\.\d+:(\w+)")


@pytest.fixture(scope="module")
def counts() -> Counter[str]:
    return Counter(m.group(1).decode() for x in read_lines(TRACE) if (m := EVENT.match(x)))


def test_check_is_exported_and_takes_every_form_of_rules(tmp_path: Path, counts: Counter[str]) -> None:
    trace = testing.load_cached(TRACE)
    n = counts["vmstate_load"]
    expr = f"events.vmstate_load.count == {n}"
    toml = f'[[rule]]\nname = "devices"\nexpr = "{expr}"\n'
    f = tmp_path / "r.toml"
    f.write_text(toml)
    forms: list[object] = [
        expr,
        [expr],
        toml,
        str(f),
        f,
        load_rules(f),
        load_rules(f).rules[0],
        parse_expression(expr),
        [expr, load_rules(f).rules[0]],
    ]
    for form in forms:
        report = tracetool.check_trace(trace, form)  # type: ignore[arg-type]
        assert report.ok and all(r.observed == n for r in report.results), form


def test_check_loads_paths_itself(counts: Counter[str]) -> None:
    report = tracetool.check_trace(TRACE, [f"events.count == {sum(counts.values())}"])
    assert report.ok and report.inputs == (TRACE,)


def test_assert_trace_passes_and_returns_the_report(counts: Counter[str]) -> None:
    report = assert_trace(TRACE, f"events.count == {sum(counts.values())}", 'event("vmstate_load") exists')
    assert [r.status for r in report.results] == [Status.PASS, Status.PASS]


def test_assert_trace_failure_message_is_readable(counts: Counter[str]) -> None:
    n = counts["vmstate_load"]
    with pytest.raises(TraceCheckFailed) as err:
        assert_trace(
            TRACE, f"events.vmstate_load.count < {n}", "unparsed_lines == 0", "bql.hold.max{role=load} < 5ms"
        )
    text = str(err.value)
    assert text.startswith(f"2 of 3 trace rules failed on {TRACE}:")
    assert f"observed: {n}\n" in text and f"expected: < {n}" in text
    assert "measured: migtrace summary: event_counts.vmstate_load" in text
    assert "not measurable: enable qemu_mutex_locked, qemu_mutex_unlock" in text
    assert isinstance(err.value, AssertionError) and len(err.value.report.failed) == 2


def test_traces_are_loaded_once_per_path(tmp_path: Path) -> None:
    testing.clear_cache()
    for _ in range(3):
        assert_trace(TRACE, "unparsed_lines == 0")
    assert_trace(Path(TRACE), "dropped_events == 0")
    assert testing.load_cached(TRACE) is testing.load_cached(Path(TRACE))
    info = testing._load.cache_info()
    assert (info.misses, info.hits) == (1, 5)  # 4 assertions + 2 look-ups, one load
    # a rewritten file is read again
    copy = tmp_path / "dst.trace.xz"
    copy.write_bytes(Path(TRACE).read_bytes())
    first = testing.load_cached(copy)
    os.utime(copy, ns=(1, 1))
    assert testing.load_cached(copy) is not first


def test_assert_trace_rule_errors_are_not_assertion_failures() -> None:
    with pytest.raises(RulesError, match="unknown metric"):
        assert_trace(TRACE, "bql.hold.maximum < 5ms")
    with pytest.raises(ValueError, match="at least one rule"):
        assert_trace(TRACE)
