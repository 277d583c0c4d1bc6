"""Reading the ``qemu_mutex_lock`` / ``locked`` / ``unlock`` events of a trace as numpy columns.

Arguments are decoded once per distinct argument text (:meth:`Trace.fields_by_text_of`, one
pass over the trace for the three events); the rows only carry an index into those texts, so
selecting the events of some mutexes is a test per distinct text and one gather over the rows.
"""

from __future__ import annotations

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
    rows: np.ndarray  # trace rows in time order (int32 when the trace has fewer than 2**31)
    text: np.ndarray  # int32 per row (int64 past 2**31 texts): index into the per-text columns below
    readable: np.ndarray  # bool per text: mutex, file and line decoded
    mutex: np.ndarray  # uint64 per text
    site: np.ndarray  # int32 per text: code into the call-site table (-1: none)
    site_line: np.ndarray  # int32 per text (-1: unknown)


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


@dataclass
class MutexTexts:
    """Every mutex event of a trace in time order, with the arguments of each distinct text.

    The per-text columns hold the texts of ``qemu_mutex_unlock``, then ``lock``, then
    ``locked`` (the order :data:`READ_ORDER` gives), so the call sites are numbered in the
    order the events are read."""

    rows: np.ndarray  # trace rows (int32 when the trace has fewer than 2**31 rows)
    text: np.ndarray  # per row: index into the per-text columns
    kind: np.ndarray  # int8 per text: LOCK, LOCKED, UNLOCK
    readable: np.ndarray  # bool per text: mutex, file and line decoded
    mutex: np.ndarray  # uint64 per text
    site: np.ndarray  # int32 per text: code into the call-site table (-1: none)
    site_line: np.ndarray  # int32 per text (-1: unknown)
    bounds: dict[int, tuple[int, int]]  # kind -> its range of texts, for the kinds that occur

    def part(self, kind: int) -> MutexPart | None:
        """The events of one kind (None when it does not occur), with that kind's texts."""
        if kind not in self.bounds:
            return None
        lo, hi = self.bounds[kind]
        mine = (self.text >= lo) & (self.text < hi)
        text = self.text[mine]
        text -= lo
        return MutexPart(
            kind,
            self.rows[mine],
            text,
            self.readable[lo:hi],
            self.mutex[lo:hi],
            self.site[lo:hi],
            self.site_line[lo:hi],
        )

    def unreadable_rows(self) -> np.ndarray:
        """Rows whose arguments could not be decoded (sorted)."""
        if self.readable.all():
            return np.zeros(0, dtype=np.int64)
        return self.rows[~self.readable[self.text]].astype(np.int64)

    def select(self, keep: np.ndarray | None = None) -> MutexEvents:
        """The readable events (of the mutexes in ``keep`` only, when given), in time order."""
        wanted = self.readable if keep is None else self.readable & np.isin(self.mutex, keep)
        rows, text = self.rows, self.text
        if not wanted.all():
            ok = wanted[text]
            rows, text = rows[ok], text[ok]
        return MutexEvents(rows, text, self.kind, self.mutex, self.site, self.site_line)


READ_ORDER = (UNLOCK, LOCK, LOCKED)
"""The order in which the kinds' texts are numbered (and their call sites first seen)."""


def read_mutex_texts(trace: Trace, sites: dict[str, int]) -> MutexTexts:
    """The mutex events of ``trace``: one pass over its rows, one decoding per distinct text.

    ``sites``: the call-site table to code sites into (call-site files as printed -> code), filled
    in :data:`READ_ORDER`.
    """
    rows, text, frames = trace.fields_by_text_of([MUTEX_EVENTS[k] for k in READ_ORDER])
    columns: list[tuple[np.ndarray, ...]] = []
    bounds: dict[int, tuple[int, int]] = {}
    start = 0
    for kind, f in zip(READ_ORDER, frames, strict=True):
        n = len(f)
        if n:
            bounds[kind] = (start, start + n)
            start += n
        columns.append((np.full(n, kind, dtype=np.int8), *_text_columns(f, sites)))
    kind_, readable, mutex, site, site_line = (np.concatenate(c) for c in zip(*columns, strict=True))
    if start < 2**31:
        text = text.astype(np.int32, copy=False)
    return MutexTexts(rows, text, kind_, readable, mutex, site, site_line, bounds)


def _text_columns(f: pd.DataFrame, sites: dict[str, int]) -> tuple[np.ndarray, ...]:
    """Readable, mutex, call-site code and line of each decoded text of one event."""
    n = len(f)
    if not {"mutex", "file", "line"} <= set(f.columns):
        none = np.zeros(n, np.int32)
        return np.zeros(n, bool), np.zeros(n, np.uint64), none - 1, none - 1
    readable = f["decoded"].to_numpy(dtype=bool) & f["file"].notna().to_numpy(dtype=bool)
    codes, uniques = pd.factorize(f["file"], use_na_sentinel=True)
    remap = np.array([sites.setdefault(str(u), len(sites)) for u in uniques] + [-1], dtype=np.int32)
    return (
        readable,
        f["mutex"].to_numpy(dtype=np.uint64, na_value=0),
        remap[codes],
        f["line"].to_numpy(dtype=np.int64, na_value=-1).astype(np.int32),
    )


@dataclass
class BqlEvents:
    """The BQL events of one process with their trace coordinates, in pairing order.

    The input and line of an event are read from the trace only for the events asked about
    (:meth:`source_at`, :meth:`line_at`): reports name a few events, not millions."""

    kind: np.ndarray
    site: np.ndarray
    site_line: np.ndarray
    thread: np.ndarray  # index into trace.threads
    ts: np.ndarray  # int64 ns (NO_TIME: none)
    row: np.ndarray  # row in the trace
    trace_source: np.ndarray  # the trace's input column (index into trace.inputs), per row
    trace_line: np.ndarray  # the trace's line (or offset) column, per row

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
        return cls(
            ev.text_kind[code],
            ev.text_site[code],
            ev.text_site_line[code],
            take(trace.row_thread[row]),
            take(trace.ts[row]),
            take(row),
            trace.source,
            trace.line,
        )

    def source_at(self, idx: np.ndarray) -> np.ndarray:
        """The input (index into trace.inputs) of the events at ``idx``."""
        return self.trace_source[self.row[idx]]

    def line_at(self, idx: np.ndarray) -> np.ndarray:
        """The line (or offset) in its input of each event at ``idx``."""
        return self.trace_line[self.row[idx]]
