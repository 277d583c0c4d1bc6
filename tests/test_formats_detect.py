"""Format detection: each input's first 64 KiB (after decompression) decide its reader;
--input-format forces one; an unknown input gets an error that lists every format."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from pathlib import Path

import pytest
import zstandard

import tracetool
from parsers import registry
from parsers.ftrace import sniff as sniff_ftrace
from parsers.io import peek_decompressed
from parsers.log import sniff as sniff_log
from parsers.lttng import sniff as sniff_lttng
from tests.conftest import SAMPLES, read_lines, run_cli, sample
from tracetool._analyses.summary import summarize

CAPTURES = {
    "ftrace": sample("qemu-threadify-ftrace", "a-precopy-mutex", "ftrace.txt.xz"),
    "ftrace-markers": sample("qemu-threadify-ftrace", "e-precopy-markers-only", "ftrace.txt.xz"),
    "trace-cmd": sample("qemu-threadify-ftrace", "d-precopy-mutex-trace-cmd", "trace-cmd-report.txt.xz"),
    "lttng": sample("qemu-threadify-lttng", "a-precopy-mutex", "lttng-babeltrace2.txt.xz"),
    "log-iso": sample("qemu-threadify-lttng", "a-precopy-mutex", "dst.trace.xz"),
    "log-tid": sample("qemu-7.2", "a-precopy-plain", "dst.trace.xz"),
}
# (backend chosen by detection, Segment.format, Segment.variant)
EXPECTED = {
    "ftrace": ("ftrace", "ftrace", "tracefs+tgid"),
    "ftrace-markers": ("ftrace", "ftrace", "tracefs"),
    "trace-cmd": ("ftrace", "trace-cmd", "no-flags"),
    "lttng": ("lttng", "lttng", "time-of-day"),
    "log-iso": ("log", "log", "iso8601"),
    "log-tid": ("log", "log", "tid@sec.usec"),
}
SNIFFERS = {"ftrace": sniff_ftrace, "lttng": sniff_lttng, "log": sniff_log}


def _head(name: str, lines: int = 3000) -> bytes:
    out = []
    for raw in read_lines(CAPTURES[name]):
        out.append(raw)
        if len(out) == lines:
            break
    return b"\n".join(out) + b"\n"


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_each_real_capture_is_detected(name: str) -> None:
    assert registry.detect(CAPTURES[name]).name == EXPECTED[name][0]


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_sniffers_do_not_claim_each_others_captures(name: str) -> None:
    head = peek_decompressed(CAPTURES[name], registry.SNIFF_BYTES)
    owner = EXPECTED[name][0]
    scores = {backend: fn(head) for backend, fn in SNIFFERS.items()}
    assert scores[owner] >= 50, scores
    assert all(score == 0 for backend, score in scores.items() if backend != owner), scores


@pytest.mark.parametrize("kind", ["plain", "gzip", "xz", "zstd", "bz2"])
@pytest.mark.parametrize("name", ["ftrace", "trace-cmd", "lttng"])
def test_every_compression_is_detected_and_read_alike(tmp_path: Path, kind: str, name: str) -> None:
    raw = _head(name)
    packed = {
        "plain": lambda b: b,
        "gzip": gzip.compress,
        "xz": lzma.compress,
        "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
        "bz2": bz2.compress,
    }[kind](raw)
    path = tmp_path / "capture.bin"  # the name says nothing: the bytes decide
    path.write_bytes(packed)
    assert registry.detect(str(path)).name == EXPECTED[name][0]
    [inp] = summarize(tracetool.load(str(path))).to_json()["inputs"]
    assert (inp["format"], inp["variant"]) == EXPECTED[name][1:]
    assert inp["lines"] == raw.count(b"\n") and inp["other_lines"] == 0


def test_summary_shows_the_format_of_each_input(tmp_path: Path) -> None:
    paths = []
    for name in ("ftrace", "trace-cmd", "lttng", "log-iso", "log-tid"):
        p = tmp_path / f"{name}.head"
        p.write_bytes(_head(name, 500))
        paths.append(str(p))
    out = run_cli("summary", "--format", "json", *paths)
    assert out.returncode == 0, out.stderr
    got = [(Path(i["path"]).stem, i["format"], i["variant"]) for i in json.loads(out.stdout)["inputs"]]
    assert got == [(n, *EXPECTED[n][1:]) for n in ("ftrace", "trace-cmd", "lttng", "log-iso", "log-tid")]


def test_input_format_forces_the_reader(tmp_path: Path) -> None:
    p = tmp_path / "report.txt"
    p.write_bytes(_head("trace-cmd", 500))
    out = run_cli("summary", "--format", "json", "--input-format", "trace-cmd", str(p))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["inputs"][0]["format"] == "trace-cmd"
    # The wrong reader finds no event: one clear line, exit code 2, no traceback.
    out = run_cli("summary", "--input-format", "lttng", str(p))
    assert out.returncode == 2
    assert "no trace events" in out.stderr and "500 not trace lines" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_input_names_every_supported_format(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("Meeting notes\nNothing to trace here.\n")
    out = run_cli("summary", str(p))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert str(p) in out.stderr and "--input-format" in out.stderr
    for backend in registry.backends():
        assert backend.name in out.stderr
    out = run_cli("summary", "--input-format", "babeltrace", str(p))
    assert out.returncode == 2
    assert all(b.name in out.stderr for b in registry.backends())


def test_a_capture_folder_reads_only_its_traces() -> None:
    folder = str(Path(CAPTURES["ftrace"]).parent)
    out = run_cli("summary", "--format", "json", folder)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    got = sorted((Path(i["path"]).name, i["format"]) for i in doc["inputs"])
    # dst.trace.xz is the log twin of the same run: read once, from ftrace (ids and names)
    assert got == [("ftrace.txt.xz", "ftrace")]
    twin = [s for s in doc["skipped_inputs"] if Path(s["path"]).name == "dst.trace.xz"]
    assert twin and "same run" in twin[0]["reason"]
    named = run_cli("summary", "--format", "json", folder + "/dst.trace.xz", folder + "/ftrace.txt.xz")
    assert len(json.loads(named.stdout)["inputs"]) == 2  # named files are read as given


def test_a_folder_with_log_and_simple_twins_reads_each_process_once() -> None:
    folder = SAMPLES / "qemu-threadify" / "e-precopy-mutex"
    doc = json.loads(run_cli("summary", "--format", "json", str(folder)).stdout)
    assert sorted(Path(i["path"]).name for i in doc["inputs"]) == ["dst.trace.xz", "src.trace.xz"]
    assert sorted(p["label"] for p in doc["processes"]) == ["dst", "src"]
    twins = sorted(Path(s["path"]).name for s in doc["skipped_inputs"] if "same run" in s["reason"])
    assert twins == ["dst.simple.xz", "src.simple.xz"]


def test_a_trace_events_list_in_a_folder_is_named_not_read_as_a_trace(tmp_path: Path) -> None:
    """A ``-trace events=`` list kept next to per-thread files (event names, one a line) is not a
    log of argument-less events; a log without timestamps that only looks alike still reads."""
    lines = list(read_lines(sample("qemu-7.2/a-precopy-plain", "src.trace.xz")))
    (tmp_path / "dst.100.trace").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "events-mutex.txt").write_bytes(
        b"# the BQL scenario's extra events\nqemu_mutex_lock\nqemu_mutex_locked\nqemu_mutex_unlock\n"
    )
    (tmp_path / "events-glob.txt").write_bytes(b"migration_*\n-ram_load_loop\n")
    (tmp_path / "dst.200.trace").write_bytes(b"qemu_mutex_lock\nqemu_mutex_unlock\n")
    trace = tracetool.load(str(tmp_path))
    skipped = {Path(s.path).name: s.reason for s in trace.skipped_inputs}
    assert set(skipped) == {"events-mutex.txt", "events-glob.txt"}, skipped
    assert all("-trace events= list" in why for why in skipped.values())
    read = {Path(p).name for p in trace.inputs["path"]}
    assert read == {"dst.100.trace", "dst.200.trace"}
    assert len(trace.events) == len([ln for ln in lines if ln.strip()]) + 2
