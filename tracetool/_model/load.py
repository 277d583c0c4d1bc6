"""``tracetool.load``: from paths to a Trace."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from parsers.reading import ReadResult, read_inputs
from parsers.registry import Progress, ReadContext
from tracetool._events.catalog import Catalog
from tracetool._model.assemble import assemble
from tracetool._model.querymigrate import load_query_migrate
from tracetool._model.runfolder import Run, resolve_paths
from tracetool._model.sidecar import ThreadMap, checked_thread_map, load_thread_map
from tracetool._model.threads import build_thread_table
from tracetool._model.trace import Trace
from tracetool.errors import EmptyTrace, ForeignInput, ForeignInputWarning, InputError


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
    if not paths:
        raise InputError("no input given")
    with _stdin_spooled(paths) as (real_paths, spooled):
        try:
            result = read_inputs(real_paths, _context(catalog, engine, progress), input_format)
        except InputError as exc:
            if spooled and spooled in str(exc):  # name stdin as the user did, not its copy
                raise type(exc)(str(exc).replace(spooled, "-")) from None
            raise
        for seg in result.segments:
            if spooled and seg.path == spooled:
                seg.path = "-"
            seg.path = printable_path(seg.path)
            seg.process_hint = seg.process_hint and printable_path(seg.process_hint)
            seg.warnings = [replace(w, path=printable_path(w.path)) for w in seg.warnings]
        result.skipped = [replace(f, path=printable_path(f.path)) for f in result.skipped]
    return result


def printable_path(path: str) -> str:
    """A file name as text that every output can hold: the bytes of a name that is not UTF-8
    (which Python keeps as lone surrogates) are shown as ``\\xff``. The trace keeps this form;
    the files were opened by their real name."""
    if path.isascii():
        return path
    return os.fsencode(path).decode("utf-8", "backslashreplace")


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
    force: bool = False,
) -> Trace:
    """Loads QEMU trace files into a :class:`Trace`.

    ``paths``: files, globs, directories (per-thread ``-d tid`` files are grouped), run folders
    (``tracetool._model.runfolder``: their traces, with the thread sidecars they hold unless
    ``threads`` is given; a sidecar of a side that was not traced is left out) or "-".
    ``threads``: thread-name sidecar JSON files (or ThreadMap objects).
    ``events``: trace-events / trace-events-all files overriding the built-in event catalog.
    ``input_format``: force a backend instead of detecting it per file.
    ``progress``: receives reading progress (``parsers.registry.Progress``).
    ``borrow_from``: log-backend files of the same run (QEMU built with ``log,simple``); thread ids
    and the wall clock are borrowed from them by matching the event sequence (``tracetool._model.borrow``).

    A sidecar or borrow twin that does not belong to the trace (``tracetool._model.fit``:
    another run, the other side) raises :class:`~tracetool.errors.ForeignInput`; with
    ``force=True`` it is used and a :class:`~tracetool.errors.ForeignInputWarning` says why.
    Raises InputError (unreadable input, unknown format, no events) or UsageError.
    """
    resolved = resolve_paths([paths] if isinstance(paths, str) else list(paths))
    cat = catalog or Catalog.builtin()
    if events:
        cat = cat.with_files(list(events))
    given = [checked_thread_map(t) if isinstance(t, ThreadMap) else load_thread_map(t) for t in threads]
    found = [] if given else [load_thread_map(t) for t in resolved.threads]
    maps = given + found
    trace = _read(resolved.paths, maps, cat, input_format, engine, progress)
    if borrow_from:
        from tracetool._model.borrow import borrow
        from tracetool._model.fit import borrow_misfit

        # The twin is read as it is; the sidecars are checked on the borrowed trace below.
        twin = _read(resolve_paths(list(borrow_from)).paths, maps, cat, None, engine, None)
        result = borrow(trace, twin)
        names = ", ".join(borrow_from)
        for match in result.processes:
            _refuse_or_warn(f"--borrow-from {names}", borrow_misfit(match), force)
        result.trace.skipped_inputs = trace.skipped_inputs
        trace = result.trace
    if maps:
        _check_sidecars(trace, given, found, force)
    return trace


def _read(
    paths: Sequence[str],
    maps: list[ThreadMap],
    cat: Catalog,
    input_format: str | None,
    engine: str | None,
    progress: Progress | None,
) -> Trace:
    result = read_segments(paths, catalog=cat, input_format=input_format, engine=engine, progress=progress)
    segments = result.segments
    if not any(s.events for s in segments):
        detail = "; ".join(f"{s.path}: {s.lines} lines, {s.other_lines} not trace lines" for s in segments)
        raise EmptyTrace(f"no trace events in the input ({detail})")
    columns = assemble(segments)
    trace = Trace(columns, build_thread_table(columns, maps), cat)
    trace.skipped_inputs = list(result.skipped)
    return trace


def _check_sidecars(trace: Trace, given: list[ThreadMap], found: list[ThreadMap], force: bool) -> None:
    from tracetool._model.fit import process_views, sidecar_misfit, sidecar_side_untraced

    views = process_views(trace)
    for m in given:
        _refuse_or_warn(m.path, sidecar_misfit(trace, m, views), force)
    for m in found:
        why = sidecar_misfit(trace, m, views)
        if why is not None and sidecar_side_untraced(trace, m, views):
            continue  # the run folder's sidecar of the side that was not traced
        _refuse_or_warn(m.path, why, force)


def _refuse_or_warn(what: str, why: str | None, force: bool) -> None:
    if why is None:
        return
    if force:
        warnings.warn(
            f"{what} does not match the trace, used anyway (--force): {why}", ForeignInputWarning, 2
        )
        return
    raise ForeignInput(f"{what} does not belong to this trace: {why} (--force uses it anyway)")


def load_run(
    paths: str | Sequence[str],
    *,
    threads: Sequence[str] = (),
    query_migrate: str | None = None,
    events: Sequence[str] = (),
    input_format: str | None = None,
    borrow_from: Sequence[str] = (),
    force: bool = False,
    progress: Progress | None = None,
) -> Run:
    """Loads one run: a run folder (its sidecars and query-migrate.json picked up) or trace
    paths, as :func:`load` reads them, with QEMU's query-migrate answer. ``threads`` /
    ``query_migrate`` given explicitly replace what the folder holds."""
    given = [paths] if isinstance(paths, str) else list(paths)
    resolved = resolve_paths(given)
    trace = load(
        given,
        threads=list(threads),
        events=list(events),
        input_format=input_format,
        borrow_from=list(borrow_from),
        force=force,
        progress=progress,
    )
    qm_path = query_migrate or resolved.query_migrate
    qm = load_query_migrate(qm_path) if qm_path else None
    folder = resolved.folders[0] if len(resolved.folders) == 1 and len(given) == 1 else None
    return Run(trace, qm, tuple(given), folder)
