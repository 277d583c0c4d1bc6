"""Merging the Segments of several inputs into one time-sorted set of columns.

Segments come from different readers with their own interned tables; here their codes are
mapped onto shared tables, rows are concatenated and put in a stable time order (lines that
were written slightly out of order across threads move; lines of one thread never swap).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from parsers.segment import NO_TIME, ParseWarning, Segment, StringTable, any_timed
from tracetool._model.timeorder import apply_moves, time_order_moves


@dataclass
class InputInfo:
    """What one input file contributed (the Segment without its columns)."""

    path: str
    format: str
    variant: str
    clock: str
    lines: int
    events: int
    other_lines: int
    process_hint: str | None
    warnings: list[ParseWarning]
    dropped_events: list[tuple[int, int]]
    details: dict[str, int]
    line_unit: str
    set_aside: dict[str, int] = field(default_factory=dict)  # see Segment.set_aside


@dataclass
class ArgsTable:
    """One reader's interned argument texts (or payloads) and how to decode them."""

    offset: int  # global args code of this table's first entry
    table: StringTable
    encoding: str


@dataclass
class Columns:
    """Time-sorted columns of all events of a trace, one entry per event."""

    ts: np.ndarray  # int64 ns (NO_TIME when the line had none)
    tid: np.ndarray  # int32, -1 unknown
    pid: np.ndarray  # int32, -1 unknown
    source: np.ndarray  # int16 index into inputs
    name: np.ndarray  # int32 into names
    args: np.ndarray  # int32 global args code
    line_thread: np.ndarray  # int32 into line_thread_names, -1 when the line named none
    line: np.ndarray  # int64 line number / byte offset
    flags: np.ndarray  # uint8
    names: list[str]
    line_thread_names: list[str]
    args_tables: list[ArgsTable]
    inputs: list[InputInfo]
    other_lines: pd.DataFrame  # source, line, text
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    # Rows the time sort put somewhere else than the inputs had them (ascending); every other
    # row kept its place, so rows of one thread and input are out of line order only next to
    # these. None: not known (the full check is needed).
    moved: np.ndarray | None = None


def _unify_tables(tables: list[StringTable]) -> tuple[list[str], list[np.ndarray]]:
    """Shared, duplicate-free values for small tables, and each table's code remap."""
    merged: list[str] = []
    for t in tables:
        merged.extend(t.to_list())
    codes, uniques = pd.factorize(pd.Series(merged, dtype=object), sort=False)
    remaps = []
    pos = 0
    for t in tables:
        n = len(t)
        remaps.append(np.asarray(codes[pos : pos + n], dtype=np.int32))
        pos += n
    return [str(u) for u in uniques], remaps


def _is_identity(remap: np.ndarray) -> bool:
    """Whether a code remap changes nothing (one input, or inputs with the same table)."""
    return bool((remap == np.arange(len(remap), dtype=remap.dtype)).all())


def _distinct(tables: list[StringTable]) -> tuple[list[StringTable], list[int]]:
    """Distinct table objects (readers share one table across files) and each input's index."""
    seen: dict[int, int] = {}
    out: list[StringTable] = []
    idx = []
    for t in tables:
        k = id(t)
        if k not in seen:
            seen[k] = len(out)
            out.append(t)
        idx.append(seen[k])
    return out, idx


def _sort_key(seg: Segment) -> np.ndarray:
    """Timestamps with untimed rows carried forward, so they keep their place in the file."""
    ts = seg.ts
    # NO_TIME is the smallest int64: "none missing" and "all missing" are two reductions.
    if not len(ts) or ts.min() != NO_TIME or not any_timed(ts):
        return ts
    missing = ts == NO_TIME
    idx = np.where(~missing, np.arange(len(ts)), -1)
    np.maximum.accumulate(idx, out=idx)
    first = int(np.flatnonzero(~missing)[0])
    idx[idx < 0] = first
    return ts[idx]


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    if len(parts) == 1:
        return np.asarray(parts[0], dtype=dtype)
    return np.concatenate([np.asarray(p, dtype=dtype) for p in parts])


def assemble(segments: list[Segment]) -> Columns:
    """Maps every segment onto shared tables and returns the time-sorted columns.

    The segments' column arrays are released as they are merged, to keep peak memory near the
    size of the result.
    """
    name_tables, name_idx = _distinct([s.names for s in segments])
    names, name_remaps = _unify_tables(name_tables)
    thread_tables, thread_idx = _distinct([s.thread_names for s in segments])
    thread_names, thread_remaps = _unify_tables(thread_tables)
    args_tables_list, args_idx = _distinct([s.args for s in segments])
    args_tables: list[ArgsTable] = []
    offset = 0
    encodings: dict[int, str] = {}
    for i, s in enumerate(segments):
        encodings.setdefault(args_idx[i], s.args_encoding)
    for j, t in enumerate(args_tables_list):
        args_tables.append(ArgsTable(offset, t, encodings[j]))
        offset += len(t)
    if offset >= 2**31:
        raise MemoryError("more than 2**31 distinct argument texts")

    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("ts", "key", "tid", "pid", "source", "name", "args", "line_thread", "line", "flags")
    }
    inputs: list[InputInfo] = []
    others = []
    extra_names = sorted({k for s in segments for k in s.extra})
    extras: dict[str, list[np.ndarray]] = {k: [] for k in extra_names}
    for i, s in enumerate(segments):
        n = s.events
        cols["ts"].append(s.ts)
        cols["key"].append(_sort_key(s))
        cols["tid"].append(s.tid)
        cols["pid"].append(s.pid)
        cols["source"].append(np.broadcast_to(np.int16(i), (n,)))  # read-only, no memory per row
        remap = name_remaps[name_idx[i]]
        cols["name"].append(s.name_code if _is_identity(remap) else remap[s.name_code])
        args_offset = args_tables[args_idx[i]].offset
        cols["args"].append(s.args_code + np.int32(args_offset) if args_offset else s.args_code)
        tremap = thread_remaps[thread_idx[i]]
        tc = s.thread_code
        if not _is_identity(tremap) and (tc >= 0).any():
            tc = np.where(tc >= 0, tremap[np.maximum(tc, 0)], -1).astype(np.int32)
        cols["line_thread"].append(tc)
        cols["line"].append(s.line)
        cols["flags"].append(s.flags)
        for k in extra_names:
            extras[k].append(s.extra.get(k, np.full(n, -1, dtype=np.int64)))
        inputs.append(
            InputInfo(
                s.path,
                s.format,
                s.variant,
                s.clock,
                s.lines,
                s.events,
                s.other_lines,
                s.process_hint,
                list(s.warnings),
                list(s.dropped_events),
                dict(s.details),
                s.line_unit,
                dict(s.set_aside),
            )
        )
        if s.other_lines:
            others.append(
                pd.DataFrame(
                    {
                        "source": np.full(s.other_lines, i, dtype=np.int16),
                        "line": s.other_line,
                        "text": pd.array(s.other_text, dtype="string"),
                    }
                )
            )
        _release(s)

    dtypes: dict[str, type] = {
        "ts": np.int64,
        "key": np.int64,
        "tid": np.int32,
        "pid": np.int32,
        "source": np.int16,
        "name": np.int32,
        "args": np.int32,
        "line_thread": np.int32,
        "line": np.int64,
        "flags": np.uint8,
    }
    merged = {k: _concat(v, dtypes[k]) for k, v in cols.items()}
    cols.clear()
    merged_extra = {k: _concat(v, np.int64) for k, v in extras.items()}
    moves = time_order_moves(merged.pop("key"))
    if moves is not None:
        apply_moves(merged, moves)
        apply_moves(merged_extra, moves)
    other_df = (
        pd.concat(others, ignore_index=True)
        if others
        else pd.DataFrame(
            {
                "source": np.zeros(0, np.int16),
                "line": np.zeros(0, np.int64),
                "text": pd.array([], dtype="string"),
            }
        )
    )
    return Columns(
        ts=merged["ts"],
        tid=merged["tid"],
        pid=merged["pid"],
        source=merged["source"],
        name=merged["name"],
        args=merged["args"],
        line_thread=merged["line_thread"],
        line=merged["line"],
        flags=merged["flags"],
        names=names,
        line_thread_names=thread_names,
        args_tables=args_tables,
        inputs=inputs,
        other_lines=other_df,
        extra=merged_extra,
        moved=np.zeros(0, dtype=np.int64) if moves is None else moves.positions,
    )


def _release(s: Segment) -> None:
    empty = np.zeros(0, dtype=np.int64)
    for k in ("ts", "tid", "pid", "name_code", "args_code", "thread_code", "line", "flags"):
        setattr(s, k, empty)
    s.extra = {}


def args_values(tables: list[ArgsTable]) -> pa.ChunkedArray:
    """All argument tables as one chunked array indexed by global args code."""
    return pa.chunked_array([t.table.values for t in tables]) if tables else pa.chunked_array([], pa.string())
