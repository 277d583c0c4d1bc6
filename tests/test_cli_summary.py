"""``migtrace summary``: the JSON contract, the text view, and clean errors."""

from __future__ import annotations

import gzip
import json
import lzma
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, read_lines, run_cli, run_cli_process, sample

_TID = re.compile(rb"^(\d+)@")

# Every log-backend sample with the thread-name sidecar that belongs to it.
CASES = [
    ("qemu-7.2/e-precopy-mutex/dst.trace.xz", "qemu-7.2/e-precopy-mutex/dst-threads.json"),
    ("qemu-7.2/d-postcopy-preempt/dst.trace.xz", "qemu-7.2/d-postcopy-preempt/dst-threads.json"),
    ("qemu-threadify/e-precopy-mutex/dst.trace.xz", "qemu-threadify/e-precopy-mutex/dst-threads.json"),
]


@pytest.mark.parametrize(("trace", "threads"), CASES)
def test_json_contract_and_counts(trace: str, threads: str) -> None:
    r = run_cli("summary", sample(trace), "--threads", sample(threads), "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    for key in ("inputs", "threads", "event_counts"):
        assert key in data
    (inp,) = data["inputs"]
    assert {"path", "format", "lines", "events", "other_lines"} <= set(inp)
    for t in data["threads"]:
        assert {"tid", "name", "role", "events", "first_ns", "last_ns"} <= set(t)
    lines = list(read_lines(sample(trace)))
    assert inp["lines"] == len(lines) == inp["events"] + inp["other_lines"]
    by_tid = Counter(int(m.group(1)) if (m := _TID.match(x)) else None for x in lines)
    assert {t["tid"]: t["events"] for t in data["threads"]} == dict(by_tid)
    # first_ns / last_ns are ns since the Unix epoch for these wall-clock traces
    for t in data["threads"]:
        assert 1.7e18 < t["first_ns"] <= t["last_ns"] < 1.9e18


def test_threadify_load_thread_is_named_and_typed() -> None:
    d = sample("qemu-threadify", "d-postcopy-preempt", "per-thread")
    r = run_cli("summary", d, "--threads", f"{d}/dst-threads.json", "-f", "json")
    data = json.loads(r.stdout)
    roles = {t["name"]: t["role"] for t in data["threads"] if t["process"] == "dst"}
    assert roles["mig/dst/main"] == "load"
    assert roles["mig/dst/preempt"] == "preempt"
    assert roles["mig/dst/listen"] == "listen"
    assert roles["mig/dst/fault"] == "fault"


def test_text_output_is_a_readable_table() -> None:
    r = run_cli("summary", sample(*CASES[0][0].split("/")), "--threads", sample(CASES[0][1]))
    assert r.returncode == 0, r.stderr
    assert "Threads" in r.stdout and "CPU 0/TCG" in r.stdout and "vcpu" in r.stdout
    assert "\x1b[" not in r.stdout  # no colour codes when piped


def test_stdin_is_read_like_a_file() -> None:
    with lzma.open(sample("qemu-7.2", "a-precopy-plain", "src.trace.xz")) as f:
        raw = f.read()
    r = run_cli("summary", "-", "-f", "json", stdin=gzip.compress(raw))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["inputs"][0]["path"] == "-"
    assert out["inputs"][0]["events"] == raw.count(b"\n")


def _missing(p: Path) -> str:
    return str(p / "missing.trace")


def _empty(p: Path) -> str:
    (p / "empty.trace").write_bytes(b"")
    return str(p / "empty.trace")


def _binary_junk(p: Path) -> str:
    (p / "junk.bin").write_bytes(bytes(range(256)) * 10)
    return str(p / "junk.bin")


def _prose(p: Path) -> str:
    (p / "prose.txt").write_text("hello world\nnothing here\n")
    return str(p / "prose.txt")


def _only_messages(p: Path) -> str:
    (p / "errors.log").write_text("qemu-system-x86_64: -incoming tcp:x: bad address\n")
    return str(p / "errors.log")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_missing, "no such file"),
        (_empty, "empty"),
        (_binary_junk, "not a QEMU trace"),
        (_prose, "not a QEMU trace"),
        (_only_messages, "not a QEMU trace"),
    ],
)
def test_errors_are_one_line_and_exit_2(tmp_path: Path, make: Callable[[Path], str], message: str) -> None:
    r = run_cli("summary", make(tmp_path))
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_unknown_input_format_lists_the_supported_ones() -> None:
    r = run_cli("summary", sample(*CASES[0][0].split("/")), "--input-format", "nope")
    assert r.returncode == 2 and "supported: log" in r.stderr


def test_help_lists_summary() -> None:
    r = run_cli("--help")
    assert r.returncode == 0 and "summary" in r.stdout


def test_the_command_runs_in_its_own_process_as_a_user_runs_it() -> None:
    """The other CLI tests run in this interpreter; these run ``python -m tracetool.cli``."""
    r = run_cli_process("--help")
    assert r.returncode == 0 and "summary" in r.stdout
    with lzma.open(sample("qemu-7.2", "a-precopy-plain", "src.trace.xz")) as f:
        raw = f.read()
    r = run_cli_process("summary", "-", "-f", "json", stdin=raw)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["totals"]["events"] == raw.count(b"\n")
    r = run_cli_process("summary", "/nonexistent/trace")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_samples_exist() -> None:
    assert (SAMPLES / "README.md").exists()


def test_borrow_from_gives_a_simple_trace_the_wall_clock() -> None:
    run = ("qemu-threadify", "e-precopy-mutex")
    plain = json.loads(run_cli("summary", sample(*run, "dst.simple.xz"), "-f", "json").stdout)
    r = run_cli(
        "summary", sample(*run, "dst.simple.xz"), "--borrow-from", sample(*run, "dst.trace.xz"), "-f", "json"
    )
    assert r.returncode == 0, r.stderr
    borrowed = json.loads(r.stdout)
    assert plain["clock"] == "monotonic" and borrowed["clock"] == "wall"
    log = json.loads(run_cli("summary", sample(*run, "dst.trace.xz"), "-f", "json").stdout)
    # Same run, so the borrowed wall-clock span sits inside the log's own span (±20 ms).
    (t,) = borrowed["threads"]
    (u,) = log["threads"]
    assert abs(t["first_ns"] - u["first_ns"]) < 20_000_000
    assert abs(t["last_ns"] - u["last_ns"]) < 20_000_000


def test_readme_documents_every_metric() -> None:
    from tracetool._check.metrics import metric_table_markdown

    readme = (SAMPLES.parent / "README.md").read_text()
    assert metric_table_markdown().strip() in readme


def test_tables_fit_100_columns_when_piped_and_wide_shows_everything() -> None:
    run = SAMPLES / "qemu-threadify/e-precopy-mutex/per-thread"
    args = ("bql", str(run), "--threads", str(run / "dst-threads.json"))
    narrow = run_cli(*args)
    assert narrow.returncode == 0, narrow.stderr
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 100
    assert "left out to fit 100 columns" in narrow.stdout
    wide = run_cli("--wide", *args)
    assert wide.returncode == 0, wide.stderr
    assert max(len(line) for line in wide.stdout.splitlines()) > 100
    assert "wait p99" in wide.stdout and "left out" not in wide.stdout
    # a value is shortened with an ellipsis, never folded over two lines
    assert "mig/dst/main" in wide.stdout
    assert not any(line.strip() in ("/main", "main") for line in narrow.stdout.splitlines())


def test_version_and_formats() -> None:
    r = run_cli("--version")
    assert r.returncode == 0 and re.fullmatch(r"migtrace \S+\n", r.stdout)
    r = run_cli("formats", "-f", "json")
    names = [f["name"] for f in json.loads(r.stdout)["formats"]]
    assert {"log", "simple", "ftrace", "trace-cmd", "lttng", "simpletrace-stap"} <= set(names)
