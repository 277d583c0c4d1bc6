"""Reading the ``qemu_mutex_lock`` / ``locked`` / ``unlock`` events of a trace as numpy columns.

Arguments are decoded once per distinct argument text (:meth:`Trace.fields_by_text`); the rows
of an event only carry an index into those texts, so selecting the events of some mutexes is a
test per distinct text and one gather over the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tracetool._model.trace import Trace

MUTEX_EVENTS = ("qemu_mutex_lock", "qemu_mutex_locked", "qemu_mutex_unlock")
LOCK, LOCKED, UNLOCK = 0, 1, 2


@dataclass
class MutexPart:
    """The rows of one mutex event name, with the arguments of each distinct text."""

    kind: int  # LOCK, LOCKED or UNLOCK
    rows: np.ndarray  # int64 trace rows, in time order
    text: np.ndarray  # int32 per row (int64 past 2**31 texts): index into the per-text columns below
    readable: np.ndarray  # bool per text: mutex, file and line decoded
    mutex: np.ndarray  # uint64 per text
    site: np.ndarray  # int32 per text: code into the call-site table (-1: none)
    site_line: np.ndarray  # int32 per text (-1: unknown)

    def unreadable_rows(self) -> np.ndarray:
        """Rows whose arguments could not be decoded."""
        return self.rows[~self.readable[self.text]]

    def selected(self, keep: np.ndarray | None) -> np.ndarray:
        """Per text: readable, and of a mutex in ``keep`` (None: any)."""
        return self.readable if keep is None else self.readable & np.isin(self.mutex, keep)


@dataclass
class MutexEvents:
    """Readable mutex events in time order: their rows and, per distinct argument text (``code``),
    the event kind, mutex, call site and line."""

    row: np.ndarray  # row in the trace (int32 when the trace has fewer than 2**31 rows)
    code: np.ndarray  # per event: index into the per-text columns
    text_kind: np.ndarray  # int8 per text: LOCK, LOCKED, UNLOCK
    text_mutex: np.ndarray  # uint64 per text
    text_site: np.ndarray  # int32 per text, into the shared site table
    text_site_line: np.ndarray  # int32 per text, -1 unknown

    def of_mutex(self, mutex: int) -> np.ndarray:
        """Per event: whether it is on ``mutex``."""
        return (self.text_mutex == np.uint64(mutex))[self.code]

    @property
    def kind(self) -> np.ndarray:
        return self.text_kind[self.code]

    @property
    def mutex(self) -> np.ndarray:
        return self.text_mutex[self.code]

    @property
    def site(self) -> np.ndarray:
        return self.text_site[self.code]

    @property
    def site_line(self) -> np.ndarray:
        return self.text_site_line[self.code]


def select_events(parts: Sequence[MutexPart], n_rows: int, keep: np.ndarray | None = None) -> MutexEvents:
    """The readable events of ``parts`` (of the mutexes in ``keep`` only, when given) in time
    order; ``n_rows``: the number of rows of the trace."""
    offsets = np.cumsum([0] + [len(p.readable) for p in parts]).tolist()
    code_at: np.ndarray = np.full(n_rows, -1, dtype=np.int64 if offsets[-1] >= 2**31 else np.int32)
    for p, offset in zip(parts, offsets, strict=False):
        ok = p.selected(keep)[p.text]
        code_at[p.rows[ok]] = p.text[ok] + offset
    row = np.flatnonzero(code_at >= 0)
    if n_rows < 2**31:
        row = row.astype(np.int32)
    code = code_at[row]
    del code_at
    return MutexEvents(
        row,
        code,
        np.concatenate([np.full(len(p.readable), p.kind, dtype=np.int8) for p in parts] or [_NONE8]),
        np.concatenate([p.mutex for p in parts] or [_NONE64]),
        np.concatenate([p.site for p in parts] or [_NONE32]),
        np.concatenate([p.site_line for p in parts] or [_NONE32]),
    )


_NONE8, _NONE32, _NONE64 = np.zeros(0, np.int8), np.zeros(0, np.int32), np.zeros(0, np.uint64)


def read_parts(
    trace: Trace, sites: dict[str, int], events: Sequence[str] = ("qemu_mutex_unlock", *MUTEX_EVENTS[:2])
) -> list[MutexPart]:
    """The mutex events of ``trace``, one part per event name that occurs.

    ``sites``: the call-site table to code sites into (call-site files as printed -> code), filled
    in the order the parts are read.
    """
    parts: list[MutexPart] = []
    for name in events:
        rows, text, f = trace.fields_by_text(name)
        if not len(rows):
            continue
        text = text.astype(np.int32, copy=False) if len(f) < 2**31 else text
        kind = MUTEX_EVENTS.index(name)
        n = len(f)
        if not {"mutex", "file", "line"} <= set(f.columns):
            none = np.zeros(n, np.int32)
            parts.append(
                MutexPart(kind, rows, text, np.zeros(n, bool), np.zeros(n, np.uint64), none - 1, none - 1)
            )
            continue
        readable = f["decoded"].to_numpy(dtype=bool) & f["file"].notna().to_numpy(dtype=bool)
        codes, uniques = pd.factorize(f["file"], use_na_sentinel=True)
        remap = np.array([sites.setdefault(str(u), len(sites)) for u in uniques] + [-1], dtype=np.int32)
        parts.append(
            MutexPart(
                kind,
                rows,
                text,
                readable,
                f["mutex"].to_numpy(dtype=np.uint64, na_value=0),
                remap[codes],
                f["line"].to_numpy(dtype=np.int64, na_value=-1).astype(np.int32),
            )
        )
    return parts


def unreadable_rows(parts: Sequence[MutexPart]) -> np.ndarray:
    """Rows of every part whose arguments could not be decoded, sorted."""
    if not parts:
        return np.zeros(0, np.int64)
    return np.unique(np.concatenate([p.unreadable_rows() for p in parts]))


@dataclass
class BqlEvents:
    """The BQL events of one process with their trace coordinates, in pairing order."""

    kind: np.ndarray
    site: np.ndarray
    site_line: np.ndarray
    thread: np.ndarray  # index into trace.threads
    ts: np.ndarray  # int64 ns (NO_TIME: none)
    source: np.ndarray  # index into trace.inputs
    line: np.ndarray  # line (or offset) in that input

    @classmethod
    def of(
        cls, trace: Trace, ev: MutexEvents, sel: np.ndarray, row: np.ndarray, order: np.ndarray | None = None
    ) -> BqlEvents:
        """The events ``sel`` of ``ev`` (in time order; ``row``: their rows), then put in
        ``order`` when given, with the trace columns they need. Gathering in time order reads
        the trace's columns front to back; the reordering then works on the gathered arrays."""

        def take(column: np.ndarray) -> np.ndarray:
            return column if order is None else column[order]

        code = take(ev.code[sel])
        line = trace.line[row]
        if len(line) and line.max() < 2**31:
            line = line.astype(np.int32)
        return cls(
            ev.text_kind[code],
            ev.text_site[code],
            ev.text_site_line[code],
            take(trace.row_thread[row]),
            take(trace.ts[row]),
            take(trace.source[row]),
            take(line),
        )
