"""A plain reading of COLO trace lines, written apart from migtrace's code, for the COLO tests:
split the log lines, pick the COLO thread's events by their text, and walk each checkpoint
with string comparisons. The tests compare migtrace's results with what this finds."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import read_lines

LINE_72 = re.compile(rb"^(\d+)@(\d+)\.(\d+):(\S+) ?(.*)$")
LINE_ISO = re.compile(rb"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z (\S+) ?(.*)$")


@dataclass(frozen=True)
class Line:
    """One event line: thread id, time in ns, event name, argument text, line number."""

    tid: int
    ns: int
    name: str
    args: str
    number: int


def _frac_ns(digits: bytes) -> int:
    return int(digits.decode().ljust(9, "0")[:9])


def parse_72(raw: bytes, number: int) -> Line | None:
    """``TID@SEC.USEC:name args`` -> Line (None for other lines)."""
    m = LINE_72.match(raw)
    if not m:
        return None
    ns = int(m[2]) * 1_000_000_000 + _frac_ns(m[3])
    return Line(int(m[1]), ns, m[4].decode(), m[5].decode("utf-8", "replace").rstrip(), number)


def parse_iso(raw: bytes, number: int, tid: int) -> Line | None:
    """``YYYY-MM-DDTHH:MM:SS[.f]Z name args`` of a per-thread file -> Line."""
    m = LINE_ISO.match(raw)
    if not m:
        return None
    secs = calendar.timegm((*(int(x) for x in m.groups()[:6]), 0, 0, 0))
    ns = secs * 1_000_000_000 + (_frac_ns(m[7]) if m[7] else 0)
    return Line(tid, ns, m[8].decode(), m[9].decode("utf-8", "replace").rstrip(), number)


def read_72(path: str) -> list[Line]:
    """Every event line of a 7.2 log file, in file order."""
    return [x for i, raw in enumerate(read_lines(path), 1) if (x := parse_72(raw, i)) is not None]


def read_per_thread(folder: str, prefix: str) -> list[Line]:
    """Every event line of the per-thread files ``PREFIX.<TID>.trace*``, ordered by time
    (stable: a thread's own lines keep their order)."""
    out: list[Line] = []
    for p in sorted(Path(folder).glob(f"{prefix}.*.trace*")):
        tid = int(p.name.split(".")[1])
        out.extend(x for i, raw in enumerate(read_lines(str(p)), 1) if (x := parse_iso(raw, i, tid)))
    return sorted(out, key=lambda x: x.ns)


def of_thread(lines: Iterable[Line], tid: int) -> list[Line]:
    """The lines of one thread, in their order."""
    return [x for x in lines if x.tid == tid]


def busiest_colo_thread(lines: Iterable[Line]) -> int:
    """The thread with the most colo_send_message / colo_receive_message lines."""
    counts: dict[int, int] = {}
    for x in lines:
        if x.name in ("colo_send_message", "colo_receive_message"):
            counts[x.tid] = counts.get(x.tid, 0) + 1
    return max(counts, key=lambda t: counts[t])


def msg(x: Line, verb: str, name: str) -> bool:
    """Whether a line is the COLO message ``name`` sent ("Send") or received ("Receive")."""
    event = "colo_send_message" if verb == "Send" else "colo_receive_message"
    return x.name == event and x.args == f"{verb} '{name}' message"


@dataclass
class PlainCheckpoint:
    """What the plain walk found for one checkpoint (ns; None when absent)."""

    request: int
    times: dict[str, int] = field(default_factory=dict)
    pages: int | None = None

    def get(self, key: str) -> int | None:
        return self.times.get(key)


def walk_secondary(colo: Iterable[Line]) -> list[PlainCheckpoint]:
    """The secondary's checkpoints from its COLO thread's lines."""
    out: list[PlainCheckpoint] = []
    cur: PlainCheckpoint | None = None
    for x in colo:
        if msg(x, "Receive", "checkpoint-request"):
            cur = PlainCheckpoint(x.ns)
            out.append(cur)
        elif cur is None:
            continue
        elif x.name == "colo_vm_state_change" and x.args == "Change 'run' => 'stop'":
            cur.times.setdefault("stop", x.ns)
        elif msg(x, "Receive", "vmstate-send"):
            cur.times.setdefault("ram_start", x.ns)
        elif x.name == "ram_load_complete":
            cur.times["ram_end"] = x.ns
        elif x.name == "colo_flush_ram_cache_begin":
            cur.times.setdefault("flush_begin", x.ns)
            cur.pages = int(x.args.split()[-1])
        elif x.name == "colo_flush_ram_cache_end":
            cur.times.setdefault("flush_end", x.ns)
        elif x.name == "colo_vm_state_change" and x.args == "Change 'stop' => 'run'":
            cur.times.setdefault("resume", x.ns)
        elif msg(x, "Send", "vmstate-loaded"):
            cur.times.setdefault("loaded", x.ns)
    return out


def walk_primary(colo: Iterable[Line]) -> list[PlainCheckpoint]:
    """The primary's checkpoints from its checkpoint thread's lines; ``pages`` adds up the
    dirty pages of the bitmap syncs between the request and 'vmstate-loaded'."""
    out: list[PlainCheckpoint] = []
    cur: PlainCheckpoint | None = None
    for x in colo:
        if msg(x, "Send", "checkpoint-request"):
            cur = PlainCheckpoint(x.ns)
            out.append(cur)
        elif cur is None:
            continue
        elif x.name == "colo_vm_state_change" and x.args == "Change 'run' => 'stop'":
            cur.times.setdefault("stop", x.ns)
        elif x.name == "migration_bitmap_sync_end" and "loaded" not in cur.times:
            cur.pages = (cur.pages or 0) + int(x.args.split()[-1])
        elif msg(x, "Receive", "vmstate-loaded"):
            cur.times.setdefault("loaded", x.ns)
        elif x.name == "colo_vm_state_change" and x.args == "Change 'stop' => 'run'":
            cur.times.setdefault("resume", x.ns)
    return out


def us(a: int | None, b: int | None) -> float | None:
    """b - a in µs, None when either is missing."""
    return None if a is None or b is None else (b - a) / 1000.0


# ---------------------------------------------------------------------------------- BQL
MUTEX = re.compile(r"(?:taken|released|waiting on) mutex (0x[0-9a-f]+) \((.*)\)")


def bql_address(lines: Iterable[Line]) -> str:
    """The mutex released most often from a ``cpus.c`` site (the BQL)."""
    counts: dict[str, int] = {}
    for x in lines:
        if x.name == "qemu_mutex_unlock":
            m = MUTEX.search(x.args)
            if m and m[2].rsplit(":", 1)[0].endswith("cpus.c"):
                counts[m[1]] = counts.get(m[1], 0) + 1
    return max(counts, key=lambda a: counts[a])


def intervals(lines: Iterable[Line], addr: str, start: str, end: str) -> Iterator[tuple[int, int, int]]:
    """(tid, start, end) of every ``start`` -> next ``end`` event on ``addr`` of one thread."""
    open_at: dict[int, int] = {}
    for x in lines:
        if x.name not in (start, end):
            continue
        m = MUTEX.search(x.args)
        if not m or m[1] != addr:
            continue
        if x.name == start:
            open_at[x.tid] = x.ns
        elif x.tid in open_at:
            yield x.tid, open_at.pop(x.tid), x.ns


def clipped_us(spans: Iterable[tuple[int, int]], a: int, b: int) -> float:
    """µs of ``spans`` inside [a, b]."""
    return sum(max(0, min(e, b) - max(s, a)) for s, e in spans) / 1000.0
