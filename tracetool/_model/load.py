"""``tracetool.load``: from paths to a Trace."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from parsers.reading import ReadResult, read_inputs
from parsers.registry import Progress, ReadContext
from tracetool._events.catalog import Catalog
from tracetool._model.assemble import assemble
from tracetool._model.sidecar import ThreadMap, load_thread_map
from tracetool._model.threads import build_thread_table
from tracetool._model.trace import Trace
from tracetool.errors import EmptyTrace


@contextmanager
def _stdin_spooled(paths: Sequence[str]) -> Iterator[tuple[list[str], str | None]]:
    """Copies stdin to a temporary file when "-" is among the paths (readers may seek)."""
    if "-" not in paths:
        yield list(paths), None
        return
    fd, tmp = tempfile.mkstemp(prefix="migtrace-stdin-")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        yield [tmp if p == "-" else p for p in paths], tmp
    finally:
        os.unlink(tmp)


def _context(catalog: Catalog, engine: str | None, progress: Progress | None) -> ReadContext:
    def arg_types(name: str) -> list[list[str]]:
        return [[a.ctype for a in ev.args] for ev in catalog.variants(name)]

    return ReadContext(
        is_known_event=catalog.is_known,
        arg_types=arg_types,
        engine=engine,
        progress=progress,
        options={"catalog": catalog},
    )


def read_segments(
    paths: Sequence[str],
    *,
    catalog: Catalog,
    input_format: str | None = None,
    engine: str | None = None,
    progress: Progress | None = None,
) -> ReadResult:
    """Reads every input with its backend; one Segment per file, in the order given, and the
    files of input directories that were not read, with the reason."""
    with _stdin_spooled(paths) as (real_paths, spooled):
        result = read_inputs(real_paths, _context(catalog, engine, progress), input_format)
        for seg in result.segments:
            if spooled and seg.path == spooled:
                seg.path = "-"
    return result


def load(
    paths: str | Sequence[str],
    *,
    threads: Sequence[str] | Sequence[ThreadMap] = (),
    events: Sequence[str] = (),
    input_format: str | None = None,
    engine: str | None = None,
    catalog: Catalog | None = None,
    progress: Progress | None = None,
    borrow_from: Sequence[str] = (),
) -> Trace:
    """Loads QEMU trace files into a :class:`Trace`.

    ``paths``: files, globs, directories (per-thread ``-d tid`` files are grouped) or "-".
    ``threads``: thread-name sidecar JSON files (or ThreadMap objects).
    ``events``: trace-events / trace-events-all files overriding the built-in catalog.
    ``input_format``: force a backend instead of detecting it per file.
    ``progress``: receives reading progress (``parsers.registry.Progress``).
    ``borrow_from``: log-backend files of the same run (QEMU built with ``log,simple``); thread ids
    and the wall clock are borrowed from them by matching the event sequence (``tracetool._model.borrow``).
    Raises InputError (unreadable input, unknown format, no events) or UsageError.
    """
    if isinstance(paths, str):
        paths = [paths]
    cat = catalog or Catalog.builtin()
    if events:
        cat = cat.with_files(list(events))
    maps = [t if isinstance(t, ThreadMap) else load_thread_map(t) for t in threads]
    result = read_segments(paths, catalog=cat, input_format=input_format, engine=engine,
                           progress=progress)
    segments = result.segments
    if not any(s.events for s in segments):
        detail = "; ".join(f"{s.path}: {s.lines} lines, {s.other_lines} not trace lines" for s in segments)
        raise EmptyTrace(f"no trace events in the input ({detail})")
    columns = assemble(segments)
    table = build_thread_table(columns, maps)
    trace = Trace(columns, table, cat)
    if borrow_from:
        from tracetool._model.borrow import borrow

        twin = load(list(borrow_from), threads=maps, catalog=cat, input_format=None)
        trace = borrow(trace, twin).trace
    trace.skipped_inputs = result.skipped
    return trace
