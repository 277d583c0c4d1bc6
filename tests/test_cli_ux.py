"""What a new user meets on the command line: one time zero in colo and downtime, plot windows
by phase, filters that match nothing, written files, words instead of Python reprs, short
errors, holders with their tids, where an event is, empty preempt output, processes that are
not QEMU, CDF legends and the --borrow-from hint.

Expected values come from plain walks of the sample traces' lines, not from migtrace.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path

import pytest

import tracetool
from tests.conftest import read_lines, run_cli, sample
from tracetool.errors import UsageError

LINE = re.compile(rb"^(\d+)@(\d+)\.(\d{6}):(\w+) ?(.*)$")
PLAIN = "qemu-7.2/a-precopy-plain"
COLO = "qemu-7.2-colo/b-colo-periodic-mutex"
SIMPLE = "qemu-threadify/e-precopy-mutex"


@cache
def events(folder: str, side: str) -> list[tuple[int, int, str, str]]:
    """(tid, ns, event, args) of each event line of a QEMU 7.2 log, read plainly."""
    out = []
    for raw in read_lines(sample(folder, f"{side}.trace.xz")):
        m = LINE.match(raw)
        if m:
            ns = (int(m[2]) * 1_000_000 + int(m[3])) * 1000
            out.append((int(m[1]), ns, m[4].decode(), m[5].decode()))
    return out


def first_ns(folder: str) -> int:
    return min(ns for side in ("src", "dst") for _, ns, _, _ in events(folder, side))


def seconds(ns: int, zero: int, digits: int = 6) -> str:
    return f"{(ns - zero) / 1e9:.{digits}f}"


def both(folder: str) -> list[str]:
    return [sample(folder, "src.trace.xz"), sample(folder, "dst.trace.xz")]


# ------------------------------------------------------------------------ a: one time zero
def test_downtime_times_are_seconds_since_the_trace_s_first_event() -> None:
    r = run_cli("downtime", *both(PLAIN))
    assert r.returncode == 0, r.stderr
    zero = first_ns(PLAIN)
    stop = next(ns for _, ns, e, a in events(PLAIN, "src") if e == "runstate_set" and "(finish-migrate)" in a)
    run = next(ns for _, ns, e, a in events(PLAIN, "dst") if e == "runstate_set" and a.endswith("(running)"))
    assert r.stdout.splitlines()[0].startswith("times: seconds since the first event of the trace")
    assert (
        f"stopped the VM at {seconds(stop, zero)} s; the destination ran it at {seconds(run, zero)} s"
        in r.stdout
    )
    assert "ms from the source stopping" not in r.stdout


def test_colo_times_are_seconds_since_the_trace_s_first_event() -> None:
    r = run_cli("colo", *both(COLO))
    assert r.returncode == 0, r.stderr
    zero = first_ns(COLO)
    colo = next(
        ns for _, ns, e, a in events(COLO, "dst") if e == "migrate_set_state" and a == "new state colo"
    )
    lines = r.stdout.splitlines()
    assert lines[0].startswith("times: seconds since the first event of the trace")
    assert lines[1] == f"COLO started on dst (migrate_set_state colo) at {seconds(colo, zero, 3)} s"


# ------------------------------------------------------------------------ b: plot --window
def test_plot_window_is_the_phase_the_trace_shows() -> None:
    from tracetool._analyses import registry
    from tracetool.cli.plot import phase_window

    dst = events(PLAIN, "dst")
    # switchover: from the first section the source sends after stopping the VM (type 3, END)
    # to the destination's VM running
    start = next(ns for _, ns, e, a in dst if e == "qemu_loadvm_state_section" and a == "3")
    end = next(ns for _, ns, e, a in dst if e == "runstate_set" and a.endswith("(running)"))
    trace = tracetool.load(both(PLAIN))
    assert phase_window(registry.run(trace, "phases").phases, "switchover") == (start, end)


def test_plot_window_unknown_phase_names_the_close_ones(tmp_path: Path) -> None:
    out = tmp_path / "g.png"
    r = run_cli("plot", "gantt", *both(PLAIN), "--window", "switchovr", "-o", str(out))
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1
    assert "did you mean 'switchover'" in r.stderr and "phases here:" in r.stderr
    assert not out.exists()
    r = run_cli("plot", "gantt", *both(PLAIN), "--window", "switchover", "-o", str(out))
    assert r.returncode == 0 and out.stat().st_size > 0, r.stderr


def test_phase_window_refuses_a_name_the_trace_lacks() -> None:
    import pandas as pd

    from tracetool.cli.plot import phase_window

    phases = pd.DataFrame({"name": ["precopy"], "start_ns": [1], "end_ns": [2], "closed": [True]})
    with pytest.raises(UsageError, match="'precopy'"):
        phase_window(phases, "precopi")


# ------------------------------------------------------------------------ c: filters
@pytest.mark.parametrize(
    ("option", "value", "close"),
    [("--kind", "phse", "'phase'"), ("--thread", "mian", "'main'")],
)
def test_a_filter_that_matches_nothing_is_an_error_with_close_matches(
    option: str, value: str, close: str
) -> None:
    r = run_cli("timeline", *both(PLAIN), option, value)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and r.stdout == ""
    assert f"did you mean {close}" in r.stderr


def test_a_filter_that_matches_keeps_working() -> None:
    r = run_cli("timeline", *both(PLAIN), "--kind", "phase", "--thread", "main", "-f", "json")
    assert r.returncode == 0, r.stderr
    spans = json.loads(r.stdout)["spans"]
    assert spans and {s["kind"] for s in spans} == {"phase"} and {s["role"] for s in spans} == {"main"}


# ------------------------------------------------------------------------ d: written files
def test_plot_and_export_say_what_they_wrote_on_stderr(tmp_path: Path) -> None:
    png = tmp_path / "bql.png"
    r = run_cli("plot", "phases", *both(PLAIN), "-o", str(png))
    assert r.returncode == 0 and r.stdout == "", r.stderr
    assert r.stderr == f"migtrace: wrote {png} ({png.stat().st_size / 1024:.0f} KiB)\n"
    r = run_cli("export", *both(PLAIN), "--to", "csv", "-o", f"{tmp_path}/tables/")
    assert r.returncode == 0 and r.stdout == "", r.stderr
    written = sorted(p.name for p in (tmp_path / "tables").iterdir())
    said = sorted(os.path.basename(line.split()[2]) for line in r.stderr.splitlines())
    assert said == written and all(line.startswith("migtrace: wrote ") for line in r.stderr.splitlines())


@pytest.mark.parametrize(
    "args",
    [
        ["plot", "phases", "-o", "{tmp}/missing/x.png"],
        ["export", "--to", "csv", "-o", "{tmp}/missing/x/"],
        ["export", "--to", "parquet", "-o", "{tmp}/missing/prefix"],
        ["export", "--to", "perfetto", "-o", "{tmp}/missing/p.json"],
    ],
)
def test_an_output_under_a_missing_folder_is_refused_and_nothing_created(
    tmp_path: Path, args: list[str]
) -> None:
    argv = [a.format(tmp=tmp_path) for a in args]
    r = run_cli(*argv, *both(PLAIN))
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "no such directory" in r.stderr
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ e, g: words
def test_query_migrate_disagreeing_is_said_in_words(tmp_path: Path) -> None:
    qm = tmp_path / "qm.json"
    qm.write_text(json.dumps({"src": {"status": "failed"}, "dst": {}}))
    r = run_cli("phases", sample(PLAIN, "dst.trace.xz"), "--query-migrate", str(qm))
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "query-migrate said the source 'failed' but the trace shows 'completed'" in text
    assert "{" not in r.stdout and "None" not in r.stdout


def test_not_a_trace_is_one_short_line_naming_the_formats(tmp_path: Path) -> None:
    from parsers.registry import _builtin

    prose = tmp_path / "notes.txt"
    prose.write_text("these are my notes about the migration\n" * 5)
    r = run_cli("summary", str(prose))
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1
    # Short apart from the file's own path (a temporary folder's length varies).
    assert len(r.stderr.replace(str(prose), "FILE")) < 200 and "migtrace formats" in r.stderr
    assert all(name in r.stderr for name in _builtin())


# ------------------------------------------------------------------------ h, i: BQL tables
def test_bql_by_phase_names_holders_with_their_tids() -> None:
    path = sample("qemu-7.2/e-precopy-mutex", "dst.trace.xz")
    main_tid = next(
        int(m[1]) for raw in read_lines(path) if (m := LINE.match(raw)) and m[4] == b"migrate_set_state"
    )
    r = run_cli("--wide", "bql", path)
    assert r.returncode == 0, r.stderr
    block = r.stdout.split("BQL held, by migration phase")[1]
    rows = [line for line in block.splitlines() if line.startswith(" incoming ")]
    # no sidecar: the thread has no name, so it shows as its tid, never as a bare role
    assert rows and f"tid {main_tid} " in rows[0]


def test_bql_says_where_as_file_and_line_or_byte_offset() -> None:
    simple = run_cli("--wide", "bql", sample(SIMPLE, "dst.simple.xz"))
    assert simple.returncode == 0, simple.stderr
    assert re.search(r"dst\.simple\.xz@\d+", simple.stdout) and "byte offset" in simple.stdout
    log = run_cli("--wide", "bql", *both("qemu-7.2/e-precopy-mutex"))
    holds = log.stdout
    assert re.search(r"dst\.trace\.xz:\d+", holds) and re.search(r"src\.trace\.xz:\d+", holds)
    assert "byte offset" not in log.stdout


@pytest.mark.parametrize("command", ["phases", "timeline"])
def test_issue_lines_of_a_binary_trace_say_byte_offset(command: str) -> None:
    """The simple backend's records have a byte offset, not a line: ``file@offset``."""
    r = run_cli(command, sample(SIMPLE, "dst.simple.xz"))
    assert r.returncode == 0, r.stderr
    assert re.search(r"dst\.simple\.xz@\d+: input: ", r.stdout), r.stdout[-2000:]
    assert not re.search(r"dst\.simple\.xz:\d+", r.stdout)


# ------------------------------------------------------------------------ j: preempt
def test_preempt_on_a_precopy_trace_is_one_note_not_tables() -> None:
    r = run_cli("preempt", *both(PLAIN))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("not in this trace: no postcopy") and "─" not in r.stdout


# ------------------------------------------------------------------------ k: not QEMU
def test_processes_that_are_not_qemu_are_counted_not_listed() -> None:
    path = sample("qemu-threadify-ftrace/a-precopy-mutex", "ftrace.txt.xz")
    qemu, others = set(), set()
    for raw in read_lines(path):
        m = re.match(rb"^\s*(.+?)-(\d+)\s+\(\s*(\d+)\)\s.*?:\s(\w+):", raw)
        if m:
            (qemu if m[4] == b"tracing_mark_write" else others).add((m[1].decode(), int(m[2])))
    kernel_only = {t for t in others if t[1] not in {tid for _, tid in qemu}}
    assert kernel_only  # the tracer's process created the QEMUs (task_newtask)
    r = run_cli("summary", path, "-f", "json")
    doc = json.loads(r.stdout)
    listed = {t["tid"] for t in doc["threads"]}
    assert listed.isdisjoint({tid for _, tid in kernel_only}) and {tid for _, tid in qemu} <= listed
    assert sum(o["threads"] for o in doc["other_processes"]) == len(kernel_only)
    text = run_cli("summary", path).stdout
    assert f"not listed: {len(kernel_only)} thread(s)" in " ".join(text.split())


# ------------------------------------------------------------------------ l: CDF legends
def test_cdf_legends_do_not_cover_the_plots() -> None:
    from reports.plots.bql import bql_distribution
    from tracetool._analyses import registry

    fig = bql_distribution(registry.run(tracetool.load(both("qemu-7.2/e-precopy-mutex")), "bql"))
    fig.canvas.draw()  # type: ignore[attr-defined]
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    legends = [(ax, ax.get_legend()) for ax in fig.axes if ax.get_legend() is not None]
    assert legends
    for ax, legend in legends:
        assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


# ------------------------------------------------------------------------ m: --borrow-from
def test_the_borrow_hint_is_not_given_to_whoever_gave_borrow_from() -> None:
    simple, log = sample(SIMPLE, "dst.simple.xz"), sample(SIMPLE, "dst.trace.xz")
    alone = " ".join(run_cli("summary", simple).stdout.split())
    assert "with --borrow-from" in alone
    borrowed = run_cli("summary", simple, "--borrow-from", log)
    assert borrowed.returncode == 0, borrowed.stderr
    assert "Borrow them" not in borrowed.stdout and "even with --borrow-from" in " ".join(
        borrowed.stdout.split()
    )


def test_report_inputs_keep_the_file_names_at_100_columns() -> None:
    """Paths give way from their start (the file's own name says the most)."""
    run = sample("qemu-threadify/e-precopy-mutex", "per-thread")
    doc = json.loads(run_cli("summary", run, "--format", "json").stdout)
    names = [Path(i["path"]).name for i in doc["inputs"]]
    text = run_cli("report", run).stdout
    inputs = text[text.index("Inputs") : text.index("Processes")]
    assert names and all(name in inputs for name in names), inputs
