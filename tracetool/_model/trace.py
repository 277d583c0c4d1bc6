"""The Trace model: every event of one or more inputs, time-sorted, as pandas DataFrames.

Internally the trace is a handful of numpy columns (int64 nanoseconds, int32 codes); the
``events`` DataFrame is built from them on first use, with categoricals for names. Arguments
stay interned text until an analysis asks for one event's typed fields (``fields``), and then
only the distinct texts of that event are decoded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa

from parsers.inputs import SkippedFile
from parsers.segment import ParseWarning, any_timed
from tracetool._events import argdecode
from tracetool._events.catalog import Catalog
from tracetool._model.assemble import Columns, InputInfo
from tracetool._model.threads import ThreadTable


class Trace:
    """A loaded trace. Build it with :func:`tracetool.load`.

    Attributes that are DataFrames: ``events``, ``threads``, ``processes``, ``inputs``,
    ``other_lines``, ``dropped``. Use ``fields(name)`` for typed arguments of one event.
    """

    def __init__(self, columns: Columns, table: ThreadTable, catalog: Catalog) -> None:
        self._c = columns
        self._t = table
        self.catalog = catalog
        self._fields_cache: dict[tuple[str, tuple[str, ...] | None], pd.DataFrame] = {}
        self.skipped_inputs: list[SkippedFile] = []  # files of input directories not read, why

    # ------------------------------------------------------------------ raw columns
    @property
    def ts(self) -> np.ndarray:
        """Event times in ns (int64; ``NO_TIME`` where the line had none), sorted."""
        return self._c.ts

    @property
    def tid(self) -> np.ndarray:
        """Thread id per event (int32, -1 when the format has none)."""
        return self._c.tid

    @property
    def row_thread(self) -> np.ndarray:
        """Index into ``threads`` per event (int32)."""
        return self._t.row_thread

    @property
    def name_codes(self) -> np.ndarray:
        """Event-name code per event (int32 into ``event_names``)."""
        return self._c.name

    @property
    def event_names(self) -> list[str]:
        """All event names of the trace; ``name_codes`` index this list."""
        return self._c.names

    @property
    def source(self) -> np.ndarray:
        """Input index per event (int16 into ``inputs``)."""
        return self._c.source

    @property
    def line(self) -> np.ndarray:
        """Line number (or byte offset for binary inputs) per event."""
        return self._c.line

    @property
    def moved_rows(self) -> np.ndarray | None:
        """Rows the time sort took out of their inputs' order (ascending), None when not known:
        rows of one thread and input can be out of line order only next to these."""
        return self._c.moved

    @property
    def flags(self) -> np.ndarray:
        """Per-event flags (``parsers.segment.EVENT_*`` bits)."""
        return self._c.flags

    def __len__(self) -> int:
        return len(self._c.ts)

    @property
    def has_time(self) -> bool:
        """True when events carry timestamps."""
        return any_timed(self._c.ts)

    @property
    def has_tids(self) -> bool:
        """True when at least some events carry a thread id."""
        return bool((self._c.tid >= 0).any())

    def code_of(self, event: str) -> int | None:
        """The name code of ``event``, or None when it does not occur."""
        return self._name_index.get(event)

    @cached_property
    def _name_index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self._c.names)}

    def rows(self, events: str | Iterable[str]) -> np.ndarray:
        """Row positions (sorted, int64) of the events with the given name(s)."""
        wanted = [events] if isinstance(events, str) else list(events)
        codes = [self._name_index[e] for e in wanted if e in self._name_index]
        if not codes:
            return np.zeros(0, dtype=np.int64)
        if len(codes) == 1:
            return np.flatnonzero(self._c.name == codes[0])
        mask = np.zeros(len(self._c.names), dtype=bool)
        mask[codes] = True
        return np.flatnonzero(mask[self._c.name])

    # ------------------------------------------------------------------ tables
    @cached_property
    def inputs(self) -> pd.DataFrame:
        """One row per input file: path, format, variant, clock, lines, events, other lines, lines
        set aside (headers, lost-events notices...)."""
        rows = []
        for i in self._c.inputs:
            rows.append(
                {
                    "path": i.path,
                    "format": i.format,
                    "variant": i.variant,
                    "clock": i.clock,
                    "lines": i.lines,
                    "events": i.events,
                    "other_lines": i.other_lines,
                    "set_aside": sum(i.set_aside.values()),
                    "warnings": len(i.warnings),
                    "dropped_events": sum(n for _, n in i.dropped_events),
                }
            )
        return pd.DataFrame(rows)

    @property
    def threads(self) -> pd.DataFrame:
        """One row per (process, thread): names, role, event count, first/last time (ns)."""
        return self._t.threads

    @property
    def processes(self) -> pd.DataFrame:
        """One row per QEMU process: label (dst/src...), pid, side, load thread."""
        return self._t.processes

    @cached_property
    def other_lines(self) -> pd.DataFrame:
        """Lines that are not trace events (QEMU messages, garbage): path, line, text."""
        o = self._c.other_lines
        paths = [i.path for i in self._c.inputs]
        return pd.DataFrame(
            {
                "path": pd.Categorical.from_codes(o["source"].to_numpy(), categories=pd.Index(paths).unique())
                if len(set(paths)) == len(paths)
                else [paths[s] for s in o["source"].tolist()],
                "line": o["line"].to_numpy(),
                "text": o["text"],
            }
        )

    @property
    def warnings(self) -> list[ParseWarning]:
        """Everything readers kept but did not fully understand, with file and line."""
        return [w for i in self._c.inputs for w in i.warnings]

    @cached_property
    def dropped(self) -> pd.DataFrame:
        """Events the tracer itself lost (simple backend's dropped-events records)."""
        rows = [
            {"path": i.path, "position": pos, "count": n}
            for i in self._c.inputs
            for pos, n in i.dropped_events
        ]
        return pd.DataFrame(rows, columns=["path", "position", "count"])

    @property
    def clock(self) -> str:
        """The clock of the timestamps: "wall", "monotonic", ... or "mixed"/"none"."""
        clocks = {i.clock for i in self._c.inputs if i.events}
        clocks.discard("none")
        if not clocks:
            return "none"
        return clocks.pop() if len(clocks) == 1 else "mixed"

    def event_counts(self) -> dict[str, int]:
        """Number of events per event name, most frequent first."""
        counts = np.bincount(self._c.name, minlength=len(self._c.names))
        order = np.argsort(-counts, kind="stable")
        return {self._c.names[i]: int(counts[i]) for i in order if counts[i]}

    @cached_property
    def events(self) -> pd.DataFrame:
        """One row per event, in time order.

        Columns: ``ts_ns`` (int64), ``time`` (UTC datetime for wall-clock traces, else a
        timedelta on the trace's own clock), ``process``, ``pid`` and ``tid`` (Int64: the
        line's, else the thread table's), ``thread``, ``role``, ``event``, ``args`` (the argument
        text as the backend printed it), ``source`` (file), ``line`` (line number, or byte offset
        for binary inputs), ``flags``.
        """
        c, t = self._c, self._t
        rt = t.row_thread
        th = t.threads
        ts = c.ts
        time = _utc_times(ts) if self.clock == "wall" else pd.Series(ts.view("m8[ns]"), copy=False)
        named = th["name"].notna().to_numpy()
        thread_cats = pd.Index(th["name"][named].astype(str).unique())
        thread_of = np.full(len(th), -1, dtype=np.int32)  # -1: NA, a thread nothing named
        thread_of[named] = thread_cats.get_indexer(th["name"][named].astype(str))
        thread_of = _narrow(thread_of)  # the per-row gather then makes the codes pandas keeps
        paths = [i.path for i in c.inputs]
        source_cats = pd.Index(paths).unique()
        source_of = _narrow(source_cats.get_indexer(pd.Index(paths)))
        proc_codes = th["process"].cat.codes.to_numpy()
        frame = pd.DataFrame(
            {
                "ts_ns": ts,
                "time": time,
                "process": pd.Categorical.from_codes(
                    proc_codes[rt], categories=th["process"].cat.categories, validate=False
                ),
                "pid": _nullable_int64(c.pid, th["pid"], rt),
                "tid": _nullable_int64(c.tid, th["tid"], rt),
                "thread": pd.Categorical.from_codes(thread_of[rt], categories=thread_cats, validate=False),
                "role": pd.Categorical.from_codes(
                    th["role"].cat.codes.to_numpy()[rt], categories=th["role"].cat.categories, validate=False
                ),
                "event": pd.Categorical.from_codes(c.name, categories=pd.Index(c.names), validate=False),
                "args": self._args_categorical(),
                "source": pd.Categorical.from_codes(
                    source_of[c.source], categories=source_cats, validate=False
                ),
                "line": c.line,
                "flags": c.flags,
            },
            copy=False,
        )
        return frame

    def _args_categorical(self) -> pd.Categorical:
        tables = self._c.args_tables
        texts = [_as_text(t.table.values, t.encoding, self, t.offset) for t in tables]
        if len(texts) == 1:
            values = texts[0]
        else:
            values = (
                pa.concat_arrays([x.cast(pa.large_string()) for x in texts])
                if texts
                else pa.array([], pa.large_string())
            )
        cats = pd.Index(pd.array(values, dtype=pd.ArrowDtype(values.type)))
        if len(tables) == 1 and tables[0].table.unique:
            # The reader guarantees distinct texts: skip pandas' hashing pass that checks it.
            dtype = getattr(pd.CategoricalDtype, "_from_fastpath", pd.CategoricalDtype)(cats, False)
            return pd.Categorical.from_codes(self._c.args, dtype=dtype, validate=False)
        if cats.is_unique:
            return pd.Categorical.from_codes(self._c.args, categories=cats, validate=False)
        # Interned per (event, text): the same text under two events is one category here.
        codes, uniques = pd.factorize(cats)
        return pd.Categorical.from_codes(
            np.asarray(codes, dtype=np.int32)[self._c.args], categories=pd.Index(uniques), validate=False
        )

    # ------------------------------------------------------------------ typed arguments
    def fields(
        self, event: str, rows: np.ndarray | None = None, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Typed arguments of ``event``, one row per occurrence (or per given row).

        Columns are the trace-events argument names (e.g. ``mutex``, ``file``, ``line`` for
        ``qemu_mutex_lock``) plus ``decoded`` (False where the text matched no known format).
        The index holds the event's row positions in ``events``. ``columns``: only these
        arguments (those the event has), for bulk work on events with millions of distinct
        texts (RAM pages): the others are not converted. ``decoded`` then says that the text
        matched the format and these arguments converted.
        """
        only = None if columns is None else tuple(columns)
        if rows is None:
            cached = self._fields_cache.get((event, only))
            if cached is not None:
                return cached
            whole = self._fields_cache.get((event, None))
            if whole is not None and only is not None:
                out = whole[[c for c in whole.columns if c in only or c == "decoded"]]
            else:
                out = self._decode_rows(event, self.rows(event), only)
            self._fields_cache[(event, only)] = out
            return out
        return self._decode_rows(event, np.asarray(rows, dtype=np.int64), only)

    def fields_by_text(
        self, event: str, rows: np.ndarray | None = None, columns: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """Typed arguments decoded once per distinct argument text, for bulk work.

        Returns ``(rows, text_index, frame)``: ``frame`` has one row per distinct text of the
        event (the columns of ``fields`` plus ``decoded``), and event row ``rows[i]`` has the
        fields in ``frame.iloc[text_index[i]]`` (``text_index``: int32 where the trace has fewer
        than 2**31 distinct texts). Per-row work is then one integer gather, which is what an
        analysis of millions of mutex events wants. ``columns``: as for :meth:`fields`.
        """
        rows = self.rows(event) if rows is None else np.asarray(rows, dtype=np.int64)
        uniq, take = _distinct(self._c.args[rows], self._args_total)
        return rows, take, self._texts_frame(event, uniq, columns)

    def fields_by_text_of(self, events: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[pd.DataFrame]]:
        """:meth:`fields_by_text` of several events at once, in one pass over the trace.

        Returns ``(rows, text_index, frames)``: the rows of all ``events`` in time order (int32
        where the trace has fewer than 2**31 rows), and ``frames``, one per event as given (empty
        for one that does not occur), each with a row per distinct text of that event. Row
        ``rows[i]`` has the fields of text ``text_index[i]`` of the frames put one after the
        other, in the order of ``events``.
        """
        slots = np.full(len(self._c.names), -1, dtype=np.int8 if len(events) < 128 else np.int32)
        codes = [self._name_index.get(e) for e in events]
        for i, code in enumerate(codes):
            if code is not None:
                slots[code] = i
        ntotal = self._args_total
        width = len(events) * ntotal
        # Block by block, into arrays made for every row but written only for the events (the
        # pages of the rest are never touched): no temporary as long as the trace.
        rows = np.empty(len(self), dtype=np.int32 if len(self) < 2**31 else np.int64)
        key = np.empty(len(self), dtype=np.int32 if width < 2**31 else np.int64)
        n = 0
        for start in range(0, len(self), _BLOCK_ROWS):
            slot = slots[self._c.name[start : start + _BLOCK_ROWS]]
            at = np.flatnonzero(slot >= 0)
            end = n + len(at)
            key[n:end] = slot[at].astype(key.dtype) * ntotal + self._c.args[start : start + _BLOCK_ROWS][at]
            rows[n:end] = at + start
            n = end
        rows, key = rows[:n], key[:n]
        uniq, take = _distinct(key, width, in_place=True)
        del key
        bounds = np.searchsorted(uniq, np.arange(len(events) + 1) * ntotal)
        frames = [
            self._texts_frame(event, uniq[bounds[i] : bounds[i + 1]] - i * ntotal)
            for i, event in enumerate(events)
        ]
        return rows, take, frames

    @cached_property
    def _args_total(self) -> int:
        return sum(len(t.table) for t in self._c.args_tables)

    def _texts_frame(
        self, event: str, codes: np.ndarray, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The typed fields of ``event`` (``columns`` only, when given) for the argument codes
        ``codes`` (sorted), one row each, with ``decoded`` (False where no variant of the event
        matched the text)."""
        parts: list[pd.DataFrame] = []
        matched_parts: list[np.ndarray] = []
        for t in self._c.args_tables:
            lo, hi = t.offset, t.offset + len(t.table)
            sel = codes[(codes >= lo) & (codes < hi)]
            if not len(sel):
                continue
            values = t.table.values.take(pa.array(sel - lo))
            dec = argdecode.decode(t.encoding, self.catalog, event, values, columns)
            parts.append(dec.frame.reset_index(drop=True))
            matched_parts.append(np.asarray(dec.matched, dtype=bool))
        if not parts:
            return pd.DataFrame({"decoded": np.zeros(0, dtype=bool)})
        per_unique = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].copy()
        per_unique["decoded"] = np.concatenate(matched_parts)
        return per_unique

    def _decode_rows(
        self, event: str, rows: np.ndarray, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        rows, take, per_unique = self.fields_by_text(event, rows, columns)
        if len(per_unique):
            out = per_unique.take(take).reset_index(drop=True)
        else:
            out = pd.DataFrame({"decoded": np.zeros(len(rows), dtype=bool)})
        out.index = pd.Index(rows, name="row")
        return out

    @property
    def input_info(self) -> list[InputInfo]:
        """Per input file what its reader found: format, clock, counts, warnings, dropped events."""
        return list(self._c.inputs)

    def __repr__(self) -> str:
        ins = ", ".join(f"{i.path} ({i.format})" for i in self._c.inputs)
        return f"<Trace {len(self)} events, {len(self.threads)} threads from {ins}>"


def _nullable_int64(a: np.ndarray, per_thread: pd.Series, row_thread: np.ndarray) -> pd.arrays.IntegerArray:
    """An Int64 column: the line's own value, else the value the thread table has for the
    row's thread (a pid known from the sidecar, a tid from a per-thread file's name), else NA."""
    known = per_thread.to_numpy(dtype=np.int64, na_value=-1)
    if len(a) and int(a.max()) < 0 and not (known >= 0).any():
        # Nothing known (the log backend's pid): zeros from calloc cost no memory until read.
        return pd.arrays.IntegerArray(np.zeros(len(a), dtype=np.int64), np.ones(len(a), dtype=bool))
    out = a.astype(np.int64)
    missing = out < 0
    if missing.any() and (known >= 0).any():
        if missing.all():
            out = known[row_thread]
        else:
            where = np.flatnonzero(missing)
            out[where] = known[row_thread[where]]
        missing = out < 0
    return pd.arrays.IntegerArray(out, missing)


def _narrow(codes: np.ndarray) -> np.ndarray:
    """Category codes (-1 for NA) in the smallest integer type that holds them."""
    top = int(codes.max()) if len(codes) else 0
    for dtype in (np.int8, np.int16):
        if top <= np.iinfo(dtype).max:
            return codes.astype(dtype)
    return codes.astype(np.int32)


def _distinct(codes: np.ndarray, width: int, in_place: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values (sorted) of ``codes``, all in ``0..width-1``, and the index of each
    element among them (int32 where fewer than 2**31 values are possible). ``in_place``: the
    indices may be written over ``codes``."""
    if len(codes) * 8 < width:
        # Few codes against a wide range: sorting them beats a pass over the range.
        uniq, take = np.unique(codes, return_inverse=True)
        return uniq, take.reshape(-1)
    present = np.zeros(width, dtype=bool)
    present[codes] = True
    position: np.ndarray = np.cumsum(present, dtype=np.int32 if width < 2**31 else np.int64)
    np.subtract(position, 1, out=position)
    if not in_place or codes.dtype != position.dtype:
        return np.flatnonzero(present), position[codes]
    for start in range(0, len(codes), _BLOCK_ROWS):
        block = codes[start : start + _BLOCK_ROWS]
        block[:] = position[block]
    return np.flatnonzero(present), codes


_BLOCK_ROWS = 1 << 20
"""Rows per pass where a pass over the whole trace would otherwise make a trace-long temporary."""


def _utc_times(ts: np.ndarray) -> pd.Series:
    """Wall-clock ns as a UTC datetime Series viewing ``ts`` (tz_localize would copy it)."""
    dtype = pd.DatetimeTZDtype(unit="ns", tz="UTC")
    simple_new = getattr(pd.arrays.DatetimeArray, "_simple_new", None)
    if simple_new is not None:
        try:
            return pd.Series(simple_new(ts.view("M8[ns]"), dtype=dtype), copy=False)
        except (TypeError, ValueError):  # a pandas whose private constructor changed
            pass
    return pd.Series(ts.view("M8[ns]"), copy=False).dt.tz_localize("UTC")


def _as_text(values: pa.Array, encoding: str, trace: Trace, offset: int) -> pa.Array:
    """Argument texts of a table; tables of binary payloads are rendered by their backend."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values
    from tracetool._events import argrender

    return argrender.render(encoding, trace, offset, values)


def select_rows(trace: Trace, events: Sequence[str]) -> np.ndarray:
    """Row positions of any of ``events`` (convenience for analyses)."""
    return trace.rows(events)
