"""How a trace is laid out for display: its first and last timestamp, and its threads in lane
order (destination before source, then by role), as the Gantt chart and the Perfetto export
show them.

    >>> thread_lanes(trace)[["process", "tid", "role", "label"]]
    >>> trace_start_ns(trace)   # the time zero of every "since trace start" axis
"""

from __future__ import annotations

import re
from typing import Any, cast

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._model.trace import Trace
from tracetool.errors import NotInTrace

ROLE_ORDER = ("main", "load", "listen", "preempt", "fault", "recv_N", "vcpu")
"""Lane order of thread roles; every other role follows, then unknown threads."""
SIDE_ORDER = ("dst", "src")
"""Lane order of processes by side; processes of unknown side follow."""
LANE_COLUMNS = ["process", "tid", "role", "label", "thread", "name"]


def trace_start_ns(trace: Trace) -> int:
    """The first timestamp of the trace (ns); raises NotInTrace when it has none."""
    ts = trace.ts
    timed = ts[ts != NO_TIME]
    if not len(timed):
        raise NotInTrace(
            "not in this trace: timestamps (run QEMU with -msg timestamp=on, or use a "
            "trace backend that records them)"
        )
    return int(timed.min())


def trace_end_ns(trace: Trace) -> int:
    """The last timestamp of the trace (ns); ``NO_TIME`` when it has none."""
    ts = trace.ts
    timed = ts[ts != NO_TIME]
    return int(timed.max()) if len(timed) else NO_TIME


def thread_label(name: Any, role: str, tid: Any, carries_load: bool = False) -> str:
    """How a thread is shown: ``mig/dst/main (load, 22774)``; tid-less: ``all threads``."""
    if tid is None or tid is pd.NA:
        return "all threads (no thread ids)"
    what = f"{role}+load" if carries_load and role != "load" else role
    if name is None or name is pd.NA or (isinstance(name, float) and np.isnan(name)):
        return f"tid {int(tid)} ({what})"
    return f"{name} ({what}, {int(tid)})"


def thread_lanes(trace: Trace) -> pd.DataFrame:
    """Every thread of the trace in lane order: destination before source, then by role
    (main, load, listen, preempt, fault, recv_N, vCPU, others), then by number and TID.

    Columns: ``process``, ``tid`` (Int64, NA in traces without thread ids), ``role``, ``label``
    (with a ``dst · `` prefix when the trace has several processes), ``thread`` (the row of
    ``trace.threads``), ``name`` (the thread's own name, None when unknown). The index is the
    lane number.
    """
    th = trace.threads
    procs = _process_order(trace)
    prank = {p: i for i, p in enumerate(procs)}
    rrank = {r: i for i, r in enumerate(ROLE_ORDER)}
    rows: list[dict[str, Any]] = []
    keys: list[tuple[int, int, int, int]] = []
    for i, r in enumerate(cast(list[dict[str, Any]], th.to_dict("records"))):
        role = str(r["role"])
        name = None if pd.isna(r["name"]) else str(r["name"])
        tid = None if pd.isna(r["tid"]) else int(r["tid"])
        label = thread_label(name, role, tid, bool(r["carries_load"]))
        if len(procs) > 1:
            label = f"{r['process']} · {label}"
        keys.append(
            (
                prank[str(r["process"])],
                rrank.get(role, len(rrank) + (role == "unknown")),
                _number_in(name or ""),
                tid if tid is not None else -1,
            )
        )
        rows.append(
            {
                "process": str(r["process"]),
                "tid": tid,
                "role": role,
                "label": label,
                "thread": i,
                "name": name,
            }
        )
    order = sorted(range(len(rows)), key=keys.__getitem__)
    out = pd.DataFrame([rows[i] for i in order], columns=LANE_COLUMNS)
    out["tid"] = pd.array(out["tid"].tolist(), dtype="Int64")
    return out


def _process_order(trace: Trace) -> list[str]:
    procs = trace.processes
    sides = dict(zip(procs["label"].astype(str), procs["side"], strict=True))
    labels = [str(x) for x in trace.threads["process"].cat.categories]
    rank = {s: i for i, s in enumerate(SIDE_ORDER)}
    return sorted(labels, key=lambda lab: (rank.get(str(sides.get(lab)), len(rank)), lab))


def _number_in(name: str) -> int:
    m = re.search(r"\d+", name)
    return int(m.group()) if m else -1
