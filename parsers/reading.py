"""From the paths a user gives to Segments: listing, detecting each file's backend, reading.

Every file found by listing a directory is either read or named with the reason it was not
(``ReadResult.skipped``), so nothing is dropped without a word:

- side files of a recorded run by their name (``cmdline.txt``, ``events.txt``, ``*.json``,
  ``RECORDING.md``...), hidden files, sub-directories;
- empty files;
- ``-trace events=`` lists (event names and patterns, one a line, with comments);
- compressed files of which nothing could be decoded;
- files in which no backend finds a trace line in the first 64 KiB (decompressed).

A file given by name (or matched by a glob) is read or fails the whole load with InputError.
Detection scores what it could decode of a damaged compressed file, and a few garbage lines or
bytes at the start of a file only lower its score.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from parsers.inputs import InputFile, SkippedFile, list_inputs
from parsers.io import InputError, peek_partial
from parsers.registry import SNIFF_BYTES, Backend, ReadContext, UnknownFormat, best_backend, detect, get
from parsers.segment import ParseWarning, Segment

__all__ = ["ReadResult", "SkippedFile", "read_inputs"]


@dataclass
class ReadResult:
    """The Segments read (one per file, in the order given) and the files not read."""

    segments: list[Segment]
    skipped: list[SkippedFile] = field(default_factory=list)


_EVENT_PATTERN = re.compile(rb"-?[A-Za-z0-9_*?\[\]]+")


def is_events_list(head: bytes) -> bool:
    """Whether ``head`` is a ``-trace events=FILE`` list: event names or glob patterns one a line
    (a leading ``-`` disables), with ``#`` comments. A trace's bare lines carry arguments and no
    comments; a list must show a comment or a pattern to be taken for one, since a log without
    timestamps of argument-less events alone would look the same."""
    lines = [ln.strip() for ln in head.split(b"\n")[:-1] or head.split(b"\n")]
    lines = [ln for ln in lines if ln]
    names = [ln for ln in lines if not ln.startswith(b"#")]
    if not names or not all(_EVENT_PATTERN.fullmatch(ln) for ln in names):
        return False
    return len(names) < len(lines) or any(ln.startswith(b"-") or b"*" in ln or b"?" in ln for ln in names)


def _detect_listed(f: InputFile) -> Backend | SkippedFile:
    """The backend of a file found in a directory, or why it is not read."""
    try:
        if os.path.getsize(f.path) == 0:
            return SkippedFile(f.path, "empty file")
        head, error = peek_partial(f.path, SNIFF_BYTES)
    except InputError as exc:
        return SkippedFile(f.path, str(exc).removeprefix(f.path + ": "))
    except OSError as exc:
        return SkippedFile(f.path, f"cannot read: {exc.strerror or exc}")
    if not head:
        return SkippedFile(f.path, error or "empty file")
    if is_events_list(head):
        return SkippedFile(f.path, "a -trace events= list (event names), not a trace")
    best = best_backend(head)
    if best is None:
        what = "decodable part" if error else "first 64 KiB"
        return SkippedFile(f.path, f"not a trace (no trace lines in the {what})")
    return best


def _detect(f: InputFile, input_format: str | None) -> Backend | SkippedFile:
    if input_format:
        return get(input_format)
    if f.from_directory:
        return _detect_listed(f)
    return detect(f.path)


TWIN_PREFERENCE = {"ftrace": 0, "trace-cmd": 0, "lttng": 0, "log": 1, "stap": 2, "simple": 3}
"""Which of a run's traces in several backends a directory listing reads: the one that says the
most (thread ids and names first, then the log's text, then the simple backend's records)."""


def _side_of(path: str) -> str | None:
    """``dst``/``src`` for a file named for one side (``dst.trace``, ``src.1234.trace``), None
    for a file that may hold both (``ftrace.txt``, ``lttng-babeltrace2.txt``)."""
    first = os.path.basename(path).split(".", 1)[0]
    return first if first in ("dst", "src") else None


def _twins(found: list[tuple[int, InputFile, Backend]]) -> dict[int, SkippedFile]:
    """Files of one directory that hold the same run as another of its files in another
    backend (QEMU built with ``log,simple`` writes both): each side is read once, from the
    preferred backend; the others are named, not read."""
    out: dict[int, SkippedFile] = {}
    by_dir: dict[str, list[tuple[int, InputFile, Backend]]] = {}
    for item in found:
        if item[1].from_directory:
            by_dir.setdefault(os.path.dirname(item[1].path), []).append(item)
    for items in by_dir.values():
        if len({b.name for _, _, b in items}) < 2:
            continue
        for side in ("dst", "src"):
            cover = [it for it in items if _side_of(it[1].path) in (side, None)]
            if len({b.name for _, _, b in cover}) < 2:
                continue
            best = min(TWIN_PREFERENCE.get(b.name, 9) for _, _, b in cover)
            kept = next(f for _, f, b in cover if TWIN_PREFERENCE.get(b.name, 9) == best)
            for i, f, b in cover:
                if TWIN_PREFERENCE.get(b.name, 9) != best and _side_of(f.path) == side:
                    out[i] = SkippedFile(
                        f.path,
                        f"the same run's {side} trace as {os.path.basename(kept.path)}, in the "
                        f"{b.name} backend (name the file to read it, or use --borrow-from)",
                    )
    return out


def read_inputs(paths: Sequence[str], ctx: ReadContext, input_format: str | None = None) -> ReadResult:
    """Reads every input with its backend (``input_format`` forces one).

    Raises InputError when a named file cannot be read or recognised, or when nothing at all
    is left to read (the message then lists why each file was skipped).
    """
    if not paths:
        raise InputError("no input given")
    files, skipped = list_inputs(paths)
    detected: list[tuple[int, InputFile, Backend]] = []
    for i, f in enumerate(files):
        found = _detect(f, input_format)
        if isinstance(found, SkippedFile):
            skipped.append(found)
        else:
            detected.append((i, f, found))
    twins = _twins(detected)
    skipped.extend(twins.values())
    by_backend: dict[str, list[tuple[int, InputFile]]] = {}
    for i, f, backend in detected:
        if i not in twins:
            by_backend.setdefault(backend.name, []).append((i, f))
    if not by_backend:
        why = "; ".join(f"{os.path.basename(s.path)}: {s.reason}" for s in skipped[:8])
        more = f" (and {len(skipped) - 8} more)" if len(skipped) > 8 else ""
        raise UnknownFormat(f"no trace files among: {', '.join(paths)}" + (f" ({why}{more})" if why else ""))
    slots: list[Segment | None] = [None] * len(files)
    for name, items in by_backend.items():
        segs = get(name).read([f for _, f in items], ctx)
        for (i, f), seg in zip(items, segs, strict=True):
            if f.note:
                seg.warnings.insert(0, ParseWarning(seg.path, 1, f.note))
            slots[i] = seg
    return ReadResult([s for s in slots if s is not None], skipped)
