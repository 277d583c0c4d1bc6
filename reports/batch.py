"""``migtrace batch`` output: the table as a Parquet or CSV file (written atomically), a progress
bar on a terminal, and the closing summary."""

from __future__ import annotations

import os
from typing import IO

import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from reports.atomic import atomic_path, atomic_writer
from reports.progress import StderrBar
from tracetool._batch.schedulers import BatchResult
from tracetool.errors import UsageError

TABLE_SUFFIXES = (".parquet", ".csv")
MAX_FAILED_SHOWN = 20


def table_format(path: str) -> str:
    """``parquet`` or ``csv`` from the file's suffix; UsageError for another."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in TABLE_SUFFIXES:
        raise UsageError(f"{path}: the output is a .parquet or .csv file")
    return suffix[1:]


def write_table(table: pd.DataFrame, path: str) -> int:
    """Writes the batch table to ``path`` (.parquet or .csv) atomically; returns the rows."""
    fmt = table_format(path)
    if fmt == "parquet":
        with atomic_path(path) as tmp:
            table.to_parquet(tmp, index=False)
    else:
        with atomic_writer(path) as f:
            table.to_csv(f, index=False)
    return len(table)


class BatchBar(StderrBar):
    """A transient progress bar on stderr (``runs done/all``, the last run finished); called
    as ``tracetool._batch.schedulers.BatchProgress``."""

    def __init__(self, total: int, stream: IO[str] | None = None) -> None:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        super().__init__(columns, stream)
        self._task = self._bar.add_task("measuring runs", total=total)

    def __call__(self, done: int, total: int, source: str) -> None:
        shown = source if len(source) <= 40 else "…" + source[-39:]
        self._bar.update(self._task, completed=done, total=total, description=f"measured {shown}")


def summary_lines(result: BatchResult, out: str, rows: int) -> list[str]:
    """The closing lines: how many runs, how many failed (each with its error), where."""
    failed = result.failed
    lines = [
        f"{len(result.results)} runs on {result.scheduler} with {result.workers} worker"
        f"{'s' if result.workers != 1 else ''} in {result.seconds:.1f} s: {result.measured} measured, "
        f"{len(failed)} failed",
        f"{rows} rows -> {out}",
    ]
    for r in failed[:MAX_FAILED_SHOWN]:
        lines.append(f"  failed: {r.source}: {r.error}")
    if len(failed) > MAX_FAILED_SHOWN:
        lines.append(f"  ... and {len(failed) - MAX_FAILED_SHOWN} more (rows with an error in {out})")
    return lines
