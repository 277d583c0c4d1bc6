"""The rows and interned tables a scan fills, in the shapes ``_scan.c`` exports them."""

from __future__ import annotations

from array import array
from collections.abc import Callable

import numpy as np

from parsers._pyscan.text import (
    ERA_NONE,
    FLAG_BAD_UTF8,
    FLAG_NO_NEWLINE,
    FLAG_TEXT_CUT,
    KIND_OTHER,
    NO_TIME,
    OTHER_TEXT_MAX,
    clean_bytes,
)


class Interner:
    """Distinct byte strings, numbered in first-seen order."""

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


class RowStore:
    """The columns and tables of the rows scanned so far; each line grammar adds rows."""

    def __init__(self) -> None:
        self._tables = {k: Interner() for k in ("names", "bodies", "arg_texts", "threads", "others")}
        self._body_name: list[int] = []
        self._body_nlen: list[int] = []
        self._body_args: list[int] = []
        self._args_per_body = False  # LTTng: args ids are body ids (see body_added in _scan.c)
        self._reset_rows()

    def _reset_rows(self) -> None:
        self.kind, self.era, self.flags = array("B"), array("B"), array("B")
        self.ts = array("q")
        self.tid, self.tname, self.name, self.args = array("i"), array("i"), array("i"), array("i")
        self.pid, self.cpu = array("i"), array("i")  # filled by scan_ftrace / scan_lttng only

    def _scan_with(self, data: bytes, final: bool, line_fn: Callable[[bytes, int], None]) -> int:
        lines = bytes(data).split(b"\n")
        last_without_newline = lines[-1] != b""
        if not last_without_newline:
            lines.pop()
        for i, line in enumerate(lines):
            cut = final and last_without_newline and i == len(lines) - 1
            line_fn(line, FLAG_NO_NEWLINE if cut else 0)
        return len(lines)

    def _push(
        self,
        kind: int,
        era: int,
        flags: int,
        ts: int,
        tid: int,
        tname: int,
        name: int,
        args: int,
        pid: int = -1,
        cpu: int = -1,
        ext: bool = True,
    ) -> None:
        self.kind.append(kind)
        self.era.append(era)
        self.flags.append(flags)
        self.ts.append(ts)
        self.tid.append(tid)
        self.tname.append(tname)
        self.name.append(name)
        self.args.append(args)
        if ext:
            self.pid.append(pid)
            self.cpu.append(cpu)

    def _push_other(self, line: bytes, flags: int) -> None:
        text = line
        if len(text) > OTHER_TEXT_MAX:
            text, flags = text[:OTHER_TEXT_MAX], flags | FLAG_TEXT_CUT
        text, bad = clean_bytes(text)
        flags |= FLAG_BAD_UTF8 if bad else 0
        self._push(KIND_OTHER, ERA_NONE, flags, NO_TIME, -1, -1, -1, self._tables["others"].intern(text))

    def _intern_body(self, body: bytes, nlen: int, flags: int) -> tuple[int, int, int]:
        """(args id, name id, flags) of the body "name args" whose name is body[:nlen]."""
        whole, bad = clean_bytes(body)
        flags |= FLAG_BAD_UTF8 if bad else 0
        bodies = self._tables["bodies"]
        before = len(bodies.items)
        body_id = bodies.intern(whole)
        if len(bodies.items) != before:
            # The repaired name may be longer than the raw one (an LTTng event word may hold
            # any byte); a blank follows the name, so no UTF-8 sequence spans the boundary.
            clean_nlen = len(clean_bytes(body[:nlen])[0]) if bad else nlen
            self._body_name.append(self._tables["names"].intern(whole[:clean_nlen]))
            self._body_nlen.append(clean_nlen)
            start = clean_nlen + 1 if clean_nlen < len(whole) else len(whole)
            self._body_args.append(
                body_id if self._args_per_body else self._tables["arg_texts"].intern(whole[start:])
            )
        return self._body_args[body_id], self._body_name[body_id], flags

    def _intern_thread(self, name: bytes, flags: int) -> tuple[int, int]:
        clean, bad = clean_bytes(name)
        return self._tables["threads"].intern(clean), flags | (FLAG_BAD_UTF8 if bad else 0)

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
            "pid": self.pid.tobytes(),
            "cpu": self.cpu.tobytes(),
        }
        self._reset_rows()
        return out

    def copy_rows(self, dest: dict[str, np.ndarray], at: int) -> int:
        """Copies the rows scanned so far into ``dest[column]`` from row ``at`` and empties the
        columns (``_scan.c``'s ``copy_rows``)."""
        raw = self.take_rows()
        rows = len(raw["kind"])
        for key, target in dest.items():
            values = np.frombuffer(raw[key], dtype=target.dtype)
            if len(values) != rows:
                raise ValueError(f"copy_rows: column {key} holds no value per row")
            target[at : at + rows] = values
        return rows

    def absorb(self, which: str, count: int, offsets: bytes, data: bytes) -> bytes:
        """The int32 ids here of another scanner's exported table (see ``_scan.c``)."""
        key = {"names": "names", "threads": "threads", "others": "others"}.get(which)
        if which == "args" and not self._args_per_body:
            key = "arg_texts"
        if key is None:
            raise ValueError(f"cannot absorb table {which} (unknown, or malformed offsets)")
        offs = np.frombuffer(offsets, dtype=np.int64)[: count + 1].tolist()
        raw = bytes(data)
        table = self._tables[key]
        return array("i", [table.intern(raw[offs[i] : offs[i + 1]]) for i in range(count)]).tobytes()

    def table(self, which: str) -> tuple[int, bytes, bytes]:
        if which != "args":
            return self._tables[which].export()
        bodies = self._tables["bodies"]
        if self._args_per_body:
            args = Interner()
            args.items = [
                b[nlen + 1 :] if len(b) > nlen else b""
                for b, nlen in zip(bodies.items, self._body_nlen, strict=True)
            ]
        else:
            args = self._tables["arg_texts"]
        out = args.export()
        self._tables["bodies"] = Interner()
        self._body_name, self._body_nlen, self._body_args = [], [], []
        return out
