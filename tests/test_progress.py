"""Reading progress: reported per block for big inputs, shown only on a terminal."""

from __future__ import annotations

import io
import lzma
from pathlib import Path

import pytest

import tracetool
from reports.progress import PROGRESS_MIN_BYTES, ReadProgress, wants_progress
from tests.conftest import sample


class _Recorder:
    def __init__(self) -> None:
        self.starts: list[tuple[str, int | None]] = []
        self.calls: list[tuple[int, int]] = []

    def start(self, path: str, total_bytes: int | None) -> None:
        self.starts.append((path, total_bytes))

    def advance(self, done_bytes: int, lines: int) -> None:
        self.calls.append((done_bytes, lines))


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def big_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with lzma.open(sample("qemu-7.2", "e-precopy-mutex", "dst.trace.xz")) as f:
        raw = f.read()
    p = tmp_path_factory.mktemp("big") / "dst.trace"
    p.write_bytes(raw * 3)  # ~66 MB: several read blocks
    return p


def test_progress_is_reported_per_block(big_trace: Path) -> None:
    rec = _Recorder()
    trace = tracetool.load(str(big_trace), progress=rec)
    assert rec.starts == [(str(big_trace), big_trace.stat().st_size)]
    done = [d for d, _ in rec.calls]
    lines = [n for _, n in rec.calls]
    assert len(rec.calls) >= 5
    assert done == sorted(done) and lines == sorted(lines)
    assert done[-1] <= big_trace.stat().st_size
    assert lines[-1] <= len(trace)


def test_bar_draws_on_a_terminal(big_trace: Path) -> None:
    out = _Tty()
    with ReadProgress(out) as bar:
        tracetool.load(str(big_trace), progress=bar)
    assert "reading dst.trace" in out.getvalue()


def test_no_bar_in_pipes_ci_or_for_small_inputs(big_trace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert big_trace.stat().st_size >= PROGRESS_MIN_BYTES
    assert wants_progress([str(big_trace)], _Tty())
    assert not wants_progress([str(big_trace)], io.StringIO())  # piped
    assert not wants_progress([sample("qemu-7.2", "a-precopy-plain", "src.trace.xz")], _Tty())
    monkeypatch.setenv("CI", "true")
    assert not wants_progress([str(big_trace)], _Tty())


def test_runs_of_a_comparison_are_announced_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compare_runs calls the progress once per run, in order; the line shows on a terminal."""
    from reports.progress import RunsProgress, wants_runs_progress
    from tracetool._check.repeats import compare_runs

    runs = []
    for side in ("a", "b"):
        for k in (1, 2):
            run = tmp_path / side / f"run-{k}"
            run.mkdir(parents=True)
            (run / "dst.trace.xz").write_bytes(
                Path(sample("qemu-7.2", "c-postcopy", "dst.trace.xz")).read_bytes()
            )
            runs.append(str(run))
    seen: list[tuple[str, int, int, str]] = []
    out = _Tty()
    with RunsProgress(4, out) as bar:

        def record(side: str, index: int, count: int, name: str) -> None:
            seen.append((side, index, count, name))
            bar(side, index, count, name)

        compare_runs([str(tmp_path / "a")], [str(tmp_path / "b")], metrics=["ram.pages"], progress=record)
    assert seen == [
        ("before", 1, 2, runs[0]),
        ("before", 2, 2, runs[1]),
        ("after", 1, 2, runs[2]),
        ("after", 2, 2, runs[3]),
    ]
    assert "run 2/2 of after" in out.getvalue()
    monkeypatch.delenv("CI", raising=False)
    assert wants_runs_progress(out) and not wants_runs_progress(io.StringIO())
    monkeypatch.setenv("CI", "true")
    assert not wants_runs_progress(out)
