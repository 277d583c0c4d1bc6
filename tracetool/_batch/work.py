"""One unit of batch work: a run's metrics, or the error that stopped it, never an exception.

:func:`measure_one` runs in a worker process (a local process pool or a Dask worker); it and
what it returns must be importable and picklable there. The warnings loading raised about side
files that do not match the trace come back with the result so the caller can show them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from tracetool._check.runmetrics import COLUMNS, run_metrics
from tracetool._model.runfolder import runs_in
from tracetool.errors import ForeignInputWarning

ERROR_COLUMN = "error"
BATCH_COLUMNS = (*COLUMNS, ERROR_COLUMN)
MAX_ERROR = 500


@dataclass
class RunResult:
    """What one run gave: its rows (empty on failure), the error, and the loading warnings."""

    source: str
    frame: pd.DataFrame
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the run was measured."""
        return self.error is None


def error_text(exc: BaseException) -> str:
    """An exception as one line: ``InputError: dst.trace: not a trace``."""
    text = " ".join(str(exc).split()) or "(no message)"
    if len(text) > MAX_ERROR:
        text = text[: MAX_ERROR - 1] + "…"
    return f"{type(exc).__name__}: {text}"


def error_frame(source: str, error: str) -> pd.DataFrame:
    """The one row a failed run leaves in the batch table."""
    row: dict[str, list[str | None]] = {c: [None] for c in BATCH_COLUMNS}
    row["source"], row[ERROR_COLUMN] = [source], [error]
    return with_batch_dtypes(pd.DataFrame(row, columns=list(BATCH_COLUMNS)))


def with_batch_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """The batch table's columns and dtypes (strings, ``start_ns`` Int64, ``value`` float)."""
    out = frame.reindex(columns=list(BATCH_COLUMNS))
    for c in BATCH_COLUMNS:
        if c == "start_ns":
            out[c] = out[c].astype("Int64")
        elif c == "value":
            out[c] = out[c].astype("float64")
        else:
            out[c] = out[c].astype("string")
    return out


def measure_one(paths: Sequence[str], labels: Mapping[str, str] | None = None) -> RunResult:
    """The metrics of one run (``paths``: a run folder, or trace files that are one run)."""
    source = ", ".join(paths)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ForeignInputWarning)
        try:
            missing = [p for p in paths if not os.path.exists(p)]
            if missing:
                raise FileNotFoundError(f"{missing[0]}: no such file or directory")
            frame = run_metrics(list(paths), labels=labels)
            result = RunResult(source, with_batch_dtypes(frame))
        except Exception as exc:  # one bad run is a row with its error, never the end of the batch
            result = RunResult(source, error_frame(source, error_text(exc)), error_text(exc))
    result.warnings = [str(w.message) for w in caught if issubclass(w.category, ForeignInputWarning)]
    return result


def expand_runs(paths: Sequence[str]) -> list[tuple[str, ...]]:
    """The runs the arguments stand for: a run folder is one run, a folder of ``run-K``
    folders each of them, anything else (a trace file, a missing path) a run of its own."""
    runs: list[tuple[str, ...]] = []
    for p in paths:
        folders = runs_in(p)
        runs.extend([(f.path,) for f in folders] if folders else [(p,)])
    return runs
