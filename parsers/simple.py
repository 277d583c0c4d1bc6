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
the event's argument list when an analysis asks.
"""

from __future__ import annotations

import lzma
import struct
from array import array
from collections.abc import Sequence
from typing import Any, Protocol

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

try:
    from parsers import _simple as _compiled  # type: ignore[attr-defined]
except ImportError:  # no compiler at install time: the Python walk below does the same work
    _compiled = None

HEADER_ID = 0xFFFFFFFFFFFFFFFF
MAGIC = 0xF2B177CB0AA429B4
VERSION = 4
REC_MAPPING, REC_EVENT = 0, 1
DROPPED_ID = 0xFFFFFFFFFFFFFFFE
MAX_RECORD = 256 * 1024  # QEMU's whole trace ring; real records stay under 6 KiB
MAX_NAME = 1024
CHUNK_BYTES = 8 << 20
UNMAPPED_PREFIX = "<unmapped id "

_NAME_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class Walker(Protocol):
    """What the compiled walker and its Python twin offer (see ``_simple.c``)."""

    def feed(self, buffer: Any, base: int) -> tuple[int, int | None, str | None]: ...
    def preset(self, names: Sequence[str]) -> None: ...
    def take(self) -> dict[str, Any]: ...


def walker_engine() -> str:
    """Which record walk is in use: "compiled" or "python"."""
    return "compiled" if _compiled is not None else "python"


def new_walker(big_endian: bool, headerless: bool, engine: str | None = None) -> Walker:
    """A fresh record walker; ``engine`` forces "compiled" or "python"."""
    if engine == "python" or (engine is None and _compiled is None):
        return PyWalker(big_endian=big_endian, headerless=headerless)
    if _compiled is None:
        raise RuntimeError("the compiled simple-trace walker is not built (needs a C compiler)")
    walker: Walker = _compiled.Walker(big_endian=big_endian, headerless=headerless)
    return walker


class PyWalker:
    """The record walk of ``_simple.c`` in Python: same rows, tables, counters and messages."""

    def __init__(self, big_endian: bool = False, headerless: bool = False) -> None:
        e = ">" if big_endian else "<"
        self._u64 = struct.Struct(e + "Q").unpack_from
        self._u32 = struct.Struct(e + "I").unpack_from
        self._event = struct.Struct(e + "QQII").unpack_from
        self._magic = MAGIC.to_bytes(8, "big" if big_endian else "little")
        self._headerless = headerless
        self._ids: dict[int, int] = {}
        self._names: dict[bytes, int] = {}
        self._name_list: list[bytes] = []
        self._args: dict[bytes, int] = {}
        self._ts = array("q")
        self._pid = array("i")
        self._name = array("i")
        self._argid = array("i")
        self._offset = array("q")
        self._drop_offset = array("q")
        self._drop_count = array("q")
        self._header_offset = array("q")
        self.records = self.mappings = self.unmapped = 0
        self.first_unmapped = -1

    def _intern_name(self, name: bytes) -> int:
        code = self._names.get(name)
        if code is None:
            code = self._names[name] = len(self._name_list)
            self._name_list.append(name)
        return code

    def preset(self, names: Sequence[str]) -> None:
        """Event id ``i`` is ``names[i]`` (headerless files)."""
        for i, n in enumerate(names):
            self._ids[i] = self._intern_name(n.encode())

    def feed(self, buffer: Any, base: int) -> tuple[int, int | None, str | None]:
        """Walks the complete records of ``buffer`` (at file offset ``base``)."""
        buf = bytes(buffer)
        n = len(buf)
        p = 0
        u64, u32, event = self._u64, self._u32, self._event
        while p + 8 <= n:
            at = base + p
            (rtype,) = u64(buf, p)
            if rtype == REC_EVENT:
                if n - p < 32:
                    break
                eid, ts, rlen, pid = event(buf, p + 8)
                if rlen < 24 or rlen > MAX_RECORD:
                    return (
                        p,
                        at,
                        (
                            f"event record length {rlen} is impossible (24..{MAX_RECORD}): "
                            "corrupt or not a trace"
                        ),
                    )
                if n - p < 8 + rlen:
                    break
                if eid == DROPPED_ID:
                    if rlen < 32:
                        return p, at, "dropped-events record too short for its count"
                    self._drop_offset.append(at)
                    (count,) = u64(buf, p + 32)
                    self._drop_count.append(count - (1 << 64) if count >= 1 << 63 else count)
                else:
                    code = self._ids.get(eid)
                    if code is None:
                        if self.unmapped == 0:
                            self.first_unmapped = at
                        self.unmapped += 1
                        code = self._ids[eid] = self._intern_name(f"{UNMAPPED_PREFIX}{eid}>".encode())
                    key = self._name_list[code] + b"\x00" + buf[p + 32 : p + 8 + rlen]
                    arg = self._args.get(key)
                    if arg is None:
                        arg = self._args[key] = len(self._args)
                    self._ts.append(ts - (1 << 64) if ts >= 1 << 63 else ts)
                    self._pid.append(pid - (1 << 32) if pid >= 1 << 31 else pid)
                    self._name.append(code)
                    self._argid.append(arg)
                    self._offset.append(at)
                p += 8 + rlen
            elif rtype == REC_MAPPING and not self._headerless:
                if n - p < 20:
                    break
                (eid,) = u64(buf, p + 8)
                (nlen,) = u32(buf, p + 16)
                if nlen == 0 or nlen > MAX_NAME:
                    return p, at, f"event-name mapping record with a {nlen}-byte name"
                if n - p < 20 + nlen:
                    break
                name = buf[p + 20 : p + 20 + nlen]
                if not _NAME_BYTES.issuperset(name):
                    return p, at, "event-name mapping record whose name is no identifier"
                self._ids[eid] = self._intern_name(name)
                self.mappings += 1
                p += 20 + nlen
            elif rtype == HEADER_ID and not self._headerless:
                if n - p < 24:
                    break
                magic = buf[p + 8 : p + 16]
                if magic != self._magic:
                    return (
                        p,
                        at,
                        (
                            "header in the other byte order than the file's first"
                            if magic == self._magic[::-1]
                            else "header record with a wrong magic number"
                        ),
                    )
                (version,) = u64(buf, p + 16)
                if version != VERSION:
                    return (
                        p,
                        at,
                        (f"simple trace format version {version} is not supported (only version {VERSION})"),
                    )
                self._ids.clear()
                self._header_offset.append(at)
                p += 24
            else:
                kind = "simpletrace-stap" if self._headerless else "simple"
                return p, at, f"unknown record type 0x{rtype:x}: corrupt or not a {kind} trace"
            self.records += 1
        return p, None, None

    def take(self) -> dict[str, Any]:
        """The columns, tables and counters, in the compiled walker's shape."""
        return {
            "ts": self._ts,
            "pid": self._pid,
            "name": self._name,
            "args": self._argid,
            "offset": self._offset,
            "drop_offset": self._drop_offset,
            "drop_count": self._drop_count,
            "header_offset": self._header_offset,
            "names": _table(self._name_list),
            "payloads": _table(list(self._args)),
            "records": self.records,
            "mappings": self.mappings,
            "unmapped": self.unmapped,
            "first_unmapped": self.first_unmapped,
        }


def _table(items: list[bytes]) -> tuple[int, bytes, bytes]:
    lengths = np.fromiter((len(x) for x in items), dtype=np.int64, count=len(items))
    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return len(items), offsets.tobytes(), b"".join(items)


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
