"""Turning the paths a user gives into input files: globs, directories, per-thread file groups.

QEMU's ``-d tid -D trace.%d`` writes one log file per thread, named by its TID. Files that share
such a name template (``dst.22337.trace``, ``dst.22351.trace.gz``) are read as one process, each
file's TID applying to its lines that carry none of their own.
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
_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{1,10})(?![0-9A-Za-z])")


@dataclass(frozen=True)
class InputFile:
    """One file to read and what its name and neighbours say about it."""

    path: str
    default_tid: int = -1  # TID from a per-thread file name; -1 when none applies
    process_hint: str | None = None  # same value for the files of one process
    from_directory: bool = False  # found by listing a directory: skip it if it is no trace


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


def _looks_like_trace(name: str) -> bool:
    base = strip_compression(name)
    return not base.endswith(_NOT_TRACES) and not name.startswith(".")


def expand_paths(paths: Sequence[str]) -> list[InputFile]:
    """Expands globs and directories and groups per-thread files.

    A directory contributes the regular files in it that are not metadata (JSON, Markdown...).
    Files sharing a name template with a number (two or more of them) are one per-thread group.
    """
    files: list[str] = []
    listed: set[str] = set()
    for p in paths:
        if p == "-":
            files.append(p)
        elif os.path.isdir(p):
            entries = sorted(
                os.path.join(p, e) for e in os.listdir(p) if os.path.isfile(os.path.join(p, e))
            )
            found = [e for e in entries if _looks_like_trace(os.path.basename(e))]
            if not found:
                raise InputError(f"{p}: directory holds no trace files")
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
            out.append(InputFile(f, default_tid=t[1], process_hint=t[0], from_directory=f in listed))
        else:
            out.append(InputFile(f, from_directory=f in listed))
    return out
