"""Tables of a trace as files: parquet (pyarrow) or CSV, for pandas, DuckDB, spreadsheets.

``export_tables(trace, out, "parquet")`` writes ``events``, ``spans``, ``instants``,
``threads`` and ``processes`` (and ``bql_holds``/``bql_waits`` when the trace has mutex
events), one file per table. ``out`` is a directory (an existing one, or a path ending in
``/``), giving ``DIR/events.parquet``, or a prefix: ``runs/a`` gives ``runs/a-events.parquet``.
Every file is written to a temporary name in its directory first and renamed into place, so
a reader never sees half a file.

    >>> export_tables(tracetool.load("dst.trace"), "out/", "csv")
    [PosixPath('out/events.csv'), PosixPath('out/spans.csv'), ...]
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tracetool._model.trace import Trace
from tracetool.errors import UsageError

FORMATS = ("parquet", "csv")
TABLES = ("events", "spans", "instants", "threads", "processes")
BQL_TABLES = ("bql_holds", "bql_waits")


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path next to ``path``; renamed onto ``path`` when the block succeeds.

    The temporary file lives in the same directory so that the final ``os.replace`` is a
    rename on one file system; on error it is removed and ``path`` is left untouched.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a plain open() would honour the umask
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Calls ``write(tmp_path)`` and moves the result onto ``path`` (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def output_paths(out: str | os.PathLike[str], names: tuple[str, ...] | list[str],
                 suffix: str) -> dict[str, Path]:
    """Where each table goes: ``DIR/name.suffix`` for a directory, ``PREFIX-name.suffix`` else."""
    text = os.fspath(out)
    base = Path(text)
    if text.endswith(("/", os.sep)) or base.is_dir():
        return {n: base / f"{n}.{suffix}" for n in names}
    return {n: base.parent / f"{base.name}-{n}.{suffix}" for n in names}


def tables(trace: Trace, with_bql: bool | None = None, bql: Any = None) -> dict[str, pd.DataFrame]:
    """The tables :func:`export_tables` writes, by name.

    ``with_bql``: add the BQL holds and waits of every process (None: when the trace has
    ``qemu_mutex_*`` events). ``bql``: a BqlReport of this trace already computed.
    """
    from tracetool._timeline.timeline import build_timeline

    tl = build_timeline(trace)
    out = {
        "events": trace.events,
        "spans": tl.spans,
        "instants": tl.instants,
        "threads": trace.threads,
        "processes": trace.processes,
    }
    if with_bql is None:
        with_bql = trace.code_of("qemu_mutex_unlock") is not None
    if with_bql:
        from tracetool._analyses.bql.bql import analyze_bql

        report = bql if bql is not None else analyze_bql(trace)
        procs = [p for p in report.processes.values() if p.mutex is not None]
        out["bql_holds"] = _concat([p.holds for p in procs])
        out["bql_waits"] = _concat([p.waits for p in procs])
    return out


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame()
    if len(frames) == 1:
        return frames[0]
    # Categoricals with different categories per process: plain values concatenate cleanly.
    plain = [f.astype({c: object for c in f.columns if isinstance(f[c].dtype, pd.CategoricalDtype)})
             for f in frames]
    return pd.concat(plain, ignore_index=True)


def export_tables(trace: Trace, out: str | os.PathLike[str], fmt: str = "parquet",
                  with_bql: bool | None = None, bql: Any = None) -> list[Path]:
    """Writes the trace's tables (see module docstring); returns the paths written.

    ``with_bql`` and ``bql`` as for :func:`tables`.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown table format {fmt!r} ({', '.join(FORMATS)})")
    frames = tables(trace, with_bql, bql)
    paths = output_paths(out, list(frames), fmt)
    writer = _write_parquet if fmt == "parquet" else _write_csv
    written = []
    for name, frame in frames.items():
        path = paths[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        written.append(write_atomic(path, partial(writer, frame)))
    return written


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, compression="zstd")


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # The CSV writer takes plain columns: dictionary (categorical) columns become their values.
    plain = [pc.cast(c, c.type.value_type) if pa.types.is_dictionary(c.type) else c
             for c in table.columns]
    pacsv.write_csv(pa.table(plain, names=table.column_names), path)
