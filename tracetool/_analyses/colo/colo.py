"""COLO checkpoints on both sides, the BQL inside each checkpoint, and failover.

COLO (QEMU's fault tolerance on top of migration) keeps a secondary in lock-step with a
primary: after an initial migration, the primary stops its VM every few hundred ms, sends RAM
and device state, and the secondary stops, loads it and runs again. :func:`analyze_colo` finds
the primary and the secondary of a trace and their COLO threads (:mod:`.protocol`), walks each
side's checkpoints (:mod:`.walk`), times their parts (:mod:`.records`), clips the BQL holds
and waits to each checkpoint (:mod:`.bqlclip`), describes the failover (:mod:`.failover`) and,
with both sides in the trace, pairs their checkpoints on one time axis (:mod:`.pairing`).

    >>> report = tracetool.analyze_colo(tracetool.load(["dst.trace", "src.trace"]))
    >>> report.secondary.summary["pause_p50_us"]
    >>> report.to_json()["processes"][0]["checkpoints"][0]["flush_pages"]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._analyses.bql.report import BqlReport, analyze_bql
from tracetool._analyses.colo.bqlclip import BqlInside
from tracetool._analyses.colo.failover import Failover, analyze_failover, channel_closed
from tracetool._analyses.colo.pairing import pair_sides
from tracetool._analyses.colo.protocol import (
    PRIMARY,
    SECONDARY,
    Participant,
    first_row,
    participants,
    protocol,
)
from tracetool._analyses.colo.records import checkpoint_record, end_ns, summarize
from tracetool._analyses.colo.walk import Checkpoint, Issue, cut_checkpoints, walk
from tracetool._model.trace import Trace
from tracetool._timeline.builder import build_timeline

START_EVENT = "migrate_set_state colo"
INITIAL_PHASE = {SECONDARY: "incoming", PRIMARY: "migrate"}
"""The phase that is the initial migration on each side (see spans.toml)."""
NOT_IN_TRACE = (
    "not in this trace: no COLO messages; trace both QEMUs of a COLO run with colo_* events "
    "(migtrace events --for colo)"
)


@dataclass
class ColoProcess:
    """One side of COLO: its checkpoints (JSON records), summary and failover."""

    label: str
    role: str
    role_from: str
    pid: int | None
    thread: dict[str, Any]
    colo_start_ns: int | None
    colo_start_from: str | None
    colo_end_ns: int | None
    colo_end: str | None
    initial_migration: dict[str, Any] | None
    checkpoints: list[dict[str, Any]]
    summary: dict[str, Any]
    failover: Failover | None
    offset_ns: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """One entry of ``processes`` in ``migtrace colo --format json``."""
        return {
            "label": self.label,
            "role": self.role,
            "role_from": self.role_from,
            "pid": self.pid,
            "thread": dict(self.thread),
            "colo_start_ns": self.colo_start_ns,
            "colo_start_from": self.colo_start_from,
            "colo_end_ns": self.colo_end_ns,
            "colo_end": self.colo_end,
            "offset_ns": self.offset_ns,
            "initial_migration": self.initial_migration,
            "checkpoints": [dict(c) for c in self.checkpoints],
            "summary": dict(self.summary),
            "failover": self.failover.to_json() if self.failover else None,
            "notes": list(self.notes),
        }


@dataclass
class ColoReport:
    """Result of :func:`analyze_colo`; ``to_json`` is the ``migtrace colo --format json``
    document: ``processes`` (secondary first), ``alignment``, ``time_zero_ns`` / ``time_zero``,
    ``clock`` (of the timestamps: "wall", "monotonic", ...), ``failover`` (the secondary's, for
    checks), ``notes``, ``issues``."""

    processes: list[ColoProcess]
    alignment: dict[str, Any] | None = None
    time_zero_ns: int | None = None
    time_zero: str | None = None
    clock: str | None = None
    notes: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    def side(self, role: str) -> ColoProcess | None:
        """The first process with that role ("primary" / "secondary")."""
        return next((p for p in self.processes if p.role == role), None)

    @property
    def secondary(self) -> ColoProcess | None:
        """The secondary (the incoming side), when traced."""
        return self.side(SECONDARY)

    @property
    def primary(self) -> ColoProcess | None:
        """The primary, when traced."""
        return self.side(PRIMARY)

    def failover_summary(self) -> dict[str, Any]:
        """The secondary's failover (else the primary's) in three words: final state ("none":
        no failover in the trace), the step it came during, who asked."""
        for p in (self.secondary, self.primary):
            if p is not None and p.failover is not None:
                f = p.failover
                return {
                    "process": p.label,
                    "state": f.final_state or "none",
                    "during": f.during,
                    "requested_by": f.requested_by,
                }
        return {"process": None, "state": "none", "during": None, "requested_by": None}

    def to_json(self) -> dict[str, Any]:
        """The document (see the class docstring)."""
        return {
            "processes": [p.to_json() for p in self.processes],
            "alignment": self.alignment,
            "time_zero_ns": self.time_zero_ns,
            "time_zero": self.time_zero,
            "clock": self.clock,
            "failover": self.failover_summary() if self.processes else None,
            "notes": list(self.notes),
            "issues": [str(i) for i in self.issues],
        }

    @property
    def empty(self) -> bool:
        """True when no process of the trace took part in COLO."""
        return not self.processes

    @property
    def issue_count(self) -> int:
        """COLO events out of protocol order."""
        return len(self.issues)


def _ts(trace: Trace, row: int | None) -> int | None:
    if row is None:
        return None
    t = int(trace.ts[row])
    return None if t == NO_TIME else t


def _bounds(trace: Trace, label: str) -> tuple[int, int] | None:
    """The process's first and last time (from the thread table): the span of its trace (its
    COLO thread may fall silent earlier)."""
    th = trace.threads[trace.threads["process"] == label]
    first, last = th["first_ns"].dropna(), th["last_ns"].dropna()
    return (int(first.min()), int(last.max())) if len(first) and len(last) else None


def _initial(trace: Trace, label: str, role: str) -> dict[str, Any] | None:
    s = build_timeline(trace).spans
    hit = s[(s["kind"] == "phase") & (s["process"] == label) & (s["name"] == INITIAL_PHASE.get(role))]
    if not len(hit):
        return None
    r = hit.iloc[0]
    dur = r["duration_us"]
    return {
        "phase": str(r["name"]),
        "start_ns": int(r["start_ns"]),
        "end_ns": int(r["end_ns"]),
        "duration_us": None if dur != dur else float(dur),
        "closed": bool(r["closed"]),
    }


def _bql_inside(trace: Trace, bql: BqlReport | None, part: Participant, notes: list[str]) -> BqlInside | None:
    proc = bql.processes.get(part.label) if bql is not None else None
    if proc is None or proc.mutex is None:
        return None
    if part.thread_tid is None or proc.attribution != "thread":
        notes.append("BQL per checkpoint needs thread ids (the BQL is attributed by call site here)")
        return None
    bounds = _bounds(trace, part.label)
    return BqlInside.of(proc, part.thread_tid, bounds) if bounds is not None else None


def _first_checkpoint_note(part: Participant, records: list[dict[str, Any]], colo_seen: bool) -> str | None:
    if part.role != SECONDARY or not records or not colo_seen:
        return None
    first = records[0]
    if first["flush_pages"] is None:
        return None
    later = [r["pause_us"] for r in records[1:] if r["pause_us"] is not None]
    rest = f"; later checkpoints pause {float(np.median(later)) / 1000:.1f} ms (median)" if later else ""
    pause = "" if first["pause_us"] is None else f", the guest paused {first['pause_us'] / 1000:.1f} ms"
    flush = "" if first["flush_us"] is None else f" in {first['flush_us'] / 1000:.1f} ms"
    return (
        f"checkpoint 1 flushes the whole RAM cache (every page is dirty after the initial load): "
        f"{first['flush_pages']:,} pages{flush}{pause}{rest}"
    )


def _side(trace: Trace, part: Participant, bql: BqlReport | None, issues: list[Issue]) -> ColoProcess:
    proto = protocol()
    notes: list[str] = []
    colo_row = first_row(trace, proto.colo_start, part.process_mask)
    checkpoints, found = walk(trace, part)
    issues.extend(found)
    failover = analyze_failover(trace, part, checkpoints, colo_row)
    closed = channel_closed(trace, part, colo_row)
    bounds = _bounds(trace, part.label)
    last = bounds[1] if bounds is not None else None
    stops = [(failover.request_ns if failover else None, "failover"), (closed, "channel-closed")]
    cut_checkpoints(checkpoints, [*stops, (last, "trace-end")])
    ends = [(t, why) for t, why in stops if t is not None]
    colo_end, end_reason = min(ends) if ends else (last, "trace-end")
    colo_start, start_from = _ts(trace, colo_row), START_EVENT
    if colo_start is None and checkpoints:
        colo_start, start_from = checkpoints[0].request_ns, "first checkpoint request"
        notes.append("COLO started before this trace (no migrate_set_state colo): times from checkpoint 1")
    inside = _bql_inside(trace, bql, part, notes)
    records = [checkpoint_record(c, part.role, _bql(inside, c)) for c in checkpoints]
    note = _first_checkpoint_note(part, records, colo_row is not None)
    if note:
        notes.append(note)
    for r in records:
        if r["stop_ns"] is not None and r["resume_ns"] is None:
            notes.append(
                f"checkpoint {r['index']}: COLO stopped the VM and did not resume it "
                f"(cut by {r['cut_by'] or 'the end of the trace'} while in {r['cut_in'] or '?'})"
            )
    if failover is not None:
        notes.extend(failover.notes)
        stalled = next((c for c in checkpoints if c.index == failover.checkpoint), None)
        asked = failover.request_ns
        if (
            stalled is not None
            and stalled.cut_ns is not None
            and asked is not None
            and stalled.cut_ns < asked
        ):
            notes.append(
                f"failover came after checkpoint {stalled.index} had been cut ({stalled.cut_by} while "
                f"in {stalled.cut_in}, {(asked - stalled.cut_ns) / 1e6:.1f} ms before)"
            )
    pid = trace.processes.set_index("label")["pid"].get(part.label)
    return ColoProcess(
        label=part.label,
        role=part.role,
        role_from=part.role_from,
        pid=None if pid is None or pd.isna(pid) else int(pid),
        thread={"tid": part.thread_tid, "name": part.thread_name},
        colo_start_ns=colo_start,
        colo_start_from=start_from if colo_start is not None else None,
        colo_end_ns=colo_end,
        colo_end=end_reason,
        initial_migration=_initial(trace, part.label, part.role),
        checkpoints=records,
        summary=summarize(records, part.role, colo_start, colo_end),
        failover=failover,
        notes=notes,
    )


def _bql(inside: BqlInside | None, c: Checkpoint) -> tuple[float | None, float | None]:
    a, b = c.request_ns, end_ns(c)
    if inside is None or a is None or b is None:
        return None, None
    return inside.hold_us(a, b), inside.wait_us(a, b)


def analyze_colo(trace: Trace, bql: BqlReport | None = None) -> ColoReport:
    """COLO checkpoints, BQL per checkpoint and failover of every COLO process in ``trace``.

    ``bql``: the trace's BQL analysis when already computed (the registry passes its cached
    one); otherwise it is computed here when the trace has mutex events.
    """
    parts = participants(trace)
    if not parts:
        return ColoReport([], notes=[NOT_IN_TRACE])
    if bql is None and trace.code_of("qemu_mutex_locked") is not None:
        bql = analyze_bql(trace)
    issues: list[Issue] = []
    sides = [_side(trace, p, bql, issues) for p in parts]
    sides.sort(key=lambda p: (p.role != SECONDARY, p.role != PRIMARY, p.label))
    report = ColoReport(sides, issues=issues, clock=trace.clock)
    for p in sides:
        if p.role_from != "messages":
            report.notes.append(f"{p.label}: role {p.role} from the {p.role_from}, not from its messages")
    if report.secondary is not None and report.primary is not None:
        masks = {p.label: p.process_mask for p in parts}
        sec, pri = report.secondary, report.primary
        report.alignment = pair_sides(trace, sec, pri, (masks[sec.label], masks[pri.label]))
        report.notes.extend(report.alignment["notes"])
    zero = next((p for p in sides if p.colo_start_ns is not None), None)
    if zero is not None:
        report.time_zero_ns = int(zero.colo_start_ns) + zero.offset_ns  # type: ignore[arg-type]
        report.time_zero = f"COLO start on {zero.label} ({zero.colo_start_from})"
    if trace.code_of("qemu_mutex_locked") is None:
        report.notes.append(
            "no BQL per checkpoint: enable qemu_mutex_lock, qemu_mutex_locked, qemu_mutex_unlock"
        )
    return report
