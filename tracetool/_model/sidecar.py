"""Thread-name sidecar files: which TID was which thread, sampled outside QEMU.

Accepted shapes (JSON):
- a flat map ``{"1234": "mig/dst/main", ...}``;
- ``{"tid_to_name": {...}}`` with optional ``pid``, ``role`` ("src"/"dst"), ``main_thread_tid``;
  ``tid_to_name_merged`` is preferred when present (it also holds short-lived threads);
- ``{"threads": {"1234": {"names": [{"name": ...}, ...] or ["..."]}}}``: the last name wins,
  since QEMU threads start with their creator's name and are renamed right after.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tracetool.errors import UsageError


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


def _tid(key: object, path: str) -> int:
    try:
        return int(str(key))
    except ValueError:
        raise UsageError(f"{path}: thread id {key!r} is not a number") from None


def _last_name(entry: Any) -> str | None:
    names = entry.get("names") if isinstance(entry, Mapping) else entry
    if isinstance(names, list) and names:
        last = names[-1]
        if isinstance(last, Mapping):
            last = last.get("name")
        return str(last) if last is not None else None
    if isinstance(entry, Mapping) and "name" in entry:
        return str(entry["name"])
    return None


def parse_thread_map(data: Any, path: str = "<threads>") -> ThreadMap:
    """Builds a ThreadMap from decoded JSON (see the module docstring for the shapes)."""
    if not isinstance(data, Mapping):
        raise UsageError(f"{path}: expected a JSON object mapping thread ids to names")
    tm = ThreadMap(path)
    for key in ("tid_to_name_merged", "tid_to_name"):
        if isinstance(data.get(key), Mapping):
            tm.names = {_tid(k, path): str(v) for k, v in data[key].items()}
            break
    else:
        threads = data.get("threads")
        if isinstance(threads, Mapping):
            for k, entry in threads.items():
                name = _last_name(entry)
                if name is not None:
                    tm.names[_tid(k, path)] = name
        elif all(isinstance(v, str) for v in data.values()) and data:
            tm.names = {_tid(k, path): str(v) for k, v in data.items()}
        else:
            raise UsageError(f"{path}: no thread names found (expected tid_to_name, threads, or a flat map)")
    if isinstance(data.get("threads"), Mapping) and tm.names:
        for k, entry in data["threads"].items():
            name = _last_name(entry)
            if name is not None:
                tm.names.setdefault(_tid(k, path), name)
    if isinstance(data.get("pid"), int):
        tm.pid = data["pid"]
    if data.get("role") in ("src", "dst"):
        tm.side = data["role"]
    tm.first_seen_s, tm.last_seen_s = _seen_range(data.get("threads"))
    main = data.get("main_thread_tid")
    if isinstance(main, int):
        tm.main_tid = main
    elif tm.pid is not None:
        tm.main_tid = tm.pid
    return tm


def _seen_range(threads: Any) -> tuple[float | None, float | None]:
    """The earliest ``first_seen`` and the latest ``last_seen`` of the sampled threads."""
    if not isinstance(threads, Mapping):
        return None, None
    first = [e.get("first_seen") for e in threads.values() if isinstance(e, Mapping)]
    last = [e.get("last_seen") for e in threads.values() if isinstance(e, Mapping)]
    first_n = [float(v) for v in first if isinstance(v, int | float) and not isinstance(v, bool)]
    last_n = [float(v) for v in last if isinstance(v, int | float) and not isinstance(v, bool)]
    if not first_n or not last_n:
        return None, None
    return min(first_n), max(last_n)


def load_thread_map(path: str) -> ThreadMap:
    """Reads a sidecar file; UsageError with the reason when it cannot be used."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    return parse_thread_map(data, path)
