"""Turning the paths a user gives into input files: globs, directories, per-thread file groups.

QEMU's ``-d tid -D trace.%d`` writes one log file per thread, named by its TID. Files that share
such a name template (``dst.22337.trace``, ``dst.22351.trace.gz``) are read as one process, each
file's TID applying to its lines that carry none of their own.

Listing a directory names every entry it does not read with the reason (``SkippedFile``): side
files of a recorded run (``cmdline.txt``, ``events.txt``, ``qemu-version.txt``, ``RECORDING.md``,
``README*``, ``*.json``, ``*.jsonl``...), hidden files and sub-directories.
"""

from __future__ import annotations

import glob
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from parsers.io import InputError

_COMPRESSED_SUFFIXES = (".gz", ".xz", ".zst", ".zstd", ".bz2")
_NOT_TRACES = (".json", ".jsonl", ".md", ".py", ".toml", ".png", ".svg", ".html", ".xml", ".pdf")
SIDE_FILES = ("cmdline.txt", "events.txt", "qemu-version.txt", "RECORDING.md")
"""Files a recorded run keeps next to its traces (see sample_traces/README.md)."""
_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{1,10})(?![0-9A-Za-z])")
TID_MAX = 2**31 - 1


@dataclass(frozen=True)
class InputFile:
    """One file to read and what its name and neighbours say about it."""

    path: str
    default_tid: int = -1  # TID from a per-thread file name; -1 when none applies
    process_hint: str | None = None  # same value for the files of one process
    from_directory: bool = False  # found by listing a directory: skip it if it is no trace
    note: str | None = None  # something about the name the reader should warn about


@dataclass(frozen=True)
class SkippedFile:
    """A file of an input directory that is not read, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def strip_compression(name: str) -> str:
    """``dst.123.trace.gz`` -> ``dst.123.trace``."""
    for suffix in _COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _template(path: str) -> tuple[str, int] | None:
    """The per-thread name template of a path (its last number replaced) and that number."""
    base = strip_compression(os.path.basename(path))
    matches = list(_NUMBER.finditer(base))
    if not matches:
        return None
    m = matches[-1]
    return os.path.join(os.path.dirname(path), base[: m.start()] + "%d" + base[m.end() :]), int(m.group(1))


def side_file_reason(name: str) -> str | None:
    """Why a directory entry called ``name`` is not read, judged by its name alone; None when
    it may be a trace."""
    base = strip_compression(name)
    if name.startswith("."):
        return "hidden file"
    if name in SIDE_FILES or name.startswith("README") or base.endswith((".json", ".jsonl")):
        return "side file of a recorded run, not a trace"
    if base.endswith(_NOT_TRACES):
        return f"not a trace by its name ({os.path.splitext(base)[1]})"
    return None


def _list_directory(p: str, skipped: list[SkippedFile]) -> list[str]:
    """The entries of directory ``p`` that may be traces; the others go to ``skipped``."""
    try:
        names = sorted(os.listdir(p))
    except OSError as exc:
        raise InputError(f"{p}: cannot list directory: {exc.strerror or exc}") from None
    found = []
    for e in names:
        full = os.path.join(p, e)
        if os.path.isdir(full):
            skipped.append(SkippedFile(full, "a directory (not read; give it as an input of its own)"))
        elif not os.path.isfile(full):
            skipped.append(SkippedFile(full, "not a regular file"))
        elif (why := side_file_reason(e)) is not None:
            skipped.append(SkippedFile(full, why))
        else:
            found.append(full)
    return found


def expand_paths(paths: Sequence[str]) -> list[InputFile]:
    """Expands globs and directories and groups per-thread files (``list_inputs`` without the
    entries it skipped)."""
    return list_inputs(paths)[0]


def list_inputs(paths: Sequence[str]) -> tuple[list[InputFile], list[SkippedFile]]:
    """Expands globs and directories and groups per-thread files.

    A directory contributes the regular files in it that are not side files (JSON, Markdown,
    a run's command lines...); every entry it does not contribute is returned with the reason.
    Files sharing a name template with a number (two or more of them) are one per-thread group.
    """
    files: list[str] = []
    listed: set[str] = set()
    skipped: list[SkippedFile] = []
    for p in paths:
        if p == "-":
            files.append(p)
        elif os.path.isdir(p):
            found = _list_directory(p, skipped)
            files.extend(found)
            listed.update(found)
        elif any(ch in p for ch in "*?[") and not os.path.exists(p):
            hits = sorted(glob.glob(p))
            if not hits:
                raise InputError(f"{p}: no file matches this pattern")
            files.extend(h for h in hits if os.path.isfile(h))
        else:
            if not os.path.exists(p):
                raise InputError(f"{p}: no such file")
            files.append(p)
    seen: set[str] = set()
    unique = [f for f in files if not (f in seen or seen.add(f))]  # type: ignore[func-returns-value]
    groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for f in unique:
        t = _template(f) if f != "-" else None
        if t:
            groups[t[0]].append((f, t[1]))
    out = []
    for f in unique:
        t = _template(f) if f != "-" else None
        if t and len(groups[t[0]]) >= 2:
            tid, note = t[1], None
            if tid > TID_MAX:
                tid, note = (
                    -1,
                    (
                        f"the number {t[1]} in the file name is no thread id (beyond "
                        f"{TID_MAX}); lines without a thread id of their own keep it "
                        "unknown"
                    ),
                )
            out.append(
                InputFile(f, default_tid=tid, process_hint=t[0], from_directory=f in listed, note=note)
            )
        else:
            out.append(InputFile(f, from_directory=f in listed))
    return out, skipped
