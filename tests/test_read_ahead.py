"""Reading small compressed inputs ahead (``parsers.io.read_ahead``): the reader gets exactly the
bytes the file decompresses to, from memory; anything unusual is read the usual way."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import parsers.io as pio
from parsers.io import open_input, read_ahead
from tests.conftest import run_cli, sample
from tracetool._model.load import load

SAMPLE = sample("qemu-7.2", "a-precopy-plain", "dst.trace.xz")


@pytest.fixture(scope="module")
def text() -> bytes:
    """The sample's log text, decompressed by the standard library."""
    with lzma.open(SAMPLE) as f:
        return f.read()


@pytest.fixture(scope="module")
def part(text: bytes) -> bytes:
    """Its first megabyte or so, in whole lines (quick to compress in every format)."""
    return text[: text.rfind(b"\n", 0, 1 << 20) + 1]


def _sample_copy(tmp_path: Path) -> Path:
    path = tmp_path / "dst.trace.xz"
    path.write_bytes(Path(SAMPLE).read_bytes())
    return path


def _read(path: Path | str) -> tuple[str, bytes]:
    opened = open_input(str(path))
    try:
        return opened.compression, opened.stream.read()
    finally:
        opened.stream.close()


def _memfds() -> int:
    """Open file descriptors of this process that are read-ahead buffers."""
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if "migtrace-input" in os.path.realpath(fd))


@pytest.mark.parametrize("kind", ["xz", "gzip", "bz2", "xz, two members", "gzip, two members"])
def test_the_reader_gets_the_decompressed_bytes_from_memory(tmp_path: Path, part: bytes, kind: str) -> None:
    half = part.rfind(b"\n", 0, len(part) // 2) + 1
    packers: dict[str, Callable[[bytes], bytes]] = {
        "xz": lambda b: lzma.compress(b, preset=0),
        "gzip": lambda b: gzip.compress(b, compresslevel=1),
        "bz2": lambda b: bz2.compress(b, compresslevel=1),
    }
    pack = packers[kind.split(",")[0]]
    data = pack(part[:half]) + pack(part[half:]) if "two" in kind else pack(part)
    path = tmp_path / "dst.trace.z"
    path.write_bytes(data)
    with read_ahead([str(path)]):
        compression, got = _read(path)
    assert compression == "none"  # handed out from memory, not decoded while reading
    assert got == part


def test_a_trace_read_ahead_loads_as_one_read_from_disk(tmp_path: Path) -> None:
    streamed = load(SAMPLE)
    with read_ahead([SAMPLE]):
        ahead = load(SAMPLE)
    assert ahead.event_counts() == streamed.event_counts()
    assert (ahead.ts == streamed.ts).all() and (ahead.line == streamed.line).all()
    assert ahead.input_info[0].lines == streamed.input_info[0].lines


def test_a_damaged_file_is_read_the_usual_way(tmp_path: Path) -> None:
    whole = Path(SAMPLE).read_bytes()
    path = tmp_path / "cut.trace.xz"
    path.write_bytes(whole[: len(whole) // 2])
    with read_ahead([str(path)]):
        ahead = pio._ahead[str(path)]
        ahead.done.wait()
        assert ahead.fd is None  # abandoned: the stream does not end cleanly
        trace = load(str(path))
    assert any("corrupt or truncated" in str(w) for w in trace.warnings)
    streamed = load(str(path))
    assert [str(w) for w in trace.warnings] == [str(w) for w in streamed.warnings]
    assert (trace.ts == streamed.ts).all()


def test_a_file_that_changed_meanwhile_is_read_from_disk(tmp_path: Path, part: bytes) -> None:
    path = _sample_copy(tmp_path)
    with read_ahead([str(path)]):
        pio._ahead[str(path)].done.wait()
        newer = part[: part.rfind(b"\n", 0, 1000) + 1]
        path.write_bytes(lzma.compress(newer, preset=0))
        compression, got = _read(path)
    assert (compression, got) == ("xz", newer)


@pytest.mark.parametrize("why", ["too big on disk", "too big decompressed", "a directory", "stdin"])
def test_nothing_is_read_ahead_when_it_would_not_pay(
    tmp_path: Path, text: bytes, monkeypatch: pytest.MonkeyPatch, why: str
) -> None:
    path = _sample_copy(tmp_path)
    paths = [str(path)]
    if why == "too big on disk":
        monkeypatch.setattr(pio, "READ_AHEAD_FILES", path.stat().st_size - 1)
    elif why == "too big decompressed":
        monkeypatch.setattr(pio, "READ_AHEAD_OUT", len(text) - 1)
    else:
        paths.append(str(tmp_path) if why == "a directory" else "-")
    with read_ahead(paths):
        compression, got = _read(path)
    assert (compression, got) == ("xz", text)


def test_what_no_reader_took_is_freed(tmp_path: Path) -> None:
    path = _sample_copy(tmp_path)
    before = _memfds()
    with read_ahead([str(path)]):
        pio._ahead[str(path)].done.wait()
        assert _memfds() == before + 1
    assert _memfds() == before
    assert str(path) not in pio._ahead


RUN_FOLDER = sample("qemu-7.2", "a-precopy-plain")


@pytest.mark.parametrize(
    ("given", "files"),
    [
        (SAMPLE, [SAMPLE]),
        # a run folder: its traces, listed as the load lists them
        (RUN_FOLDER, [os.path.join(RUN_FOLDER, n) for n in ("dst.trace.xz", "src.trace.xz")]),
    ],
)
def test_the_command_line_reads_ahead(monkeypatch: pytest.MonkeyPatch, given: str, files: list[str]) -> None:
    taken: list[str] = []
    take = pio._Ahead.take

    def spy(self: pio._Ahead, path: str) -> pio.Opened | None:
        opened = take(self, path)
        taken.append(path if opened is not None else "")
        return opened

    monkeypatch.setattr(pio._Ahead, "take", spy)
    r = run_cli("summary", given, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert sorted(taken) == files
