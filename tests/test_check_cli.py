"""``migtrace check`` and ``migtrace events`` as a CI job runs them: exit codes, text, JSON,
JUnit read back by a real JUnit consumer, and one-line errors."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped, xunit2

from tests.conftest import read_lines, run_cli, sample
from tracetool._analyses.events import event_data
from tracetool._events.catalog import Catalog

TRACE = sample("qemu-7.2", "a-precopy-plain", "dst.trace.xz")
THREADS = sample("qemu-7.2", "a-precopy-plain", "dst-threads.json")
LOG_LINE = re.compile(rb"^(\d+)@\d+\.\d+:(\w+)")


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``migtrace ARGS`` in this interpreter (see ``tests.conftest.run_cli``)."""
    r = run_cli(*args)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture(scope="module")
def counts() -> Counter[str]:
    """Events per name, counted from the trace lines."""
    return Counter(m.group(2).decode() for x in read_lines(TRACE) if (m := LOG_LINE.match(x)))


def _rules_file(tmp_path: Path, counts: Counter[str]) -> Path:
    loads = counts["vmstate_load"]
    f = tmp_path / "nightly.toml"
    f.write_text(f"""\
[[rule]]
name = "device loads were traced"
expr = "events.vmstate_load.count == {loads}"

[[rule]]
name = "too few device loads"
expr = "events.vmstate_load.count < {loads}"

[[rule]]
name = "no preempt channel in precopy"
expr = 'event("postcopy_preempt_new_channel") absent'

[[rule]]
name = "per-device downtime"
expr = "devices.downtime < 1ms"
optional = true

[[rule]]
name = "needs the downtime event"
expr = "devices.downtime < 1ms"
""")
    return f


def test_rules_file_with_failures_exit_1_text_and_junit(tmp_path: Path, counts: Counter[str]) -> None:
    rules = _rules_file(tmp_path, counts)
    junit = tmp_path / "out" / "report.xml"
    junit.parent.mkdir()
    # A relative path: a long temporary folder would be shortened to fit 100 columns.
    r = run_cli(
        "check", TRACE, "--threads", THREADS, "--rules", rules.name, "--junit", str(junit), cwd=str(tmp_path)
    )
    assert r.returncode == 1, r.stderr
    out = r.stdout.splitlines()
    verdicts = [line.split()[0] for line in out if line[:4] in ("PASS", "FAIL", "SKIP")]
    assert verdicts == ["PASS", "FAIL", "PASS", "SKIP", "FAIL"]
    assert out[-1] == "2 passed, 2 failed, 1 skipped"
    loads = counts["vmstate_load"]
    assert f"events.vmstate_load.count = {loads}   (expected < {loads})" in r.stdout
    assert "not measurable: enable vmstate_downtime_load" in r.stdout
    assert f"rule at {rules.name}:5" in r.stdout  # the second [[rule]] starts on line 5

    xml = JUnitXml.fromfile(str(junit))
    (suite,) = list(xml)
    assert (suite.name, suite.tests, suite.failures, suite.skipped, suite.errors) == ("nightly", 5, 2, 1, 0)
    cases = {c.name: c for c in suite}
    assert list(cases) == [
        "device loads were traced",
        "too few device loads",
        "no preempt channel in precopy",
        "per-device downtime",
        "needs the downtime event",
    ]
    assert all(c.classname == "nightly" for c in cases.values())
    assert cases["device loads were traced"].is_passed
    (fail,) = cases["too few device loads"].result
    assert isinstance(fail, Failure) and fail.type == "threshold"
    assert fail.message == f"events.vmstate_load.count = {loads}, expected < {loads}"
    assert "observed:" in (fail.text or "") and "expected:" in (fail.text or "")
    (skip,) = cases["per-device downtime"].result
    assert isinstance(skip, Skipped) and "vmstate_downtime_load" in (skip.message or "")
    (nm,) = cases["needs the downtime event"].result
    assert isinstance(nm, Failure) and nm.type == "not-measurable"
    # the Jenkins xunit flavour (junit-10.xsd) reads it the same way
    x2 = xunit2.JUnitXml.fromfile(str(junit))
    assert sum(1 for s in x2 for _ in s) == 5
    # written atomically: no temporary file left next to it
    assert [p.name for p in junit.parent.iterdir()] == ["report.xml"]
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "5" and root.get("failures") == "2"


def test_command_line_rules_json_exit_0(capsys: pytest.CaptureFixture[str], counts: Counter[str]) -> None:
    names = json.loads(Path(THREADS).read_text())["tid_to_name"]
    tids = Counter(int(m.group(1)) for x in read_lines(TRACE) if (m := LOG_LINE.match(x)))
    busiest = names[str(tids.most_common(1)[0][0])]
    code, out, err = run_in_process(
        capsys,
        "check",
        TRACE,
        "--threads",
        THREADS,
        "--format",
        "json",
        "--rule",
        f"events.count == {sum(counts.values())}",
        "--rule",
        f'thread("{busiest}") exists',
        "--rule",
        f"threads.count == {len(tids)}",
    )
    assert code == 0, out + err
    doc = json.loads(out)
    assert (doc["total"], doc["passed"], doc["failed"], doc["exit_code"]) == (3, 3, 0, 0)
    first = doc["rules"][0]
    assert first["observed"] == sum(counts.values()) and first["group"] == "command-line"
    assert first["name"] == f"events.count == {sum(counts.values())}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rule", "bql.hold.mx < 5ms"], "unknown metric bql.hold.mx (did you mean: bql.hold.max"),
        (["--rule", "bql.hold.max{thraed=x} < 5ms"], "unknown selector 'thraed' (did you mean: thread"),
        (["--rule", "bql.hold.max < 5 lightyears"], "bad unit 'lightyears'"),
        (["--rule", "bql.hold.max < "], "column 16: expected a value"),
        ([], "no rules: give --rules FILE or --rule EXPR"),
        (["--rules", "/nonexistent.toml"], "/nonexistent.toml: no such rules file"),
        (
            ["--rule", 'event("postcopy_preempt_new_chanel") exists'],
            "did you mean: postcopy_preempt_new_channel",
        ),
    ],
)
def test_usage_and_rule_errors_exit_2_in_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run_in_process(capsys, "check", TRACE, *args)
    assert code == 2, out + err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out == ""


def test_malformed_toml_exit_2_with_line_and_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = tmp_path / "bad.toml"
    f.write_text('[[rule]]\nname = "x"\nexpr = "unparsed_lines == 0\n')
    code, _, err = run_in_process(capsys, "check", TRACE, "--rules", str(f))
    assert code == 2
    assert err.startswith(f"migtrace: {f}:3:") and "invalid TOML" in err


def test_bad_input_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_in_process(
        capsys, "check", str(tmp_path / "missing.trace"), "--rule", "unparsed_lines == 0"
    )
    assert code == 2 and "no such file" in err and "Traceback" not in err


def test_junit_target_that_cannot_be_written_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_in_process(
        capsys,
        "check",
        TRACE,
        "--rule",
        "unparsed_lines == 0",
        "--junit",
        str(tmp_path / "no" / "such" / "dir" / "r.xml"),
    )
    assert code == 2 and "--junit" in err


# ---------------------------------------------------------------------------------- events
def test_events_list_is_a_valid_trace_events_file_for_each_generation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    catalog = Catalog.builtin()
    names = catalog.names()
    for generation in event_data().generations:
        code, text, err = run_in_process(
            capsys, "events", "--for", "bql,phases,preempt", "--qemu", generation
        )
        assert code == 0, err
        patterns = [x for x in text.splitlines() if x and not x.startswith("#")]
        assert len(patterns) == len(set(patterns))
        for p in patterns:
            assert p == p.strip() and " " not in p  # QEMU reads each line as one pattern
            # every pattern enables at least one event the catalog knows
            if "*" in p:
                assert any(re.fullmatch(p.replace("*", ".*"), n) for n in names), p
            else:
                assert catalog.is_known(p), p
        assert "-msg timestamp=on" in text and "debug-threads=on" in text


def test_events_per_generation_follow_the_catalog_versions() -> None:
    from tracetool._analyses.events import events_file

    old = events_file(["phases"], "7.2").splitlines()
    new = events_file(["phases"], "threadify").splitlines()
    assert "process_incoming_migration_co_end" in old and "process_incoming_migration_end" not in old
    assert "process_incoming_migration_end" in new and "process_incoming_migration_co_end" not in new
    catalog = Catalog.builtin()
    for ev in ("process_incoming_migration_end", "vmstate_downtime_load"):
        since = catalog.variants(ev)[0].since
        assert since is not None  # absent from 7.2, as the list says
        assert tuple(int(x) for x in since.split(".")) > (7, 2)
    assert "-d tid -D NAME.%d.trace" in "\n".join(new)
    assert "TID@SEC.USEC" in "\n".join(old)


def test_events_bad_analysis_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_in_process(capsys, "events", "--for", "bql,lockz")
    assert code == 2 and "unknown analysis 'lockz'" in err
