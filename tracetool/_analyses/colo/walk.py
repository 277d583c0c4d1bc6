"""Checkpoints of one COLO participant: its COLO thread's events walked through the steps of
``colo.toml`` in protocol order.

A step opens a checkpoint (``starts``), records its time (the first occurrence, or the last
with ``pick = "last"``), adds up an argument (``count``) or completes it. Steps come in protocol
order: a later event of an earlier step inside one checkpoint is an inconsistency of the input
(listed with file and line), a step may be missing (its event was not traced). Events before
the first checkpoint (the VM starting when COLO begins) belong to none.

The walk is a Python loop over the COLO events only: a few per checkpoint, not one per line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from parsers.segment import NO_TIME
from tracetool._analyses.colo.protocol import Participant, Step, arg_text, matches, protocol, step_events
from tracetool._model.trace import Trace

IDLE = "idle"


@dataclass
class Checkpoint:
    """One checkpoint as the walk found it: step times (ns, None when untimed), counted
    arguments, and the (time, step) transitions that say what it was doing when."""

    index: int
    times: dict[str, int | None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    transitions: list[tuple[int | None, str]] = field(default_factory=list)
    completed: bool = False
    last_step: int = -1
    cut_by: str | None = None
    cut_ns: int | None = None
    cut_in: str | None = None

    def step_at(self, t: int) -> str:
        """What the checkpoint was doing at time ``t`` (the step entered last before it)."""
        now = self.transitions[0][1] if self.transitions else IDLE
        for ts, then in self.transitions:
            if ts is not None and ts <= t:
                now = then
        return now

    @property
    def request_ns(self) -> int | None:
        """When the checkpoint was requested (sent on the primary, received on the secondary)."""
        return self.times.get("request_ns")


@dataclass(frozen=True)
class Issue:
    """An event out of protocol order, with where it is."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _step_of_rows(trace: Trace, rows: np.ndarray, steps: tuple[Step, ...]) -> np.ndarray:
    """Index of the step each row is (-1: none); a row is the first step it matches."""
    out = np.full(len(rows), -1, dtype=np.int64)
    codes = trace.name_codes[rows]
    for k, step in enumerate(steps):
        code = trace.code_of(step.event)
        if code is None:
            continue
        sel = np.flatnonzero((codes == code) & (out < 0))
        if not len(sel):
            continue
        ok = matches(trace, step.event, rows[sel], step.where) if step.where else np.ones(len(sel), bool)
        out[sel[ok]] = k
    return out


def _counts(trace: Trace, rows: np.ndarray, steps: tuple[Step, ...], step_of: np.ndarray) -> dict[int, int]:
    """The counted argument of each row whose step counts one (rows that did not decode: absent)."""
    out: dict[int, int] = {}
    for k, step in enumerate(steps):
        if step.count is None:
            continue
        sel = rows[step_of == k]
        for r, v in zip(sel.tolist(), arg_text(trace, step.event, sel, step.count), strict=True):
            if v is not None:
                try:
                    out[r] = int(v)
                except ValueError:
                    continue
    return out


def walk(trace: Trace, part: Participant) -> tuple[list[Checkpoint], list[Issue]]:
    """The checkpoints of one participant, in order, and the events out of order."""
    steps = protocol().steps[part.role]
    rows = trace.rows(step_events(part.role))
    rows = rows[part.mask[rows]] if len(rows) else rows
    step_of = _step_of_rows(trace, rows, steps)
    counted = _counts(trace, rows, steps, step_of)
    paths = [str(p) for p in trace.inputs["path"]]
    out: list[Checkpoint] = []
    issues: list[Issue] = []
    cur: Checkpoint | None = None
    for r, k in zip(rows.tolist(), step_of.tolist(), strict=True):
        if k < 0:
            continue
        step = steps[k]
        raw = int(trace.ts[r])
        ts = None if raw == NO_TIME else raw
        if step.starts:
            cur = Checkpoint(index=len(out) + 1)
            out.append(cur)
        elif cur is None:
            continue
        elif k < cur.last_step or (k == cur.last_step and step.pick != "last" and step.count is None):
            if not (cur.completed and k <= cur.last_step):
                issues.append(
                    Issue(
                        paths[int(trace.source[r])],
                        int(trace.line[r]),
                        f"{trace.event_names[int(trace.name_codes[r])]} out of order in checkpoint "
                        f"{cur.index} of {part.label}",
                    )
                )
            continue
        if step.count is not None and r in counted:
            cur.counts[step.count] = cur.counts.get(step.count, 0) + counted[r]
        if step.time is not None and (step.time not in cur.times or step.pick == "last"):
            cur.times[step.time] = ts
        if step.then is not None:
            cur.transitions.append((ts, step.then))
        cur.completed = cur.completed or step.completes
        cur.last_step = max(cur.last_step, k)
    return out, issues


def cut_checkpoints(checkpoints: list[Checkpoint], stops: list[tuple[int | None, str]]) -> None:
    """Marks every checkpoint that did not complete: what cut it (the next checkpoint, or the
    first of ``stops`` after its request: failover, channel closed, end of the trace), when, and
    the step it was in then."""
    for i, c in enumerate(checkpoints):
        if c.completed:
            continue
        start = c.request_ns
        candidates: list[tuple[int, str]] = []
        if i + 1 < len(checkpoints) and checkpoints[i + 1].request_ns is not None:
            candidates.append((int(checkpoints[i + 1].request_ns), "next-checkpoint"))  # type: ignore[arg-type]
        for t, why in stops:
            if t is not None and (start is None or t >= start):
                candidates.append((t, why))
        if candidates:
            c.cut_ns, c.cut_by = min(candidates)
            c.cut_in = c.step_at(c.cut_ns)
        else:
            c.cut_by = "trace-end"
            c.cut_in = c.transitions[-1][1] if c.transitions else None


def state_at(checkpoints: list[Checkpoint], t: int) -> tuple[Checkpoint | None, str]:
    """The checkpoint in progress at ``t`` and its step, or (None, "idle") between checkpoints."""
    before = [c for c in checkpoints if c.request_ns is not None and c.request_ns <= t]
    if not before:
        return None, IDLE
    c = before[-1]
    step = c.step_at(t)
    return (None, IDLE) if step == IDLE else (c, step)
