"""Before/after comparison of two traces of the same scenario (e.g. QEMU 7.2 vs threadify).

Side by side, with absolute and relative deltas: the destination's phase durations, the
per-device load times, the BQL hold and wait statistics of each thread (threads matched by
role, then by name), the postcopy preempt waits, the downtime and total time, and for COLO runs
the checkpoints (pauses and their parts). The load
thread of each side is named explicitly, so a change of which thread carries the incoming load
("main (coroutine) -> mig/dst/main") is the first thing a comparison says.

    >>> cmp = compare(collect(before_trace), collect(after_trace))
    >>> cmp.load_move
    'main (coroutine) → mig/dst/main'
    >>> cmp.to_json()["bql"]["threads"]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from tracetool._analyses.comparison import Comparison, Delta, PhaseDelta, Side, ThreadPair, ThreadRef
from tracetool._analyses.reportdata import ReportData, collect
from tracetool._model.trace import Trace

BQL_METRICS = (
    "holds",
    "hold_total_us",
    "hold_max_us",
    "hold_p50_us",
    "hold_p99_us",
    "waits",
    "wait_total_us",
    "wait_max_us",
)
DOWNTIME_ROWS = (
    ("downtime (source)", "switchover", "src_us"),
    ("downtime (destination)", "switchover", "dst_us"),
    ("downtime (end to end)", "switchover", "end_to_end_us"),
    ("total time (source)", "total_time", "src_us"),
    ("total time (destination)", "total_time", "dst_us"),
)
QEMU_ROWS = (("downtime (QEMU reported)", "switchover"), ("total time (QEMU reported)", "total_time"))
PAUSE_ROWS = (
    ("guest paused end to end", "end_to_end_us"),
    ("downtime QEMU reported (from the trace)", "reported_us"),
)
PREEMPT_ROWS = (("preempt thread wait", "thread_wait_us"), ("packaged-load wait", "packaged_wait_us"))
PAGE_REQUEST_ROWS = (
    ("page requests", "count"),
    ("page request p50", "p50_us"),
    ("page request p99", "p99_us"),
    ("page request max", "max_us"),
)
COLO_ROWS = (
    ("checkpoints", "checkpoints", "count"),
    ("completed", "completed", "count"),
    ("pause p50", "pause_p50_us", "us"),
    ("pause p90", "pause_p90_us", "us"),
    ("pause max", "pause_max_us", "us"),
    ("pause total", "pause_total_us", "us"),
    ("guest paused (share of COLO)", "paused_fraction", "fraction"),
    ("mean: wait for state", "wait_mean_us", "us"),
    ("mean: RAM load", "ram_load_mean_us", "us"),
    ("mean: device state receive", "receive_mean_us", "us"),
    ("mean: RAM-cache flush", "flush_mean_us", "us"),
    ("mean: device load", "device_load_mean_us", "us"),
    ("max: RAM load", "ram_load_max_us", "us"),
    ("max: RAM-cache flush", "flush_max_us", "us"),
    ("max: device load", "device_load_max_us", "us"),
    ("mean: BQL held by the COLO thread", "bql_hold_mean_us", "us"),
    ("mean: BQL waits of the other threads", "bql_wait_mean_us", "us"),
)
"""The secondary's COLO figures a comparison shows (name, summary key, unit)."""
COLO_PRIMARY_ROWS = (
    ("primary: pause p50", "pause_p50_us", "us"),
    ("primary: pause max", "pause_max_us", "us"),
    ("primary: request to 'vmstate-loaded' (mean)", "duration_mean_us", "us"),
)
LOAD_ROLE = "load"


# ---------------------------------------------------------------------------------- compare
def compare(
    before: ReportData | Trace, after: ReportData | Trace, labels: Sequence[str] = ("before", "after")
) -> Comparison:
    """Compares two traces (see module docstring), each a loaded Trace or the
    :func:`~tracetool._analyses.reportdata.collect` of one. Sections one side lacks are left
    out, with a note saying which side and why."""
    if isinstance(before, Trace):
        before = collect(before)
    if isinstance(after, Trace):
        after = collect(after)
    notes: list[str] = []
    b_side = Side(labels[0], list(before.inputs), before.load_thread())
    a_side = Side(labels[1], list(after.inputs), after.load_thread())
    for side, data in ((labels[0], before), (labels[1], after)):
        for section in ("phases", "bql", "preempt", "downtime", "colo"):
            optional = {"preempt": _any_postcopy(before, after), "colo": _any_colo(before, after)}
            if not data.has(section) and optional.get(section, True):
                why = "; ".join(data.notes.get(section, [])) or "nothing in this trace"
                notes.append(f"{side}: no {section}: {why}")
    process, pairs, load_pair = _bql(before, after)
    return Comparison(
        before=b_side,
        after=a_side,
        phases=_phases(before, after),
        devices=_devices(before, after),
        bql_process=process,
        bql_threads=pairs,
        bql_load=load_pair,
        preempt=_preempt(before, after),
        downtime=_downtime(before, after),
        critical_path=_critical_path(before, after),
        notes=notes,
        colo=_colo(before, after),
    )


def _any_postcopy(*data: ReportData) -> bool:
    return any(d.preempt is not None for d in data)


def _any_colo(*data: ReportData) -> bool:
    return any(d.has("colo") for d in data)


def _num(v: Any) -> float | None:
    if v is None or v is pd.NA:
        return None
    f = float(v)
    return None if f != f else f  # NaN -> None


def _phases(before: ReportData, after: ReportData) -> list[PhaseDelta]:
    def table(d: ReportData) -> dict[str, tuple[float | None, str]]:
        out: dict[str, tuple[float | None, str]] = {}
        if d.phases is None:
            return out
        for r in d.phases.phases.to_dict("records"):
            name = str(r["name"])
            if name not in out:  # a phase that repeats is compared on its first occurrence
                ref = ThreadRef(_int(r.get("tid")), _str(r.get("thread")), str(r.get("role")), False)
                out[name] = (_num(r.get("duration_us")), ref.label())
        return out

    b, a = table(before), table(after)
    return [
        PhaseDelta(
            Delta(n, b.get(n, (None, ""))[0], a.get(n, (None, ""))[0]),
            b[n][1] if n in b else None,
            a[n][1] if n in a else None,
        )
        for n in _union(b, a)
    ]


def _devices(before: ReportData, after: ReportData) -> list[Delta]:
    """Total load time per device (idstr and instance), largest on either side first."""

    def table(d: ReportData) -> dict[str, float]:
        if d.phases is None or d.phases.devices.empty:
            return {}
        dev = d.phases.devices
        out: dict[str, float] = {}
        for idstr, inst, dur in zip(
            dev["idstr"].tolist(), dev["instance_id"].tolist(), dev["duration_us"].tolist(), strict=True
        ):
            if idstr is None or idstr is pd.NA:
                continue
            key = f"{idstr}" if _int(inst) in (None, 0) else f"{idstr} #{_int(inst)}"
            v = _num(dur)
            if v is not None:
                out[key] = out.get(key, 0.0) + v
        return out

    b, a = table(before), table(after)
    rows = [Delta(k, b.get(k), a.get(k)) for k in _union(b, a)]
    return sorted(rows, key=lambda d: -max(d.before or 0.0, d.after or 0.0))


def _union(first: Iterable[str], second: Iterable[str]) -> list[str]:
    """Distinct keys of both, in first-seen order."""
    return list(dict.fromkeys([*first, *second]))


def _int(v: Any) -> int | None:
    return None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else int(v)


def _str(v: Any) -> str | None:
    return None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v)


# ---------------------------------------------------------------------------------- BQL
def _bql_threads(d: ReportData) -> tuple[str | None, list[tuple[ThreadRef, dict[str, Any]]]]:
    """The BQL's primary process and its per-thread statistics (with load marks)."""
    if d.bql is None or d.bql.primary is None:
        return None, []
    p = d.bql.primary
    lt = d.load_thread() or {}
    out: list[tuple[ThreadRef, dict[str, Any]]] = []
    for r in p.threads.to_dict("records"):
        tid, role = _int(r["tid"]), str(r["role"])
        carries = (tid is not None and tid == lt.get("tid")) or (tid is None and role == LOAD_ROLE)
        out.append((ThreadRef(tid, _str(r["name"]), role, carries), {str(k): v for k, v in r.items()}))
    return p.process, out


def _pair(
    b: tuple[ThreadRef, dict[str, Any]] | None, a: tuple[ThreadRef, dict[str, Any]] | None, how: str
) -> ThreadPair:
    metrics = [
        Delta(
            m,
            _num(b[1][m]) if b else None,
            _num(a[1][m]) if a else None,
            "count" if m in ("holds", "waits") else "us",
        )
        for m in BQL_METRICS
    ]
    return ThreadPair(b[0] if b else None, a[0] if a else None, metrics, how)


def match_threads(
    before: Sequence[tuple[ThreadRef, dict[str, Any]]], after: Sequence[tuple[ThreadRef, dict[str, Any]]]
) -> list[ThreadPair]:
    """Pairs threads by role; within a role by equal name first, then by order (busiest first)."""
    pairs: list[ThreadPair] = []
    roles = _union([t.role for t, _ in before], [t.role for t, _ in after])
    for role in roles:
        b = [x for x in before if x[0].role == role]
        a = [x for x in after if x[0].role == role]
        used: set[int] = set()
        rest_b = []
        for x in b:
            hit = next(
                (
                    i
                    for i, y in enumerate(a)
                    if i not in used and x[0].name is not None and y[0].name == x[0].name
                ),
                None,
            )
            if hit is None:
                rest_b.append(x)
            else:
                used.add(hit)
                pairs.append(_pair(x, a[hit], "role+name"))
        rest_a = [y for i, y in enumerate(a) if i not in used]
        for k in range(max(len(rest_b), len(rest_a))):
            xb = rest_b[k] if k < len(rest_b) else None
            ya = rest_a[k] if k < len(rest_a) else None
            pairs.append(_pair(xb, ya, "role" if xb is not None and ya is not None else "unmatched"))
    return pairs


def _bql(before: ReportData, after: ReportData) -> tuple[str | None, list[ThreadPair], ThreadPair | None]:
    pb, tb = _bql_threads(before)
    pa, ta = _bql_threads(after)
    if not tb and not ta:
        return pb or pa, [], None
    lb = next((x for x in tb if x[0].carries_load), None)
    la = next((x for x in ta if x[0].carries_load), None)
    load = _pair(lb, la, "load") if lb is not None or la is not None else None
    return pb or pa, match_threads(tb, ta), load


# ---------------------------------------------------------------------------------- others
def _preempt(before: ReportData, after: ReportData) -> list[Delta]:
    if not _any_postcopy(before, after):
        return []
    b, a = before.preempt, after.preempt
    rows = [
        Delta(name, getattr(b, key) if b else None, getattr(a, key) if a else None)
        for name, key in PREEMPT_ROWS
    ]
    for name, key in PAGE_REQUEST_ROWS:
        rows.append(
            Delta(
                name,
                _num(b.page_requests.get(key)) if b else None,
                _num(a.page_requests.get(key)) if a else None,
                "count" if key == "count" else "us",
            )
        )
    rows.append(
        Delta(
            "pages on the preempt channel",
            _num(b.pages_by_channel.get("1", 0)) if b else None,
            _num(a.pages_by_channel.get("1", 0)) if a else None,
            "count",
        )
    )
    return rows


def _downtime(before: ReportData, after: ReportData) -> list[Delta]:
    b, a = before.downtime or {}, after.downtime or {}
    rows = [Delta(name, _num(b.get(key)), _num(a.get(key))) for name, key in PAUSE_ROWS]
    rows += [
        Delta(name, _num((b.get(group) or {}).get(key)), _num((a.get(group) or {}).get(key)))
        for name, group, key in DOWNTIME_ROWS
    ]
    for name, group in QEMU_ROWS:
        ms_b, ms_a = (_num((x.get(group) or {}).get("qemu_reported_ms")) for x in (b, a))
        rows.append(
            Delta(name, None if ms_b is None else ms_b * 1000.0, None if ms_a is None else ms_a * 1000.0)
        )
    return [r for r in rows if r.before is not None or r.after is not None]


def _critical_path(before: ReportData, after: ReportData) -> list[Delta]:
    """Time on the pause's critical path per step (``save ram (src)``, ``load cpu (dst)``...),
    each step summed over the path, in the order of the path of the side that has one."""

    def table(d: ReportData) -> dict[str, float]:
        out: dict[str, float] = {}
        for s in (d.downtime or {}).get("critical_path") or []:
            name = s["step"] + (f" {s['device']}" if s.get("device") else "")
            if s.get("instance_id"):
                name += f" #{s['instance_id']}"
            key = f"{name} ({s['side']})"
            out[key] = out.get(key, 0.0) + float(s["us"])
        return out

    b, a = table(before), table(after)
    return [Delta(k, b.get(k), a.get(k)) for k in _union(b, a)]


def _colo_summary(d: ReportData, role: str) -> dict[str, Any] | None:
    report = d.results.get("colo")
    side = report.side(role) if report is not None else None
    return side.summary if side is not None else None


def _colo(before: ReportData, after: ReportData) -> list[Delta]:
    """The secondary's checkpoint figures (and the primary's pauses, when traced) of both runs."""
    if not _any_colo(before, after):
        return []
    rows: list[Delta] = []
    for role, table in (("secondary", COLO_ROWS), ("primary", COLO_PRIMARY_ROWS)):
        b, a = _colo_summary(before, role), _colo_summary(after, role)
        if b is None and a is None:
            continue
        for name, key, unit in table:
            rows.append(Delta(name, _num((b or {}).get(key)), _num((a or {}).get(key)), unit))
    return [r for r in rows if r.before is not None or r.after is not None]
