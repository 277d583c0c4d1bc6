"""Thread-name sidecar files: which TID was which thread, sampled outside QEMU.

Accepted shapes (JSON):
- a flat map ``{"1234": "mig/dst/main", ...}``;
- ``{"tid_to_name": {...}}`` with optional ``pid``, ``role`` ("src"/"dst"), ``main_thread_tid``;
  ``tid_to_name_merged`` is preferred when present (it also holds short-lived threads);
- ``{"threads": {"1234": {"names": [{"name": ...}, ...] or ["..."]}}}``: the last name wins,
  since QEMU threads start with their creator's name and are renamed right after.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from parsers.inputs import TID_MAX
from tracetool._model.jsonfile import json_int, json_number, json_text, read_json_file, shorten
from tracetool.errors import UsageError

# Seconds since the epoch that still fit int64 nanoseconds (the year 2262).
MAX_EPOCH_S = float((2**63 - 1) // 1_000_000_000)


@dataclass
class ThreadMap:
    """Names of the threads of one QEMU process, as a sidecar file gave them."""

    path: str
    names: dict[int, str] = field(default_factory=dict)
    pid: int | None = None
    side: str | None = None  # "src" or "dst" when the file says so
    main_tid: int | None = None
    # Wall-clock seconds between which the threads were seen (``threads[].first_seen`` /
    # ``last_seen``), when the file says so: the sampling covered this stretch of the process.
    first_seen_s: float | None = None
    last_seen_s: float | None = None


def _tid(key: object, where: str) -> int:
    text = str(key).strip()
    if not text.isascii() or not text.isdigit():
        raise UsageError(f"{where}: thread id {shorten(key)} is not a number")
    return _checked_id(int(text), f"{where}: thread id")


def _checked_id(value: Any, where: str) -> int:
    checked = json_int(value, where, 0, TID_MAX)
    if checked is None:
        raise UsageError(f"{where} is null, not an integer")
    return checked


def _name(value: Any, where: str) -> str | None:
    return json_text(value, where)


def _last_name(entry: Any, where: str) -> str | None:
    """The last name a ``threads`` entry lists (``names`` of objects or strings, or ``name``)."""
    if isinstance(entry, str) or entry is None:
        return _name(entry, where)
    names = entry.get("names") if isinstance(entry, Mapping) else entry
    if isinstance(entry, Mapping) and names is None:
        return _name(entry.get("name"), f"{where}.name")
    if not isinstance(names, list):
        raise UsageError(f"{where}: names is {shorten(names)}, not a list")
    if not names:
        return None
    last = names[-1]
    if isinstance(last, Mapping):
        return _name(last.get("name"), f"{where}.names[-1].name")
    return _name(last, f"{where}.names[-1]")


def _name_map(data: Mapping[str, Any], where: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for k, v in data.items():
        name = _name(v, f"{where}[{shorten(k)}]")
        if name is not None:
            out[_tid(k, where)] = name
    return out


def parse_thread_map(data: Any, path: str = "<threads>") -> ThreadMap:
    """Builds a ThreadMap from decoded JSON (see the module docstring for the shapes).

    A value of the wrong type or out of range where migtrace reads one is a UsageError naming
    the file and the key; keys migtrace does not use are not looked at."""
    if not isinstance(data, Mapping):
        raise UsageError(f"{path}: expected a JSON object mapping thread ids to names, got {shorten(data)}")
    tm = ThreadMap(path)
    threads = data.get("threads")
    if threads is not None and not isinstance(threads, Mapping):
        raise UsageError(f"{path}: threads is {shorten(threads)}, not an object")
    for key in ("tid_to_name_merged", "tid_to_name"):
        table = data.get(key)
        if table is None:
            continue
        if not isinstance(table, Mapping):
            raise UsageError(f"{path}: {key} is {shorten(table)}, not an object")
        tm.names = _name_map(table, f"{path}: {key}")
        break
    else:
        if threads is None and data and all(isinstance(v, str) for v in data.values()):
            tm.names = _name_map(data, path)
        elif threads is None:
            raise UsageError(f"{path}: no thread names found (expected tid_to_name, threads, or a flat map)")
    for k, entry in (threads or {}).items():
        name = _last_name(entry, f"{path}: threads[{shorten(k)}]")
        if name is not None:
            tm.names.setdefault(_tid(k, f"{path}: threads"), name)
    pid = data.get("pid")
    tm.pid = None if pid is None else _checked_id(pid, f"{path}: pid")
    role = _name(data.get("role"), f"{path}: role")
    if role in ("src", "dst"):
        tm.side = role
    tm.first_seen_s, tm.last_seen_s = _seen_range(threads, path)
    main = data.get("main_thread_tid")
    tm.main_tid = tm.pid if main is None else _checked_id(main, f"{path}: main_thread_tid")
    return tm


def _seen_range(threads: Mapping[str, Any] | None, path: str) -> tuple[float | None, float | None]:
    """The earliest ``first_seen`` and the latest ``last_seen`` of the sampled threads."""
    first: list[float] = []
    last: list[float] = []
    for k, entry in (threads or {}).items():
        if not isinstance(entry, Mapping):
            continue
        for key, out in (("first_seen", first), ("last_seen", last)):
            seen = json_number(entry.get(key), f"{path}: threads[{shorten(k)}].{key}", 0.0, MAX_EPOCH_S)
            if seen is not None:
                out.append(seen)
    if not first or not last:
        return None, None
    return min(first), max(last)


def checked_thread_map(m: ThreadMap) -> ThreadMap:
    """A ThreadMap built in code, held to the limits a file's is (ids in range, names fit to
    print, times that fit int64 ns): a copy, or a UsageError naming what is wrong."""
    where = m.path
    names = {
        _checked_id(tid, f"{where}: thread id"): _name(name, f"{where}: name of {tid}")
        for tid, name in m.names.items()
    }
    first, last = (
        json_number(v, f"{where}: {k}", 0.0, MAX_EPOCH_S)
        for k, v in (("first_seen_s", m.first_seen_s), ("last_seen_s", m.last_seen_s))
    )
    return ThreadMap(
        path=m.path,
        names={tid: name for tid, name in names.items() if name is not None},
        pid=None if m.pid is None else _checked_id(m.pid, f"{where}: pid"),
        side=m.side if m.side in ("src", "dst") else None,
        main_tid=None if m.main_tid is None else _checked_id(m.main_tid, f"{where}: main_tid"),
        first_seen_s=first,
        last_seen_s=last,
    )


def load_thread_map(path: str) -> ThreadMap:
    """Reads a sidecar file; UsageError with the reason when it cannot be used."""
    return parse_thread_map(read_json_file(path, "thread-name sidecar"), path)
