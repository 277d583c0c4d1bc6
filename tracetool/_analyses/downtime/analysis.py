"""The guest's pause end to end: from the source stopping the VM to the destination running it.

QEMU's ``downtime`` is measured on the source alone (VM stop -> source done). The guest stays
paused until the destination starts it, which can be much later: the destination may still be
loading RAM or device state, or (postcopy) receive the device package, listen and run only
after the source has finished. :func:`analyze_downtime` puts both sides on one time axis
(:func:`tracetool._analyses.merge.align`), splits each side's work into steps
(:mod:`.steps`), and follows what the guest was waiting for (:mod:`.critical`).

Window: start = the source's ``src-downtime-start`` checkpoint (QEMU >= 8.2), else its run
state change to ``finish-migrate``; end = the destination's run state change from
``inmigrate`` to ``running``.

    >>> r = analyze_downtime(tracetool.load(["src.trace", "dst.trace"]))
    >>> r.end_to_end_us, r.reported_us
    >>> r.to_json()["critical_path"][0]
    {'side': 'src', 'step': 'stop VM', 'device': None, ...}
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._analyses.bql.report import BqlReport, analyze_bql
from tracetool._analyses.downtime.critical import PathStep, critical_path
from tracetool._analyses.downtime.devices import by_device, thread_holds
from tracetool._analyses.downtime.explain import explain
from tracetool._analyses.downtime.result import DowntimeReport
from tracetool._analyses.downtime.steps import (
    SideEvents,
    Step,
    destination_works,
    downtime_rules,
    source_works,
    tile,
)
from tracetool._analyses.merge import (
    NO_ALIGNMENT,
    SAME_CLOCK,
    Alignment,
    align,
    aligned_ts,
    process_mask,
    process_of_side,
    switchover_downtime,
    total_time,
)
from tracetool._model.querymigrate import QueryMigrate, unset_note
from tracetool._model.trace import Trace
from tracetool._timeline.builder import build_timeline

DEVICE_EVENTS = "vmstate_downtime_*"
NO_SWITCHOVER_STATES = ("cancelling", "cancelled", "failed")
"""Final states of a source migration that end it without a switchover (the VM keeps running)."""
_DOWNTIME_FIELD = re.compile(r'"downtime"\s*:\s*(\d+(?:\.\d+)?)')
_TOTALS_UNSET = re.compile(r'"total-time"\s*:\s*0[,}\s]')
_COMPLETED = re.compile(r'"status"\s*:\s*"completed"')


def analyze_downtime(
    trace: Trace, query_migrate: QueryMigrate | None = None, *, bql: BqlReport | None = None
) -> DowntimeReport:
    """The pause end to end, its critical path and the per-device save and load times (see
    the module docstring). ``query_migrate``: QEMU's own figures (its downtime is used as
    ``reported_us`` in preference to the one the trace's ``query-migrate`` replies show).
    ``bql``: the BQL analysis of the trace, for the BQL time of each step (computed here
    when the trace has mutex events and none is given)."""
    tl = build_timeline(trace)
    a = align(trace)
    ts = aligned_ts(trace, a) if a.method != NO_ALIGNMENT else trace.ts
    notes: list[str] = []
    src_label, dst_label = process_of_side(trace, "src"), process_of_side(trace, "dst")
    src = _side(trace, tl, src_label, ts, a.offset_ns) if src_label else None
    dst = _side(trace, tl, dst_label, ts, 0) if dst_label else None
    rules = downtime_rules()

    start = _window_start(src, rules.window) if src else None
    end = _window_end(dst, rules.window, start[2] if start else None) if dst else None
    src_end = _source_end(src, start[2]) if src and start else None
    if src is None:
        notes.append(
            "no source process in this trace: the pause starts on the source (load both sides' traces)"
        )
    elif start is None:
        notes.append("the source never stopped the VM for the switchover in this trace")
    src_state = _last_state(src) if src is not None and start is None else None
    if dst is None:
        notes.append("no destination process in this trace: the pause ends on the destination")
    elif end is None:
        notes.append(_never_ran(trace, dst))
    if dst is not None:
        last = _last_state(dst)
        if last not in (None, "completed"):
            notes.append(
                f"the destination's migration did not complete in this trace (its last state: "
                f"'{last}'; killed, failed or cut short)"
            )
    if src_end is not None and src_end[0] == rules.src_end["package_run"]:
        notes.append(
            f"not in this trace: the source's {rules.src_end['package_sent']} (enable "
            f"qemu_savevm_send_* on the source): its part ends where it packed the RUN command "
            f"({rules.src_end['package_run']}), just before it sent the package"
        )
    elif src_end is not None and src_end[0] == rules.src_end["package_sent"]:
        notes.append(
            "QEMU < 8.2 traces only the start of the postcopy package's send "
            f"({rules.src_end['package_sent']}): the send itself counts as data in transit"
        )
    if src and dst and a.method == NO_ALIGNMENT:
        notes.append("the two sides cannot be put on one time axis: " + "; ".join(a.notes))

    use_device_events = bool(
        src and dst and len(src.rows("vmstate_downtime_save")) and len(dst.rows("vmstate_downtime_load"))
    )
    has_checkpoints = bool(src and src.checkpoints()) or bool(dst and dst.checkpoints())
    built_from = None
    path: list[PathStep] = []
    src_steps: list[Step] = []
    dst_steps: list[Step] = []
    end_to_end = None
    complete = start is not None and end is not None and a.method != NO_ALIGNMENT and end[2] > start[2]
    if complete and src is not None and dst is not None and start is not None and end is not None:
        t0, t1 = start[2], end[2]
        s_end = min(src_end[2], t1) if src_end else t1
        src_works, provides = source_works(src, t0, s_end, use_device_events)
        src_steps = tile(src_works, "src", t0, s_end, _send_times(src, rules.sends))
        dst_steps = tile(destination_works(dst, t0, t1, use_device_events), "dst", t0, t1)
        path = critical_path(src_steps, dst_steps, provides, t0, t1)
        end_to_end = (t1 - t0) / 1000.0
        built_from = "vmstate_downtime" if use_device_events else "sections"
        if not has_checkpoints:
            notes.append(
                "no vmstate_downtime_checkpoint events (QEMU < 8.2, or not enabled): the critical "
                "path is built from the section and state events (savevm_section_*, "
                "qemu_loadvm_state_*, runstate_set, migrate_set_state)"
            )
        elif not use_device_events:
            notes.append(
                f"no vmstate_downtime_save/_load on both sides: per-device steps come from the "
                f"section events (enable {DEVICE_EVENTS} on both QEMUs)"
            )
        unsent = _untraced_sends(src, dst)
        if unsent:
            notes.append(
                f"not in this trace: the source's {', '.join(unsent)} (enable qemu_savevm_send_* "
                "on the source): the destination's waits for what they send count as its own time"
            )
    elif start is not None and end is not None and end[2] <= start[2]:
        notes.append("the destination ran the VM before the source stopped it: the clocks disagree")

    uncertainty = _uncertainty_us(a)
    if bql is None and trace.code_of("qemu_mutex_locked") is not None and path:
        bql = analyze_bql(trace)
    holds = {
        "src": thread_holds(trace, src_label, "src", a.offset_ns, bql) if src_label else None,
        "dst": thread_holds(trace, dst_label, "dst", 0, bql) if dst_label else None,
    }
    steps_json = _path_json(path, holds, uncertainty)
    devices = by_device(
        src, dst, start[2] if start else None, (end or src_end or (None, None, None))[2], path
    )
    reported, reported_from = _reported(src, query_migrate)
    if reported_from == UNSET:
        reported, reported_from = None, None
        notes.append(unset_note(downtime_unset=True))
    elif query_migrate is not None and (unset := query_migrate.unset_note()):
        notes.append(unset)
    if query_migrate is not None:
        notes.extend(query_migrate.exit_notes())
    explanation = explain(
        end_to_end, reported, (src_end[2] - start[2]) / 1000.0 if src_end and start else None, steps_json
    )
    if src_state in NO_SWITCHOVER_STATES:
        explanation = [
            f"No pause to measure: the source's migration ended '{src_state}' before it stopped "
            "the VM, so the guest kept running on the source."
        ]
    if src and dst:
        notes.extend(a.notes)
    return DowntimeReport(
        end_to_end_us=end_to_end,
        reported_us=reported,
        reported_from=reported_from,
        start=_point("src", start),
        end=_point("dst", end),
        source_end=_point("src", src_end),
        alignment={**a.to_json(), "uncertainty_us": uncertainty},
        critical_path=steps_json,
        by_device=devices,
        built_from=built_from,
        explanation=explanation,
        switchover=switchover_downtime(trace, query_migrate, a).to_json(),
        total_time=total_time(trace, query_migrate).to_json(),
        notes=notes,
        steps={"src": _steps_json(src_steps), "dst": _steps_json(dst_steps)},
    )


def _untraced_sends(src: SideEvents, dst: SideEvents) -> list[str]:
    """The source events that send a command the destination's trace shows it acting on,
    where the source's trace has none of them (their events were not enabled)."""
    return sorted(
        {
            c.sent_by
            for c in downtime_rules().commands
            if c.sent_by and not len(src.rows(c.sent_by)) and len(dst.spans(c.kind, (c.name,)))
        }
    )


def _steps_json(steps: list[Step]) -> list[dict[str, Any]]:
    """Each side's own steps (critical or not), for figures and traces."""
    return [
        {
            "side": s.side,
            "step": s.step,
            "device": s.device,
            "instance_id": s.instance_id,
            "kind": s.kind,
            "section_id": s.section_id,
            "sent_before_stop": s.sent_before_stop,
            "start_ns": s.start_ns,
            "end_ns": s.end_ns,
            "us": (s.end_ns - s.start_ns) / 1000.0,
            "gap": s.gap,
        }
        for s in steps
    ]


Point = tuple[str, str, int]
"""(event, detail, time on the common axis)."""


def _side(trace: Trace, tl: Any, label: str, ts: np.ndarray, offset: int) -> SideEvents:
    return SideEvents(trace, tl, label, process_mask(trace, label), ts, offset)


def _runstates(side: SideEvents) -> pd.DataFrame:
    f = side.fields("runstate_set")
    if not len(f) or "new_state_str" not in f:
        return pd.DataFrame(columns=["current_state_str", "new_state_str", "ts"])
    return f


def _window_start(src: SideEvents, window: dict[str, str]) -> Point | None:
    for name, t in src.checkpoints():
        if name == window["start_checkpoint"]:
            return ("vmstate_downtime_checkpoint", name, t)
    rs = _runstates(src)
    hit = rs[rs["new_state_str"] == window["start_runstate"]]
    if len(hit):
        return ("runstate_set", window["start_runstate"], int(hit["ts"].iloc[0]))
    return None


def _window_end(dst: SideEvents, window: dict[str, str], after: int | None) -> Point | None:
    rs = _runstates(dst)
    hit = rs[
        (rs["new_state_str"] == window["end_runstate"])
        & (rs["current_state_str"] == window["end_from_runstate"])
    ]
    if after is not None:
        hit = hit[hit["ts"] > after]
    if len(hit):
        return (
            "runstate_set",
            f"{window['end_from_runstate']} -> {window['end_runstate']}",
            int(hit["ts"].iloc[0]),
        )
    return None


def _source_end(src: SideEvents, after: int) -> Point | None:
    """Where the source's part ends: ``src-downtime-end``, else completion (precopy) or the
    postcopy package sent (or, where that is not traced, its RUN command packed)."""
    rules = downtime_rules()
    for name, t in src.checkpoints():
        if name == "src-downtime-end" and t >= after:
            return ("vmstate_downtime_checkpoint", name, t)
    candidates: list[Point] = []
    f = src.fields("migrate_set_state")
    if len(f) and "new_state" in f:
        done = f[(f["new_state"] == rules.src_end["state"]) & (f["ts"] >= after)]
        if len(done):
            candidates.append(("migrate_set_state", rules.src_end["state"], int(done["ts"].iloc[0])))
    for event in (rules.src_end["package_sent"], rules.src_end["package_run"]):
        sent = [int(src.ts[r]) for r in src.rows(event) if src.ts[r] >= after]
        if sent:
            candidates.append((event, "", sent[0]))
            break
    return min(candidates, key=lambda p: p[2]) if candidates else None


def _last_state(side: SideEvents) -> str | None:
    f = side.fields("migrate_set_state")
    if not len(f) or "new_state" not in f:
        return None
    return str(f["new_state"].iloc[-1])


def _send_times(src: SideEvents, events: tuple[str, ...]) -> np.ndarray:
    rows = np.concatenate([src.rows(e) for e in events]) if events else np.zeros(0, np.int64)
    return src.ts[rows.astype(np.int64)] if len(rows) else np.zeros(0, np.int64)


def _point(side: str, p: Point | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"side": side, "event": p[0], "detail": p[1], "ns": p[2]}


def _never_ran(trace: Trace, dst: SideEvents) -> str:
    rows = np.flatnonzero(dst.mask & (trace.ts != NO_TIME))
    where = ""
    if len(rows):
        last = int(rows[-1])
        path = str(trace.inputs["path"].iloc[int(trace.source[last])])
        where = f"; its trace ends at {path}:{int(trace.line[last])}"
    return (
        "the destination never started the VM in this trace (no runstate_set inmigrate -> running: "
        f"killed, failed, or runstate_set not enabled){where}: no end-to-end downtime"
    )


def _uncertainty_us(a: Alignment) -> float | None:
    """How far the source's times may be off on the destination's axis."""
    if a.method == NO_ALIGNMENT:
        return None
    if a.method == SAME_CLOCK:
        # One host clock: exact, unless a receive was traced before its send.
        off = max(0, -(a.upper_ns if a.upper_ns is not None else 0), a.lower_ns or 0)
        return off / 1000.0
    u = a.uncertainty_ns
    return None if u is None else u / 1000.0


def _path_json(
    path: list[PathStep], holds: dict[str, Any], uncertainty: float | None
) -> list[dict[str, Any]]:
    out = []
    for k, p in enumerate(path):
        crosses = p.side == "wire" or any(
            0 <= n < len(path) and path[n].side != p.side for n in (k - 1, k + 1)
        )
        h = holds.get(p.side)
        out.append(
            {
                "side": p.side,
                "step": p.step,
                "device": p.device,
                "instance_id": p.instance_id,
                "kind": p.kind,
                "section_id": p.section_id,
                "sent_before_stop": p.sent_before_stop,
                "start_ns": p.start_ns,
                "end_ns": p.end_ns,
                "us": p.us,
                "bql_us": h.overlap_us(p.start_ns, p.end_ns) if h is not None else None,
                "uncertain": bool(crosses and uncertainty is not None and uncertainty > p.us),
            }
        )
    return out


UNSET = "unset"
"""Where :func:`_reported` found QEMU's downtime when the answer had only QEMU's zeros (see
:attr:`QueryMigrate.totals_unset`)."""


def _reported(src: SideEvents | None, query: QueryMigrate | None) -> tuple[float | None, str | None]:
    """QEMU's downtime in µs and where it was read: from ``--query-migrate``, else the last
    query-migrate reply the source's trace shows (``qmp_exit_query_migrate``); (None,
    :data:`UNSET`) when the answer read says completed with downtime and total-time 0."""
    if query is not None and query.downtime_ms is not None:
        return query.downtime_ms * 1000.0, "query-migrate"
    if query is not None and query.totals_unset:
        return None, UNSET
    if src is None:
        return None, None
    f = src.fields("qmp_exit_query_migrate")
    if not len(f) or "result" not in f:
        return None, None
    for text in reversed(f["result"].astype("string").fillna("").tolist()):
        m = _DOWNTIME_FIELD.search(text)
        if m:
            if float(m.group(1)) == 0 and _COMPLETED.search(text) and _TOTALS_UNSET.search(text):
                return None, UNSET
            return float(m.group(1)) * 1000.0, "trace"
    return None, None
