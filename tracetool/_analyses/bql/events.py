"""Reading the ``qemu_mutex_lock`` / ``locked`` / ``unlock`` events of a trace as numpy columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tracetool._model.trace import Trace

MUTEX_EVENTS = ("qemu_mutex_lock", "qemu_mutex_locked", "qemu_mutex_unlock")
LOCK, LOCKED, UNLOCK = 0, 1, 2


@dataclass
class MutexEvents:
    """Readable mutex events in time order, as numpy columns."""

    row: np.ndarray  # int64 row in the trace
    kind: np.ndarray  # int8: LOCK, LOCKED, UNLOCK
    mutex: np.ndarray  # uint64
    site: np.ndarray  # int32 into the shared site table
    site_line: np.ndarray  # int32, -1 unknown
    unreadable: np.ndarray  # rows whose arguments could not be decoded

    def take(self, which: np.ndarray) -> MutexEvents:
        return MutexEvents(
            self.row[which],
            self.kind[which],
            self.mutex[which],
            self.site[which],
            self.site_line[which],
            self.unreadable,
        )

    @staticmethod
    def merge(parts: Sequence[MutexEvents]) -> MutexEvents:
        """One time-ordered set from several (each already in time order)."""
        if len(parts) == 1:
            return parts[0]
        row = np.concatenate([p.row for p in parts])
        unreadable = np.unique(np.concatenate([p.unreadable for p in parts]))
        columns = [
            np.concatenate([getattr(p, c) for p in parts]) for c in ("kind", "mutex", "site", "site_line")
        ]
        if len(row) > 1 and not bool((row[1:] >= row[:-1]).all()):
            order = np.argsort(row, kind="stable")  # merges the sorted runs
            row, columns = row[order], [c[order] for c in columns]
        kind, mutex, site, site_line = columns
        return MutexEvents(row, kind, mutex, site, site_line, unreadable)


def read_mutex_events(
    trace: Trace,
    events: Sequence[str] = MUTEX_EVENTS,
    keep: np.ndarray | None = None,
    sites: dict[str, int] | None = None,
) -> MutexEvents:
    """Typed mutex address and call site of mutex events; only their distinct texts are decoded.

    ``keep``: mutex addresses to keep (None: all). ``sites``: the call-site table to code sites
    into (shared between calls; call-site files as printed -> code).
    """
    parts = read_parts(trace, events, keep, {} if sites is None else sites)
    if not parts:
        return _unreadable(np.zeros(0, np.int64))
    return MutexEvents.merge(parts)


def read_parts(
    trace: Trace, events: Sequence[str], keep: np.ndarray | None, sites: dict[str, int]
) -> list[MutexEvents]:
    """The events in time-ordered parts (one per event name).

    Arguments are decoded once per distinct text; rows only gather integers from those.
    """
    parts: list[MutexEvents] = []
    for name in events:
        k = MUTEX_EVENTS.index(name)
        rows, text, f = trace.fields_by_text(name)
        if not len(rows):
            continue
        if not {"mutex", "file", "line"} <= set(f.columns):
            parts.append(_unreadable(rows))
            continue
        u_readable = f["decoded"].to_numpy(dtype=bool) & f["file"].notna().to_numpy(dtype=bool)
        u_mutex = f["mutex"].to_numpy(dtype=np.uint64, na_value=0)
        u_ok = u_readable if keep is None else u_readable & np.isin(u_mutex, keep)
        u_codes, uniques = pd.factorize(f["file"], use_na_sentinel=True)
        remap = np.array([sites.setdefault(str(u), len(sites)) for u in uniques] + [-1], dtype=np.int32)
        u_site = remap[u_codes]
        u_line = f["line"].to_numpy(dtype=np.int64, na_value=-1).astype(np.int32)
        ok = u_ok[text]
        kept = text[ok]
        parts.append(
            MutexEvents(
                rows[ok],
                np.full(len(kept), k, dtype=np.int8),
                u_mutex[kept],
                u_site[kept],
                u_line[kept],
                rows[~u_readable[text]],
            )
        )
    return parts


def _unreadable(rows: np.ndarray) -> MutexEvents:
    return MutexEvents(
        np.zeros(0, np.int64),
        np.zeros(0, np.int8),
        np.zeros(0, np.uint64),
        np.zeros(0, np.int32),
        np.zeros(0, np.int32),
        rows,
    )


@dataclass
class BqlEvents:
    """The BQL events of one process with their trace coordinates, in pairing order."""

    row: np.ndarray
    kind: np.ndarray
    site: np.ndarray
    site_line: np.ndarray
    thread: np.ndarray  # index into trace.threads

    def take(self, order: np.ndarray) -> BqlEvents:
        return BqlEvents(
            self.row[order], self.kind[order], self.site[order], self.site_line[order], self.thread[order]
        )
