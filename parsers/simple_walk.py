"""The record walk of simple-backend files: the compiled ``_simple.c`` or its Python twin.

Both walk the records of a buffer (the format is described in ``parsers/simple.py``) into the
same columns (time, pid, event-name code, payload code, file offset), interned tables (event
names, (event, payload bytes) pairs) and counters, and stop at the first record that cannot be
right with the same message. The Python twin runs when the extension was not built, and in the
tests as an independent implementation of the same walk.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

try:
    from parsers import _simple as _compiled  # type: ignore[attr-defined]
except ImportError:  # no compiler at install time: PyWalker does the same work
    _compiled = None

HEADER_ID = 0xFFFFFFFFFFFFFFFF
MAGIC = 0xF2B177CB0AA429B4
VERSION = 4
REC_MAPPING, REC_EVENT = 0, 1
DROPPED_ID = 0xFFFFFFFFFFFFFFFE
MAX_RECORD = 256 * 1024  # QEMU's whole trace ring; real records stay under 6 KiB
MAX_NAME = 1024
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
