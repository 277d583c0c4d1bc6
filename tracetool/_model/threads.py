"""Processes and threads of a trace: who emitted each event, under which name and role.

Names come, in order, from the trace line itself (thread-info prefix, ftrace comm, LTTng
procname), from a sidecar map (``--threads``), then from inference on the events a thread
emitted. Roles follow the data table ``tracetool/_model/threads.toml``.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from parsers.inputs import strip_compression
from parsers.segment import ARGS_TEXT, NO_TIME, value_counts
from tracetool._model.assemble import Columns
from tracetool._model.sidecar import ThreadMap

ROLES = (
    "main",
    "load",
    "listen",
    "fault",
    "preempt",
    "recv_N",
    "send_N",
    "return-path",
    "vcpu",
    "save",
    "colo",
    "other",
    "unknown",
)
_GENERIC_NAMES = re.compile(r"qemu-system-.*|qemu-kvm|qemu|<\.\.\.>|")


@dataclass(frozen=True)
class RoleRules:
    """The contents of tracetool/_model/threads.toml, compiled."""

    by_name: list[tuple[re.Pattern[str], str]]
    by_event: list[tuple[frozenset[str], str, str | None]]
    load_events: frozenset[str]
    main_events: frozenset[str]
    main_prefixes: tuple[str, ...]
    side_events: dict[str, frozenset[str]]


@cache
def role_rules() -> RoleRules:
    """Loads the role rules shipped with migtrace."""
    text = resources.files("tracetool._model").joinpath("threads.toml").read_text("utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    return RoleRules(
        by_name=[(re.compile(r["pattern"]), r["role"]) for r in data.get("name", [])],
        by_event=[(frozenset(r["events"]), r["role"], r.get("id_arg")) for r in data.get("event", [])],
        load_events=frozenset(data["load"]["events"]),
        main_events=frozenset(data["main"]["events"]),
        main_prefixes=tuple(data["main"].get("event_prefixes", [])),
        side_events={k: frozenset(v) for k, v in data["side"].items()},
    )


def role_from_name(name: str | None) -> str | None:
    """The role a thread name implies (``recv_3`` for ``mig/dst/recv_3``), or None."""
    if not name:
        return None
    for pattern, role in role_rules().by_name:
        m = pattern.fullmatch(name)
        if m:
            if role.endswith("_N"):
                n = m.groupdict().get("n")
                return role[:-1] + n if n is not None else role
            return role
    return None


def is_generic_name(name: str | None) -> bool:
    """True for names that say nothing about the thread (the process name, ftrace's <...>)."""
    return name is None or bool(_GENERIC_NAMES.fullmatch(name))


@dataclass
class ThreadTable:
    """Per-row thread index and the tables of processes and threads."""

    row_thread: np.ndarray  # int32 per event: index into threads
    threads: pd.DataFrame
    processes: pd.DataFrame


_BLOCK = 1 << 16
"""Rows per pass where a whole-column temporary is not needed (keeps memory flat)."""


def _dense_codes(key: np.ndarray, add: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..k-1 for the distinct values of ``key + add`` (non-negative), in value order,
    and those values.

    Keys here are small (process index and TID), so a lookup table beats hashing; the only
    column-sized array made is the codes.
    """
    if not len(key):
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
    lo, hi = int(key.min()), int(key.max())
    if hi - lo > 64_000_000:
        codes, uniques = pd.factorize(key, sort=True)
        return codes.astype(np.int32), np.asarray(uniques, dtype=np.int64) + add
    present = np.zeros(hi - lo + 1, dtype=bool)
    codes = np.empty(len(key), dtype=np.int32)
    for start in range(0, len(key), _BLOCK):
        present[key[start : start + _BLOCK] - lo] = True
    lut = np.cumsum(present, dtype=np.int32) - 1
    for start in range(0, len(key), _BLOCK):
        codes[start : start + _BLOCK] = lut[key[start : start + _BLOCK] - lo]
    return codes, np.flatnonzero(present).astype(np.int64) + lo + add


def _thread_codes(tid: np.ndarray, proc: np.ndarray, nprocs: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Dense thread codes per row, each thread's key ``process * span + tid + 1``, and the span.

    Any negative tid is "unknown" (-1). One process, the common case, keys on the tid itself.
    """
    if len(tid) and int(tid.min()) < -1:
        tid = np.maximum(tid, -1)
    top = int(tid.max()) if len(tid) else -1
    span = top + 2
    if nprocs <= 1:
        codes, keys = _dense_codes(tid, add=1)
        return codes, keys, span
    codes, keys = _dense_codes(proc.astype(np.int64) * span + (tid.astype(np.int64) + 1))
    return codes, keys, span


def _process_keys(c: Columns) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """Process index per row: input group (per-thread files share one) and pid."""
    group_of_source = []
    groups: dict[str, int] = {}
    for info in c.inputs:
        g = info.process_hint or info.path
        group_of_source.append(groups.setdefault(g, len(groups)))
    group_names = {v: k for k, v in groups.items()}
    gsrc = np.asarray(group_of_source, dtype=np.int64)
    if not len(c.pid) or int(c.pid.max()) < 0:
        present = np.zeros(len(gsrc), dtype=bool)
        one_source = c.source.ndim == 1 and c.source.strides[0] == 0  # one input: a 0-stride view
        present[c.source[:1] if one_source else c.source] = True
        used_groups = sorted({int(gsrc[s]) for s in np.flatnonzero(present).tolist()})
        if len(used_groups) == 1:  # one process: one read-only 0 for every row
            return np.broadcast_to(np.int32(0), c.source.shape), [(group_names[used_groups[0]], -1)]
        index = {g: i for i, g in enumerate(used_groups)}
        lut = np.array([index.get(int(g), 0) for g in gsrc], dtype=np.int32)
        return lut[c.source], [(group_names[g], -1) for g in used_groups]
    # Any negative pid is "unknown" (-1), so the pid fills the low 32 bits exactly.
    key = gsrc[c.source] << 32 | (np.maximum(c.pid.astype(np.int64), -1) + 1)
    codes, uniques = _dense_codes(key)
    procs = [(group_names[int(u) >> 32], int(u & 0xFFFFFFFF) - 1) for u in uniques.tolist()]
    return codes, procs


def _match_sidecar(tids: set[int], pid: int, maps: list[ThreadMap]) -> ThreadMap | None:
    best, best_overlap = None, 0
    for m in maps:
        if m.pid is not None and pid >= 0 and m.pid == pid:
            return m
        overlap = len(tids & set(m.names))
        if overlap > best_overlap:
            best, best_overlap = m, overlap
    return best


@dataclass
class _Proc:
    group: str
    pid: int | None
    side: str | None
    sidecar: ThreadMap | None
    members: list[int]  # thread indices
    label: str = ""
    load_tid: int | None = None


class _Evidence:
    """Which event names each thread emitted (a threads x names presence matrix)."""

    def __init__(self, c: Columns, row_thread: np.ndarray, nthreads: int) -> None:
        self.c = c
        self.row_thread = row_thread
        nn = max(len(c.names), 1)
        if nthreads * nn <= 50_000_000:
            flat = np.zeros(nthreads * nn, dtype=bool)
            for start in range(0, len(row_thread), _BLOCK):
                block = slice(start, start + _BLOCK)
                flat[row_thread[block].astype(np.int64) * nn + c.name[block]] = True
            self.present = flat.reshape(nthreads, nn)
        else:
            self.present = np.zeros((nthreads, nn), dtype=bool)
        self.index = {n: i for i, n in enumerate(c.names)}

    def count(self, t: int, events: frozenset[str]) -> int:
        """How many of ``events`` thread ``t`` emitted."""
        return sum(int(self.present[t, self.index[e]]) for e in events if e in self.index)

    def first_text(self, t: int, events: frozenset[str]) -> str | None:
        """The argument text of the first of ``events`` thread ``t`` emitted (text formats)."""
        codes = [self.index[e] for e in events if e in self.index]
        if not codes:
            return None
        rows = np.flatnonzero(np.isin(self.c.name, codes) & (self.row_thread == t))
        if not len(rows):
            return None
        code = int(self.c.args[rows[0]])
        for table in self.c.args_tables:
            if table.offset <= code < table.offset + len(table.table) and table.encoding == ARGS_TEXT:
                return str(table.table.values[code - table.offset].as_py())
        return None

    def prefixed(self, t: int, prefixes: tuple[str, ...]) -> int:
        """How many event names starting with one of ``prefixes`` thread ``t`` emitted."""
        ids = [i for n, i in self.index.items() if n.startswith(prefixes)]
        return int(self.present[t, ids].sum()) if ids else 0


def _numbered(role: str, id_arg: str | None, t: int, events: frozenset[str], ev: _Evidence) -> str:
    """``recv_N`` becomes ``recv_3`` when the event that names the role prints the channel id."""
    if not role.endswith("_N") or id_arg is None:
        return role
    text = ev.first_text(t, events)
    m = re.search(r"\d+", text) if text else None
    return role[:-1] + m.group(0) if m else role


def _time_spans(c: Columns, row_thread: np.ndarray, nthreads: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last timestamp of each thread (rows are in time order)."""
    first = np.full(nthreads, NO_TIME, dtype=np.int64)
    last = np.full(nthreads, NO_TIME, dtype=np.int64)
    lo = _edge_rows(c.ts, row_thread, nthreads, from_end=False)
    hi = _edge_rows(c.ts, row_thread, nthreads, from_end=True)
    seen = hi >= 0
    first[seen] = c.ts[lo[seen]]
    last[seen] = c.ts[hi[seen]]
    return first, last


def _edge_rows(ts: np.ndarray, row_thread: np.ndarray, nthreads: int, from_end: bool) -> np.ndarray:
    """Each thread's first timed row (its last with ``from_end``), -1 where it has none.

    Walks the rows a block at a time from that end and stops once every thread was met: most
    threads show up in the first blocks, so this reads a fraction of the trace, and a block in
    which no thread is new costs one count of its threads."""
    n = len(ts)
    out = np.full(nthreads, -1, dtype=np.int64)
    missing = nthreads
    starts = range(0, n, _BLOCK)
    for start in reversed(starts) if from_end else starts:
        if not missing:
            break
        timed = np.flatnonzero(ts[start : start + _BLOCK] != NO_TIME)
        threads = row_thread[start : start + _BLOCK][timed]
        new = np.flatnonzero((np.bincount(threads, minlength=nthreads) > 0) & (out < 0))
        for t in new.tolist():
            at = np.flatnonzero(threads == t)
            out[t] = start + int(timed[at[-1] if from_end else at[0]])
        missing -= len(new)
    return out


def _line_names(c: Columns, row_thread: np.ndarray, nthreads: int) -> list[str | None]:
    """The most recent thread name each thread's own lines gave (ftrace comm, procname...)."""
    out: list[str | None] = [None] * nthreads
    named = c.line_thread >= 0
    if named.any():
        last_idx = pd.Series(np.flatnonzero(named)).groupby(row_thread[named]).max()
        for t, i in zip(last_idx.index.tolist(), last_idx.to_numpy().tolist(), strict=True):
            nm = c.line_thread_names[int(c.line_thread[i])]
            out[t] = None if nm == "<...>" else nm
    return out


def _processes(
    procs: list[tuple[str, int]], t_proc: np.ndarray, t_tid: np.ndarray, maps: list[ThreadMap], ev: _Evidence
) -> list[_Proc]:
    rules = role_rules()
    out = []
    for p, (group, pid) in enumerate(procs):
        members = [int(t) for t in np.flatnonzero(t_proc == p)]
        tids = {int(t_tid[t]) for t in members if t_tid[t] >= 0}
        m = _match_sidecar(tids, pid, maps)
        dst = sum(ev.count(t, rules.side_events["dst"]) for t in members)
        src = sum(ev.count(t, rules.side_events["src"]) for t in members)
        side = m.side if m and m.side else ("dst" if dst > src else "src" if src > dst else None)
        out.append(_Proc(group, pid if pid >= 0 else (m.pid if m else None), side, m, members))
    seen: dict[str, int] = {}
    for proc in out:
        base = proc.side or _short_group(proc.group)
        seen[base] = seen.get(base, 0) + 1
        proc.label = base if seen[base] == 1 else f"{base}#{seen[base]}"
    return out


def _pick_main(
    proc: _Proc, real: list[int], t_tid: np.ndarray, names: list[str | None], roles: list[str], ev: _Evidence
) -> int | None:
    """The main thread: TID == pid, the sidecar's word, main-loop events, or the lowest TID
    among threads that carry only the process name."""
    rules = role_rules()
    for want in (proc.pid, proc.sidecar.main_tid if proc.sidecar else None):
        if want is not None:
            hit = next((t for t in real if t_tid[t] == want), None)
            if hit is not None:
                return hit
    scored = [
        (ev.count(t, rules.main_events) + ev.prefixed(t, rules.main_prefixes), -int(t_tid[t]), t)
        for t in real
        if roles[t] in ("", "main")
    ]
    scored = [x for x in scored if x[0] > 0]
    if scored:
        return max(scored)[2]
    generic = [t for t in real if is_generic_name(names[t]) and not roles[t]]
    return min(generic, key=lambda t: int(t_tid[t])) if generic else None


def _assign_roles(
    proc: _Proc,
    t_tid: np.ndarray,
    counts: np.ndarray,
    names: list[str | None],
    sources: list[str | None],
    roles: list[str],
    ev: _Evidence,
) -> None:
    """Fills roles of one process's threads; sets its load thread."""
    rules = role_rules()
    real = [t for t in proc.members if t_tid[t] >= 0]
    for t in proc.members:
        if t_tid[t] < 0:  # events that carried no thread id (e.g. the tracer's own markers)
            roles[t] = "unknown"
    if not real:
        return
    main = _pick_main(proc, real, t_tid, names, roles, ev)
    if main is not None and roles[main] in ("", "main"):
        roles[main] = "main"
    for t in real:
        if not roles[t]:
            roles[t] = next(
                (
                    _numbered(role, id_arg, t, events, ev)
                    for events, role, id_arg in rules.by_event
                    if ev.count(t, events)
                ),
                "",
            )
    candidates = [t for t in real if ev.count(t, rules.load_events) and roles[t] in ("", "main", "load")]
    if candidates:
        load = max(
            candidates, key=lambda t: (roles[t] == "load", ev.count(t, rules.load_events), int(counts[t]))
        )
        if not roles[load]:
            roles[load] = "load"
        proc.load_tid = int(t_tid[load])
    for t in real:  # a thread nothing named keeps no name: its role says what it did
        roles[t] = roles[t] or "other"


def build_thread_table(c: Columns, maps: list[ThreadMap]) -> ThreadTable:
    """Works out processes, threads, names and roles from the merged columns."""
    proc, procs = _process_keys(c)
    row_thread, tu, tid_span = _thread_codes(c.tid, proc, len(procs))
    nthreads = len(tu)
    t_proc = (tu // tid_span).astype(np.int32)
    t_tid = tu % tid_span - 1
    counts = value_counts(row_thread, nthreads)
    first, last = _time_spans(c, row_thread, nthreads)
    ev = _Evidence(c, row_thread, nthreads)
    line_name = _line_names(c, row_thread, nthreads)
    processes = _processes(procs, t_proc, t_tid, maps, ev)

    names: list[str | None] = []
    sources: list[str | None] = []
    roles: list[str] = []
    for t in range(nthreads):
        sidecar = processes[int(t_proc[t])].sidecar
        tid = int(t_tid[t])
        nm, src = line_name[t], ("line" if line_name[t] else None)
        side_name = sidecar.names.get(tid) if (sidecar and tid >= 0) else None
        if (nm is None or is_generic_name(nm)) and side_name:
            nm, src = side_name, "sidecar"
        names.append(nm)
        sources.append(src)
        roles.append(role_from_name(nm) or "")
    for p in processes:
        _assign_roles(p, t_tid, counts, names, sources, roles, ev)

    carries_load = np.zeros(nthreads, dtype=bool)
    for i, p in enumerate(processes):
        if p.load_tid is not None:
            carries_load[(t_proc == i) & (t_tid == p.load_tid)] = True
    labels = [p.label for p in processes]
    threads = pd.DataFrame(
        {
            "process": pd.Categorical([labels[i] for i in t_proc.tolist()], categories=labels),
            "pid": pd.array([processes[i].pid for i in t_proc.tolist()], dtype="Int64"),
            "tid": pd.array([int(x) if x >= 0 else None for x in t_tid.tolist()], dtype="Int64"),
            "name": pd.array(names, dtype="string"),
            "name_source": pd.array(sources, dtype="string"),
            "role": pd.Categorical(roles, categories=_role_categories(roles)),
            "carries_load": carries_load,
            "events": counts.astype(np.int64),
            "first_ns": pd.array([int(x) if x != NO_TIME else None for x in first.tolist()], dtype="Int64"),
            "last_ns": pd.array([int(x) if x != NO_TIME else None for x in last.tolist()], dtype="Int64"),
        }
    )
    proc_frame = pd.DataFrame(
        {
            "label": labels,
            "group": [p.group for p in processes],
            "pid": pd.array([p.pid for p in processes], dtype="Int64"),
            "side": [p.side for p in processes],
            "load_tid": pd.array([p.load_tid for p in processes], dtype="Int64"),
        }
    )
    return ThreadTable(row_thread=row_thread, threads=threads, processes=proc_frame)


def _role_categories(roles: list[str]) -> list[str]:
    extra = sorted({r for r in roles if r not in ROLES or r in ("recv_N", "send_N")})
    return [r for r in ROLES if r not in ("recv_N", "send_N")] + extra


def _short_group(group: str) -> str:
    return strip_compression(os.path.basename(group)).replace("%d", "N")
