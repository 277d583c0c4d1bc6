"""Reader for QEMU's binary ``simple`` trace backend and SystemTap's headerless simpletrace.

A simple-backend file (format version 4) is a 24-byte header (u64 ~0, u64 magic
0xF2B177CB0AA429B4, u64 version), one event-name mapping record per event of the QEMU build
(u64 0, u64 id, u32 length, name), then event records: u64 1, u64 event id, u64 timestamp
(ns, CLOCK_MONOTONIC), u32 length (the 24 bytes from the id to the pid plus the arguments),
u32 pid, then the arguments, each a u64 or a u32-length-prefixed string, in trace-events order.
Integers are in the writing host's byte order; the magic read byte-swapped means a big-endian
file. Event id 0xFFFFFFFFFFFFFFFE is a dropped-events record whose argument is the number of
events the trace buffer lost. Re-opening the trace file (``trace-file on``) writes a new header
and mapping table mid-stream.

SystemTap's ``simpletrace`` tapset writes the same event records with no header and no
mappings: the event id is the event's position in the trace-events file the tapset was built
from, the timestamp is ``gettimeofday_ns()`` and the pid SystemTap's ``pid()``. Nothing in such
a file says what it is, so it is read only when asked for (``--input-format simpletrace-stap``)
and needs that trace-events file (``--events``).

Neither format records a thread id. Arguments are kept as interned (event, payload bytes) pairs
(``args_encoding`` ``simple-le``/``simple-be``); ``tracetool._events.decode_simple`` lays them out with
the event's argument list when an analysis asks. The record walk itself, compiled or in Python,
is ``parsers.simple_walk``; this module checks headers, feeds files to the walk and builds the
Segment.
"""

from __future__ import annotations

import lzma
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from parsers.inputs import InputFile
from parsers.io import InputError, open_input, peek_decompressed
from parsers.registry import Backend, ReadContext
from parsers.segment import (
    ARGS_SIMPLE_BE,
    ARGS_SIMPLE_LE,
    ParseWarning,
    Segment,
    StringTable,
)
from parsers.simple_walk import MAGIC, REC_EVENT, UNMAPPED_PREFIX, VERSION, Walker, new_walker

CHUNK_BYTES = 8 << 20


# ------------------------------------------------------------------------------ header


def parse_header(head: bytes, path: str) -> bool:
    """Checks a simple-backend file header; True when the file is big-endian.

    Raises InputError naming the offset and what is wrong (not this format, old version).
    """
    if len(head) < 24:
        raise InputError(f"{path}@0: {len(head)} bytes, too short for a simple-backend header")
    if head[:8] != b"\xff" * 8:
        raise InputError(f"{path}@0: not a simple-backend trace (no header record at the start)")
    if int.from_bytes(head[8:16], "little") == MAGIC:
        big = False
    elif int.from_bytes(head[8:16], "big") == MAGIC:
        big = True
    else:
        raise InputError(
            f"{path}@8: not a simple-backend trace (wrong magic number "
            f"0x{int.from_bytes(head[8:16], 'little'):016x})"
        )
    version = int.from_bytes(head[16:24], "big" if big else "little")
    if version != VERSION:
        raise InputError(
            f"{path}@16: simple trace format version {version} is not supported; migtrace reads "
            f"version {VERSION}, the format with event-name mapping records"
        )
    return big


def _stap_byte_order(head: bytes, path: str) -> bool:
    """True when a headerless file is big-endian (its first record type reads 1 swapped)."""
    if len(head) < 8:
        raise InputError(f"{path}@0: {len(head)} bytes, too short for a simpletrace record")
    if head[:8] == b"\xff" * 8:
        raise InputError(
            f"{path}@0: this file has a simple-backend header; read it as 'simple' "
            "(drop --input-format simpletrace-stap)"
        )
    if int.from_bytes(head[:8], "little") == REC_EVENT:
        return False
    if int.from_bytes(head[:8], "big") == REC_EVENT:
        return True
    raise InputError(f"{path}@0: not a simpletrace-stap file (the first record is no event record)")


def sniff(head: bytes) -> int:
    """Scores a simple-backend header: certain when the magic matches in either byte order."""
    if len(head) < 24 or head[:8] != b"\xff" * 8:
        return 0
    magic = head[8:16]
    return 100 if MAGIC in (int.from_bytes(magic, "little"), int.from_bytes(magic, "big")) else 0


def sniff_stap(head: bytes) -> int:
    """Headerless files cannot be recognised reliably: only ``--input-format`` selects them."""
    return 0


# ------------------------------------------------------------------------------ reading


def walk_file(path: str, walker: Walker) -> list[ParseWarning]:
    """Feeds the decompressed bytes of ``path`` to ``walker`` chunk by chunk.

    Memory stays at one chunk plus the walker's columns. Returns warnings for a truncated last
    record or a corrupt compressed stream; raises InputError at a record that cannot be right.
    """
    opened = open_input(path)
    warnings: list[ParseWarning] = []
    buf = bytearray(CHUNK_BYTES)
    filled = 0
    base = 0
    try:
        while True:
            final = False
            read_error = None
            with memoryview(buf) as view:
                try:
                    got = opened.stream.readinto(view[filled:])  # type: ignore[attr-defined]
                except (InputError, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
                    got = 0
                    read_error = str(exc).removeprefix("corrupt or truncated compressed data: ")
                if not got:
                    final = True
                filled += got
                used, err_at, err = walker.feed(view[:filled], base)
            if err is not None:
                raise InputError(f"{path}@{err_at}: {err}")
            if final:
                tail = filled - used
                if read_error is not None:
                    warnings.append(
                        ParseWarning(
                            path,
                            base + used,
                            f"corrupt or truncated compressed data: {read_error}; "
                            "records before it were kept",
                            unit="offset",
                        )
                    )
                elif tail:
                    warnings.append(
                        ParseWarning(
                            path, base + used, _truncated_message(bytes(buf[used:filled])), unit="offset"
                        )
                    )
                return warnings
            buf[: filled - used] = buf[used:filled]
            base += used
            filled -= used
    finally:
        opened.stream.close()


def _truncated_message(tail: bytes) -> str:
    return (
        f"last record is incomplete ({len(tail)} bytes; the file was cut while QEMU was "
        "writing it?); the records before it were kept"
    )


def _pid_zero_fix(pid: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Rows with pid 0 (written before the backend knew its pid) get the next row's pid.

    Returns the pids, how many rows had pid 0, and the pid they were given (-1 when several).
    """
    zero = pid == 0
    nzero = int(zero.sum())
    real = np.flatnonzero(pid > 0)
    if not nzero or not len(real):
        return pid, nzero, -1
    after = np.searchsorted(real, np.flatnonzero(zero))
    after = np.minimum(after, len(real) - 1)
    fixed = pid.copy()
    fixed[zero] = pid[real[after]]
    given = np.unique(fixed[zero])
    return fixed, nzero, int(given[0]) if len(given) == 1 else -1


def build_segment(
    path: str,
    out: dict[str, Any],
    *,
    fmt: str,
    big_endian: bool,
    clock: str,
    ctx: ReadContext,
    warnings: list[ParseWarning],
) -> Segment:
    """Turns a walker's output into a Segment (names compacted to those used, notes added)."""
    ts = np.frombuffer(out["ts"], dtype=np.int64)
    pid = np.frombuffer(out["pid"], dtype=np.int32)
    name = np.frombuffer(out["name"], dtype=np.int32)
    args = np.frombuffer(out["args"], dtype=np.int32)
    offset = np.frombuffer(out["offset"], dtype=np.int64)
    n = len(ts)
    count, noffs, ndata = out["names"]
    all_names = pa.Array.from_buffers(
        pa.large_string(), count, [None, pa.py_buffer(noffs), pa.py_buffer(ndata)]
    )
    used = np.bincount(name, minlength=count) > 0 if n else np.zeros(count, dtype=bool)
    remap = np.cumsum(used, dtype=np.int32) - 1
    name = remap[name] if n else name
    names = all_names.filter(pa.array(used))
    pcount, poffs, pdata = out["payloads"]
    payloads = pa.Array.from_buffers(
        pa.large_binary(), pcount, [None, pa.py_buffer(poffs), pa.py_buffer(pdata)]
    )
    raw_pid = pid
    # The record's pid is a u32: one beyond int32 (read as negative) is no pid a host gives.
    beyond = raw_pid < 0
    if beyond.any():
        raw_pid = np.where(beyond, -1, raw_pid).astype(np.int32)
    pid, pid_zero, pid_given = _pid_zero_fix(raw_pid)

    drops = list(
        zip(
            np.frombuffer(out["drop_offset"], dtype=np.int64).tolist(),
            np.frombuffer(out["drop_count"], dtype=np.int64).tolist(),
            strict=True,
        )
    )
    headers = np.frombuffer(out["header_offset"], dtype=np.int64).tolist()
    notes: list[ParseWarning] = []

    def note(at: int, message: str) -> None:
        notes.append(ParseWarning(path, int(at), message, unit="offset"))

    if drops:
        total = sum(c for _, c in drops)
        note(
            drops[0][0],
            f"QEMU's trace buffer overflowed: {total} event(s) lost in "
            f"{len(drops)} dropped-events record(s) (first here); the events are not in the file",
        )
    for at in headers[1:]:
        note(
            at,
            "header repeated: the trace file was re-opened ('trace-file on'); event ids "
            "follow the new mapping table, events while it was closed are not in the file",
        )
    if out["unmapped"]:
        note(
            out["first_unmapped"],
            f"{out['unmapped']} event record(s) with an id that no "
            "mapping record names (first here); kept as '<unmapped id N>'",
        )
    if beyond.any():
        note(
            int(offset[int(np.argmax(beyond))]),
            f"{int(beyond.sum())} record(s) with a pid "
            "beyond 2147483647 (first here); kept with the pid unknown (-1)",
        )
    if pid_zero:
        first = int(offset[int(np.argmax(raw_pid == 0))])
        who = f"pid {pid_given}" if pid_given >= 0 else "the pid of the next record"
        note(
            first,
            f"{pid_zero} record(s) written before the trace backend knew its pid carry "
            f"pid 0; counted as {who}",
        )
    name_list = names.to_pylist()
    unknown = [
        i for i, nm in enumerate(name_list) if not nm.startswith(UNMAPPED_PREFIX) and not ctx.arg_types(nm)
    ]
    unknown_rows = 0
    if unknown:
        per_name = np.bincount(name, minlength=len(name_list))
        rows = unknown_rows = int(per_name[unknown].sum())
        first = min(int(offset[int(np.argmax(name == code))]) for code in unknown)
        shown = ", ".join(name_list[i] for i in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        note(
            first,
            f"{rows} record(s) of {len(unknown)} event(s) with no known argument list "
            f"({shown}): kept by name with their raw argument bytes; give the QEMU build's "
            "trace-events-all with --events to decode them",
        )

    details = {
        "records.event": n,
        "records.dropped": len(drops),
        "records.header": len(headers),
        "records.mapping": int(out["mappings"]),
        "events.dropped": sum(c for _, c in drops),
        "records.pid0": pid_zero,
        "records.unknown_args": unknown_rows,
    }
    set_aside = {
        k: v
        for k, v in (
            ("header", len(headers)),
            ("mapping", int(out["mappings"])),
            ("dropped-events record", len(drops)),
        )
        if v
    }
    order = "big" if big_endian else "little"
    variant = f"v{VERSION} {order}-endian" if fmt == "simple" else f"headerless {order}-endian"
    return Segment(
        path=path,
        format=fmt,
        variant=variant + ", pid only (no thread ids)",
        clock=clock,
        lines=int(out["records"]),
        ts=ts,
        tid=np.full(n, -1, dtype=np.int32),
        pid=pid,
        name_code=name.astype(np.int32, copy=False),
        names=StringTable(names),
        args_code=args,
        args=StringTable(payloads),
        args_encoding=ARGS_SIMPLE_BE if big_endian else ARGS_SIMPLE_LE,
        thread_code=np.full(n, -1, dtype=np.int32),
        thread_names=StringTable.from_list([]),
        line=offset,
        flags=np.zeros(n, dtype=np.uint8),
        other_line=np.zeros(0, dtype=np.int64),
        other_text=[],
        warnings=[*warnings, *sorted(notes, key=lambda w: w.line)],
        dropped_events=drops,
        details=details,
        set_aside=set_aside,
        line_unit="offset",
    )


def _engine(ctx: ReadContext) -> str | None:
    engine = ctx.options.get("simple_engine", ctx.engine)
    return engine if isinstance(engine, str) else None


def read_simple_file(path: str, ctx: ReadContext) -> Segment:
    """Reads one simple-backend file (plain or compressed) into a Segment."""
    big = parse_header(peek_decompressed(path, 24), path)
    walker = new_walker(big, headerless=False, engine=_engine(ctx))
    warnings = walk_file(path, walker)
    return build_segment(
        path, walker.take(), fmt="simple", big_endian=big, clock="monotonic", ctx=ctx, warnings=warnings
    )


def stap_event_order(ctx: ReadContext) -> list[str]:
    """Event names in the order of the user's trace-events files (id = position)."""
    if ctx.event_order:
        return list(ctx.event_order)
    catalog: Any = ctx.options.get("catalog")
    if catalog is None:
        return []
    builtin = {id(d) for d in type(catalog).builtin().definitions()}
    return [d.name for d in catalog.definitions() if id(d) not in builtin]


def read_stap_file(path: str, ctx: ReadContext, order: Sequence[str]) -> Segment:
    """Reads one headerless file written by SystemTap's simpletrace tapset."""
    big = _stap_byte_order(peek_decompressed(path, 8), path)
    walker = new_walker(big, headerless=True, engine=_engine(ctx))
    walker.preset(order)
    warnings = walk_file(path, walker)
    return build_segment(
        path, walker.take(), fmt="simpletrace-stap", big_endian=big, clock="wall", ctx=ctx, warnings=warnings
    )


def read(items: Sequence[InputFile], ctx: ReadContext) -> list[Segment]:
    """Reads simple-backend files (the registry's entry point)."""
    return [read_simple_file(i.path, ctx) for i in items]


def read_stap(items: Sequence[InputFile], ctx: ReadContext) -> list[Segment]:
    """Reads SystemTap simpletrace files; the event ids need ``--events``."""
    order = stap_event_order(ctx)
    if not order:
        raise InputError(
            "simpletrace-stap files carry no event names: give the trace-events-all file the "
            "SystemTap tapset was generated from with --events (event id = position in it)"
        )
    return [read_stap_file(i.path, ctx, order) for i in items]


BACKENDS = [
    Backend(
        name="simple",
        description="QEMU simple backend binary trace (format 4, either byte order)",
        sniff=sniff,
        read=read,
    ),
    Backend(
        name="simpletrace-stap",
        description="headerless simpletrace records from SystemTap's simpletrace tapset; never "
        "detected, select with --input-format simpletrace-stap and give --events",
        sniff=sniff_stap,
        read=read_stap,
    ),
]
