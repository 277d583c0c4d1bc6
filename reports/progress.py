"""A reading progress bar for big traces: bytes and lines per second, on a terminal only."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import IO, TYPE_CHECKING, Self

if TYPE_CHECKING:
    from rich.progress import ProgressColumn, TaskID

# rich.progress is imported by the bars themselves: most runs ask wants_progress() and show none.

PROGRESS_MIN_BYTES = 50 << 20
"""Inputs smaller than this (together) load fast enough to need no bar."""


class StderrBar:
    """A transient rich progress bar on ``stream`` (stderr by default) with these columns, shown
    between ``with`` and its end; the progress bars of migtrace's commands are made of it."""

    def __init__(self, columns: Sequence[ProgressColumn], stream: IO[str] | None = None) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self._console = Console(file=stream or sys.stderr)
        self._bar = Progress(*columns, console=self._console, transient=True)

    def __enter__(self) -> Self:
        self._bar.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.stop()


class ReadProgress(StderrBar):
    """Shows one bar per input file on stderr; implements ``parsers.registry.Progress``."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
        )
        super().__init__(columns, stream)
        self._task: TaskID | None = None
        self._t0 = 0.0

    def start(self, path: str, total_bytes: int | None) -> None:
        """A new file begins."""
        if self._task is not None:
            self._bar.update(self._task, visible=False)
        name = os.path.basename(path) if path != "-" else "<stdin>"
        self._task = self._bar.add_task(f"reading {name}", total=total_bytes, rate="")
        self._t0 = time.monotonic()

    def advance(self, done_bytes: int, lines: int) -> None:
        """How far the current file has been read."""
        if self._task is None:
            return
        elapsed = max(time.monotonic() - self._t0, 1e-6)
        self._bar.update(self._task, completed=done_bytes, rate=f"{lines / elapsed / 1e6:.2f} M lines/s")


def wants_progress(paths: Sequence[str], stream: IO[str] | None = None) -> bool:
    """True on a terminal (not in CI or a pipe) when the inputs are big enough to wait for."""
    out = stream or sys.stderr
    if not (hasattr(out, "isatty") and out.isatty()) or os.environ.get("CI"):
        return False
    total = 0
    for p in paths:
        try:
            if os.path.isdir(p):
                total += sum(e.stat().st_size for e in os.scandir(p) if e.is_file())
            elif os.path.exists(p):
                total += os.path.getsize(p)
        except OSError:
            continue
    return total >= PROGRESS_MIN_BYTES


class RunsProgress(StderrBar):
    """One transient line on stderr while the runs of a comparison load (terminal only):
    ``run 2/3 of before: qemu-7.2/run-2``; called as ``tracetool._check.repeats.RunProgress``."""

    def __init__(self, total: int, stream: IO[str] | None = None) -> None:
        from rich.progress import BarColumn, TextColumn

        super().__init__((TextColumn("{task.description}"), BarColumn()), stream)
        self._task = self._bar.add_task("loading runs", total=total)
        self._done = 0

    def __call__(self, side: str, index: int, count: int, name: str) -> None:
        shown = name if len(name) <= 60 else "…" + name[-59:]
        self._bar.update(
            self._task, completed=self._done, description=f"run {index}/{count} of {side}: {shown}"
        )
        self._done += 1


def wants_runs_progress(stream: IO[str] | None = None) -> bool:
    """True on a terminal that is not CI's."""
    out = stream or sys.stderr
    return bool(hasattr(out, "isatty") and out.isatty()) and not os.environ.get("CI")
