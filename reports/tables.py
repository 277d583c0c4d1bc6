"""Tables of a trace as files: parquet (pyarrow) or CSV.

``export_tables(tables, out, "parquet")`` writes each table (see
:func:`tracetool._analyses.tables.trace_tables`) to its own file. ``out`` is a directory (an
existing one, or a path ending in ``/``), giving ``DIR/events.parquet``, or a prefix:
``runs/a`` gives ``runs/a-events.parquet``. Every file is written atomically
(:mod:`reports.atomic`), so a reader never sees half a file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from reports.atomic import atomic_path
from tracetool.errors import UsageError

FORMATS = ("parquet", "csv")


def output_paths(
    out: str | os.PathLike[str], names: tuple[str, ...] | list[str], suffix: str
) -> dict[str, Path]:
    """Where each table goes: ``DIR/name.suffix`` for a directory, ``PREFIX-name.suffix`` else."""
    text = os.fspath(out)
    base = Path(text)
    if text.endswith(("/", os.sep)) or base.is_dir():
        return {n: base / f"{n}.{suffix}" for n in names}
    return {n: base.parent / f"{base.name}-{n}.{suffix}" for n in names}


def export_tables(
    tables: Mapping[str, pd.DataFrame], out: str | os.PathLike[str], fmt: str = "parquet"
) -> list[Path]:
    """Writes every table (see module docstring); returns the paths written."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown table format {fmt!r} ({', '.join(FORMATS)})")
    paths = output_paths(out, list(tables), fmt)
    writer = _write_parquet if fmt == "parquet" else _write_csv
    written = []
    for name, frame in tables.items():
        path = paths[name]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where the directory should be, no permission...
            raise UsageError(f"{path.parent}: cannot make the directory: {exc.strerror or exc}") from None
        with atomic_path(path) as tmp:
            writer(frame, tmp)
        written.append(path)
    return written


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # An open file, not the name: pyarrow reads a name as a URI and cannot take one that is
    # not UTF-8.
    with open(path, "wb") as f:
        pq.write_table(table, f, compression="zstd")


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # The CSV writer takes plain columns: dictionary (categorical) columns become their values.
    plain = [pc.cast(c, c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    with open(path, "wb") as f:
        pacsv.write_csv(pa.table(plain, names=table.column_names), f)
