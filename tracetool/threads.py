"""Processes and threads of a trace: who emitted each event, under which name and role.

Names come, in order, from the trace line itself (thread-info prefix, ftrace comm, LTTng
procname), from a sidecar map (``--threads``), then from inference on the events a thread
emitted. Roles follow the data table ``rules/threads.toml``.
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
from parsers.segment import NO_TIME
from tracetool.assemble import Columns
from tracetool.sidecar import ThreadMap

ROLES = ("main", "load", "listen", "fault", "preempt", "recv_N", "send_N", "return-path",
         "vcpu", "save", "other", "unknown")
_GENERIC_NAMES = re.compile(r"qemu-system-.*|qemu-kvm|qemu|<\.\.\.>|")


@dataclass(frozen=True)
class RoleRules:
    """The contents of rules/threads.toml, compiled."""

    by_name: list[tuple[re.Pattern[str], str]]
    by_event: list[tuple[frozenset[str], str, str | None]]
    load_events: frozenset[str]
    main_events: frozenset[str]
    main_prefixes: tuple[str, ...]
    side_events: dict[str, frozenset[str]]


@cache
def role_rules() -> RoleRules:
    """Loads the role rules shipped with migtrace."""
    text = resources.files("tracetool").joinpath("rules/threads.toml").read_text("utf-8")
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


def _dense_codes(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..k-1 for the distinct values of a non-negative int64 key, in value order.

    Keys here are small (process index and TID), so a lookup table beats hashing.
    """
    if not len(key):
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
    lo, hi = int(key.min()), int(key.max())
    if hi - lo > 64_000_000:
        codes, uniques = pd.factorize(key, sort=True)
        return codes.astype(np.int32), np.asarray(uniques, dtype=np.int64)
    present = np.bincount(key - lo, minlength=hi - lo + 1) > 0
    uniques = np.flatnonzero(present).astype(np.int64) + lo
    lut = np.cumsum(present, dtype=np.int32) - 1
    return lut[key - lo], uniques


def _process_keys(c: Columns) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """Process index per row: input group (per-thread files share one) and pid."""
    group_of_source = []
    groups: dict[str, int] = {}
    for info in c.inputs:
        g = info.process_hint or info.path
        group_of_source.append(groups.setdefault(g, len(groups)))
    group_names = {v: k for k, v in groups.items()}
    gsrc = np.asarray(group_of_source, dtype=np.int64)
    if not (c.pid >= 0).any():
        used = np.unique(c.source) if len(c.source) else np.zeros(0, np.int64)
        used_groups = sorted({int(gsrc[s]) for s in used.tolist()})
        index = {g: i for i, g in enumerate(used_groups)}
        lut = np.array([index.get(int(g), 0) for g in gsrc], dtype=np.int32)
        return lut[c.source], [(group_names[g], -1) for g in used_groups]
    key = gsrc[c.source] << 32 | (c.pid.astype(np.int64) + 1)
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


def build_thread_table(c: Columns, maps: list[ThreadMap]) -> ThreadTable:
    """Works out processes, threads, names and roles from the merged columns."""
    rules = role_rules()
    proc, procs = _process_keys(c)
    tid_span = int(c.tid.max()) + 2 if len(c.tid) else 1
    tkey = proc.astype(np.int64) * tid_span + (c.tid.astype(np.int64) + 1)
    row_thread, tu = _dense_codes(tkey)
    nthreads = len(tu)
    t_proc = (tu // tid_span).astype(np.int32)
    t_tid = tu % tid_span - 1
    counts = np.bincount(row_thread, minlength=nthreads)

    # Rows are in time order, so a thread's first and last timed rows give its time span.
    timed = c.ts != NO_TIME
    first = np.full(nthreads, NO_TIME, dtype=np.int64)
    last = np.full(nthreads, NO_TIME, dtype=np.int64)
    if timed.any():
        rows = np.flatnonzero(timed) if not timed.all() else np.arange(len(timed))
        lo = np.full(nthreads, len(timed), dtype=np.int64)
        hi = np.full(nthreads, -1, dtype=np.int64)
        np.minimum.at(lo, row_thread[rows], rows)
        np.maximum.at(hi, row_thread[rows], rows)
        seen = hi >= 0
        first[seen] = c.ts[lo[seen]]
        last[seen] = c.ts[hi[seen]]

    # Which event names each thread emitted (for role inference and the side of a process).
    nn = max(len(c.names), 1)
    present = np.zeros((nthreads, nn), dtype=bool)
    if nthreads * nn <= 50_000_000:
        flat = np.bincount(row_thread.astype(np.int64) * nn + c.name, minlength=nthreads * nn)
        present = flat.reshape(nthreads, nn) > 0
    name_index = {n: i for i, n in enumerate(c.names)}

    def emitted(t: int, events: frozenset[str]) -> bool:
        return any(present[t, name_index[e]] for e in events if e in name_index)

    def emitted_count(t: int, events: frozenset[str]) -> int:
        return sum(int(present[t, name_index[e]]) for e in events if e in name_index)

    main_prefix_ids = [i for n, i in name_index.items() if n.startswith(rules.main_prefixes)]

    # Names given on the lines themselves: the most recent one per thread.
    line_name: list[str | None] = [None] * nthreads
    named = c.line_thread >= 0
    if named.any():
        last_idx = pd.Series(np.flatnonzero(named)).groupby(row_thread[named]).max()
        for t, i in zip(last_idx.index.tolist(), last_idx.to_numpy().tolist(), strict=True):
            nm = c.line_thread_names[int(c.line_thread[i])]
            line_name[t] = None if nm == "<...>" else nm

    # Processes: pid, sidecar, side.
    proc_rows = []
    proc_map: list[ThreadMap | None] = []
    for p, (group, pid) in enumerate(procs):
        tids = {int(x) for x in t_tid[t_proc == p] if x >= 0}
        m = _match_sidecar(tids, pid, maps)
        proc_map.append(m)
        members = np.flatnonzero(t_proc == p)
        dst = sum(emitted_count(int(t), rules.side_events["dst"]) for t in members)
        src = sum(emitted_count(int(t), rules.side_events["src"]) for t in members)
        side = m.side if m and m.side else ("dst" if dst > src else "src" if src > dst else None)
        proc_rows.append({
            "process": p, "group": group, "pid": pid if pid >= 0 else (m.pid if m else None),
            "side": side,
        })
    labels: dict[str, int] = {}
    for row in proc_rows:
        base = row["side"] or _short_group(row["group"])
        labels[base] = labels.get(base, 0) + 1
        row["label"] = base if labels[base] == 1 else f"{base}#{labels[base]}"

    names: list[str | None] = []
    sources: list[str | None] = []
    roles: list[str] = []
    for t in range(nthreads):
        p = int(t_proc[t])
        m = proc_map[p]
        tid = int(t_tid[t])
        nm, src = line_name[t], "line" if line_name[t] else None
        side_name = m.names.get(tid) if (m and tid >= 0) else None
        if (nm is None or is_generic_name(nm)) and side_name:
            nm, src = side_name, "sidecar"
        names.append(nm)
        sources.append(src)
        roles.append(role_from_name(nm) or "")

    # Main thread of each process: tid == pid, the sidecar's word, QMP/main-loop events, or the
    # lowest TID among threads carrying the generic process name.
    for p, row in enumerate(proc_rows):
        members = [int(t) for t in np.flatnonzero(t_proc == p)]
        real = [t for t in members if t_tid[t] >= 0]
        if not real:
            for t in members:
                roles[t] = "unknown"
            continue
        pid = row["pid"]
        m = proc_map[p]
        main = next((t for t in real if pid is not None and t_tid[t] == pid), None)
        if main is None and m and m.main_tid is not None:
            main = next((t for t in real if t_tid[t] == m.main_tid), None)
        if main is None:
            scored = [
                (emitted_count(t, rules.main_events)
                 + (int(present[t, main_prefix_ids].sum()) if main_prefix_ids else 0), -t_tid[t], t)
                for t in real if not roles[t] or roles[t] == "main"
            ]
            scored = [s for s in scored if s[0] > 0]
            if scored:
                main = max(scored)[2]
        if main is None:
            generic = [t for t in real if is_generic_name(names[t]) and not roles[t]]
            if generic:
                main = min(generic, key=lambda t: t_tid[t])
        if main is not None and (not roles[main] or roles[main] == "main"):
            roles[main] = "main"
            if names[main] is None:
                names[main], sources[main] = "main", "inferred"
        for t in real:
            if roles[t]:
                continue
            for events, role, _ in rules.by_event:
                if emitted(t, events):
                    roles[t] = role
                    break
        load_candidates = [t for t in real if emitted(t, rules.load_events)
                           and roles[t] in ("", "main", "load")]
        if load_candidates:
            load = max(load_candidates, key=lambda t: (roles[t] == "load", emitted_count(t, rules.load_events), counts[t]))
            if not roles[load]:
                roles[load] = "load"
                if names[load] is None:
                    names[load], sources[load] = "<load>", "inferred"
            row["load_tid"] = int(t_tid[load])
        for t in real:
            if not roles[t]:
                roles[t] = "other"
            if names[t] is None and roles[t] not in ("other",):
                names[t], sources[t] = f"<{roles[t]}>", "inferred"

    carries_load = np.zeros(nthreads, dtype=bool)
    for p, row in enumerate(proc_rows):
        lt = row.get("load_tid")
        if lt is not None:
            carries_load[(t_proc == p) & (t_tid == lt)] = True

    label_of = [r["label"] for r in proc_rows]
    threads = pd.DataFrame({
        "process": pd.Categorical([label_of[p] for p in t_proc.tolist()], categories=label_of),
        "pid": pd.array([proc_rows[p]["pid"] for p in t_proc.tolist()], dtype="Int64"),
        "tid": pd.array(np.where(t_tid >= 0, t_tid, 0), dtype="Int64"),
        "name": pd.array(names, dtype="string"),
        "name_source": pd.array(sources, dtype="string"),
        "role": pd.Categorical(roles, categories=_role_categories(roles)),
        "carries_load": carries_load,
        "events": counts.astype(np.int64),
        "first_ns": pd.array(np.where(first != NO_TIME, first, 0), dtype="Int64"),
        "last_ns": pd.array(np.where(last != NO_TIME, last, 0), dtype="Int64"),
    })
    threads.loc[t_tid < 0, "tid"] = pd.NA
    threads.loc[first == NO_TIME, ["first_ns", "last_ns"]] = pd.NA
    processes = pd.DataFrame(proc_rows).drop(columns=["process"])
    if "load_tid" not in processes:
        processes["load_tid"] = None
    processes["pid"] = pd.array(processes["pid"].tolist(), dtype="Int64")
    processes["load_tid"] = pd.array(processes["load_tid"].tolist(), dtype="Int64")
    return ThreadTable(row_thread=row_thread, threads=threads, processes=processes)


def _role_categories(roles: list[str]) -> list[str]:
    extra = sorted({r for r in roles if r not in ROLES})
    return [r for r in ROLES if r != "recv_N" and r != "send_N"] + extra


def _short_group(group: str) -> str:
    return strip_compression(os.path.basename(group)).replace("%d", "N")
