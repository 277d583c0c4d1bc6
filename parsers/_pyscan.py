"""Pure-Python twin of the compiled scanner in ``_scan.c``.

Used when the C extension was not built (no compiler on the machine), and by the tests as an
independent implementation: both must split every line identically. Same interface: ``scan``,
``take_rows``, ``table``.
"""

from __future__ import annotations

import re
from array import array
from datetime import datetime

import numpy as np

KIND_EVENT, KIND_OTHER, KIND_BARE = 0, 1, 2
ERA_NONE, ERA_TID_AT, ERA_ISO, ERA_THREAD_INFO, ERA_STAP = 0, 1, 2, 3, 4
FLAG_BAD_UTF8, FLAG_TEXT_CUT, FLAG_NO_NEWLINE = 1, 2, 4
OTHER_TEXT_MAX = 1024
_NO_TIME = -(2**63)

_TID_AT = re.compile(rb"(\d{1,19})@(\d{1,19})\.(\d{1,9}):")
_STAP = re.compile(rb"(\d{1,19})@(\d{1,19}) ")
_ISO = re.compile(
    rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) "
)
_THREAD_INFO = re.compile(rb"(?:\[(?:(?!\] ).)*\] )?[^ (]+\((\d{1,19}):(.*?)\): ", re.S)
_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?= |$)")


class _Interner:
    def __init__(self) -> None:
        self.ids: dict[bytes, int] = {}
        self.items: list[bytes] = []

    def intern(self, b: bytes) -> int:
        i = self.ids.get(b)
        if i is None:
            i = len(self.items)
            self.ids[b] = i
            self.items.append(b)
        return i

    def export(self) -> tuple[int, bytes, bytes]:
        offsets = np.zeros(len(self.items) + 1, dtype=np.int64)
        if self.items:
            np.cumsum([len(b) for b in self.items], out=offsets[1:])
        out = (len(self.items), offsets.tobytes(), b"".join(self.items))
        self.__init__()  # type: ignore[misc]
        return out


def _clean(b: bytes) -> tuple[bytes, bool]:
    if b"\x00" not in b:
        try:
            b.decode("utf-8")
            return b, False
        except UnicodeDecodeError:
            pass
    fixed = b.decode("utf-8", "replace").replace("\x00", "\ufffd").encode("utf-8")
    return fixed, True


def _iso_ns(m: re.Match[bytes]) -> int | None:
    y, mo, d, h, mi, s = (int(x) for x in m.group(1, 2, 3, 4, 5, 6))
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 60):
        return None
    frac = m.group(7) or b""
    frac_ns = int(frac.ljust(9, b"0")) if frac else 0
    days = (datetime(y, mo, 1).toordinal() - datetime(1970, 1, 1).toordinal()) + d - 1
    off = m.group(8)
    offset = 0
    if off != b"Z":
        sign = 1 if off[:1] == b"+" else -1
        offset = sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)
    return ((days * 86400 + h * 3600 + mi * 60 + s - offset) * 1_000_000_000) + frac_ns


class Scanner:
    """Splits QEMU text trace lines into interned columns (pure Python)."""

    def __init__(self) -> None:
        self._tables = {k: _Interner() for k in ("names", "bodies", "threads", "others")}
        self._body_name: list[int] = []
        self._body_nlen: list[int] = []
        self._reset_rows()

    def _reset_rows(self) -> None:
        self.kind, self.era, self.flags = array("B"), array("B"), array("B")
        self.ts = array("q")
        self.tid, self.tname, self.name, self.args = array("i"), array("i"), array("i"), array("i")

    def scan(self, data: bytes, default_tid: int = -1, final: bool = False) -> int:
        lines = bytes(data).split(b"\n")
        last_without_newline = lines[-1] != b""
        if not last_without_newline:
            lines.pop()
        for i, line in enumerate(lines):
            extra = FLAG_NO_NEWLINE if (final and last_without_newline and i == len(lines) - 1) else 0
            self._line(line, default_tid, extra)
        return len(lines)

    def _line(self, line: bytes, default_tid: int, flags: int) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        era, ts, tid, tname = ERA_NONE, _NO_TIME, default_tid, -1
        body: int | None = None
        m = _TID_AT.match(line)
        if m and int(m.group(1)) <= 0x7FFFFFFF:
            era, tid = ERA_TID_AT, int(m.group(1))
            ts = int(m.group(2)) * 1_000_000_000 + int(m.group(3).ljust(9, b"0"))
            body = m.end()
        elif (m := _STAP.match(line)) and int(m.group(1)) <= 0x7FFFFFFF and int(m.group(2)) < 2**63:
            era, tid, ts = ERA_STAP, int(m.group(1)), int(m.group(2))
            body = m.end()
        elif (m := _ISO.match(line)) and (iso := _iso_ns(m)) is not None:
            era, ts, body = ERA_ISO, iso, m.end()
            t = _THREAD_INFO.match(line, body)
            if t and int(t.group(1)) <= 0x7FFFFFFF:
                era, tid, body = ERA_THREAD_INFO, int(t.group(1)), t.end()
                name, bad = _clean(t.group(2))
                flags |= FLAG_BAD_UTF8 if bad else 0
                tname = self._tables["threads"].intern(name)
        if body is None and (t := _THREAD_INFO.match(line)) and int(t.group(1)) <= 0x7FFFFFFF:
            era, tid, body = ERA_THREAD_INFO, int(t.group(1)), t.end()
            name, bad = _clean(t.group(2))
            flags |= FLAG_BAD_UTF8 if bad else 0
            tname = self._tables["threads"].intern(name)
        start = body if body is not None else 0
        n = _NAME.match(line, start)
        if n:
            kind = KIND_EVENT if body is not None else KIND_BARE
            whole, bad = _clean(line[start:])
            flags |= FLAG_BAD_UTF8 if bad else 0
            bodies = self._tables["bodies"]
            before = len(bodies.items)
            args_id = bodies.intern(whole)
            if len(bodies.items) != before:
                self._body_name.append(self._tables["names"].intern(n.group(0)))
                self._body_nlen.append(n.end() - start)
            name_id = self._body_name[args_id]
        else:
            kind, name_id = KIND_OTHER, -1
            text = line
            if len(text) > OTHER_TEXT_MAX:
                text, flags = text[:OTHER_TEXT_MAX], flags | FLAG_TEXT_CUT
            text, bad = _clean(text)
            flags |= FLAG_BAD_UTF8 if bad else 0
            args_id = self._tables["others"].intern(text)
        self.kind.append(kind)
        self.era.append(era)
        self.flags.append(flags)
        self.ts.append(ts)
        self.tid.append(tid)
        self.tname.append(tname)
        self.name.append(name_id)
        self.args.append(args_id)

    def take_rows(self) -> dict[str, bytes]:
        out = {
            "kind": self.kind.tobytes(),
            "era": self.era.tobytes(),
            "flags": self.flags.tobytes(),
            "ts": self.ts.tobytes(),
            "tid": self.tid.tobytes(),
            "tname": self.tname.tobytes(),
            "name": self.name.tobytes(),
            "args": self.args.tobytes(),
        }
        self._reset_rows()
        return out

    def table(self, which: str) -> tuple[int, bytes, bytes]:
        if which != "args":
            return self._tables[which].export()
        bodies = self._tables["bodies"]
        args = _Interner()
        args.items = [
            b[nlen + 1 :] if len(b) > nlen else b""
            for b, nlen in zip(bodies.items, self._body_nlen, strict=True)
        ]
        self._tables["bodies"] = _Interner()
        self._body_name, self._body_nlen = [], []
        return args.export()
