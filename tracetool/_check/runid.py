"""Who a run is: an id from the content of its trace files, when it started, and its labels.

The run id is a hash of the trace files' bytes as they are stored (compressed or not): the
SHA-256 of each file, the digests sorted (so the order and the names of the files do not
matter), hashed again; the first 16 hex digits are the id. The same run given twice, from
another folder or a copy, has the same id; a run recompressed or re-recorded has another.
A trace read from stdin has no file to hash: its id hashes the events' times, thread ids and
names instead.

The start time is the first event's time in ns on the trace's own clock (``clock``: ``wall``
for UTC since the epoch; ``monotonic`` and others count from an arbitrary zero).

Labels are ``key=value`` pairs that say what a run was: ``build`` (the build's label in the
capture, else its QEMU version) and ``qemu`` (``qemu-version.txt``) from the run folder,
``outcome`` (completed, failed, ...) from the trace, and any the user gives, which win.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from parsers.segment import NO_TIME
from tracetool._model.runfolder import RunFolder
from tracetool._model.trace import Trace
from tracetool.errors import UsageError

ID_DIGITS = 16
_CHUNK = 1 << 20
LABEL_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
MAX_LABEL_VALUE = 200


@dataclass(frozen=True)
class RunIdentity:
    """A run's id, where it came from, its first event and its labels."""

    run: str
    source: str
    start_ns: int | None
    clock: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def wall_start_ns(self) -> int | None:
        """The start time when it is a wall-clock time (ns since the epoch, UTC), else None."""
        return self.start_ns if self.clock == "wall" else None


def file_digest(path: str) -> bytes:
    """The SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.digest()


def content_id(paths: Iterable[str]) -> str:
    """The run id of trace files (see the module docstring); UsageError for no file."""
    digests = sorted(file_digest(p) for p in dict.fromkeys(paths))
    if not digests:
        raise UsageError("a run id needs at least one trace file")
    return hashlib.sha256(b"".join(digests)).hexdigest()[:ID_DIGITS]


def events_id(trace: Trace) -> str:
    """The run id of a trace without files: a hash of its events' times, tids and names."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(trace.ts).tobytes())
    h.update(np.ascontiguousarray(trace.tid).tobytes())
    h.update(np.ascontiguousarray(trace.name_codes).tobytes())
    h.update("\n".join(trace.event_names).encode("utf-8"))
    return h.hexdigest()[:ID_DIGITS]


def trace_files(trace: Trace) -> list[str]:
    """The trace's input files that exist on disk (not stdin)."""
    if not len(trace.inputs):
        return []
    return [p for p in trace.inputs["path"].astype(str).tolist() if p != "-" and os.path.isfile(p)]


def run_id(trace: Trace) -> str:
    """The id of the run ``trace`` was loaded from: its files' content, or its events when it
    was read from stdin."""
    files = trace_files(trace)
    if files and len(files) == len(trace.inputs):
        return content_id(files)
    return events_id(trace)


def start_ns(trace: Trace) -> int | None:
    """The first event's time (ns, the trace's own clock), None without timestamps."""
    ts = trace.ts
    timed = ts[ts != NO_TIME] if len(ts) else ts
    return int(timed.min()) if len(timed) else None


def folder_labels(folder: RunFolder | None) -> dict[str, str]:
    """``build`` and ``qemu`` from a run folder, where it says them."""
    if folder is None:
        return {}
    out = {}
    if folder.label:
        out["build"] = folder.label
    if folder.version:
        out["qemu"] = folder.version
    return out


def parse_labels(items: Sequence[str]) -> dict[str, str]:
    """``["machine=ci-2", "branch=main"]`` as a dict; UsageError for an item without ``=`` or
    a key that is not a plain name."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"label {item!r}: write it as key=value")
        out[check_label(key.strip(), value.strip())[0]] = value.strip()
    return out


def check_label(key: str, value: str) -> tuple[str, str]:
    """A label as it may be stored; UsageError otherwise."""
    if not LABEL_KEY.fullmatch(key):
        raise UsageError(
            f"label key {key!r}: a letter or '_' then letters, digits, '_', '.' or '-' (at most 64)"
        )
    if len(value) > MAX_LABEL_VALUE or any(ord(c) < 32 for c in value):
        raise UsageError(f"label {key}: the value must be one line of at most {MAX_LABEL_VALUE} characters")
    return key, value


def merge_labels(*layers: Mapping[str, str] | None) -> dict[str, str]:
    """Labels from several layers, later ones winning, sorted by key."""
    merged: dict[str, str] = {}
    for layer in layers:
        merged.update(layer or {})
    return dict(sorted(merged.items()))
