"""Failover of one COLO participant: who asked, the failover states with their times, where the
COLO thread was when it came, and how the process ended up.

* **Who asked**: ``x-colo-lost-heartbeat`` (``qmp_enter_x_colo_lost_heartbeat``) on this
  process, else the thread that first set the failover state ``require`` (the COLO thread
  itself when it gave up on its peer).
* **Channel closed**: the COLO thread closing its channel (``qemu_file_fclose``) after COLO
  started; before the request it means the peer was gone first.
* **During**: the step of the checkpoint in progress at the request (``idle`` between two).
* **Final states**: the last failover state, the last migration state, and when the VM ran
  again on this side (``runstate_set`` to running after the request).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._analyses.colo.protocol import Participant, arg_text, event_rows, matches, protocol
from tracetool._analyses.colo.walk import Checkpoint, state_at
from tracetool._model.trace import Trace

QMP = "x-colo-lost-heartbeat"


@dataclass
class Failover:
    """The failover of one process (see module docstring); times in ns."""

    requested_by: str | None
    request_ns: int | None
    request_thread: dict[str, Any] | None
    channel_closed_ns: int | None
    during: str | None
    checkpoint: int | None
    states: list[dict[str, Any]] = field(default_factory=list)
    final_state: str | None = None
    migration_state: str | None = None
    running_ns: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``failover`` object of a process in ``migtrace colo --format json``."""
        return {
            "requested_by": self.requested_by,
            "request_ns": self.request_ns,
            "request_thread": self.request_thread,
            "channel_closed_ns": self.channel_closed_ns,
            "during": self.during,
            "checkpoint": self.checkpoint,
            "states": list(self.states),
            "final_state": self.final_state,
            "migration_state": self.migration_state,
            "running_ns": self.running_ns,
            "notes": list(self.notes),
        }


def _ts(trace: Trace, row: int) -> int | None:
    t = int(trace.ts[row])
    return None if t == NO_TIME else t


def thread_ref(trace: Trace, row: int) -> dict[str, Any]:
    """``{"tid", "name"}`` of the thread that emitted ``row``."""
    th = trace.threads.iloc[int(trace.row_thread[row])]
    tid, name = th["tid"], th["name"]
    return {
        "tid": None if tid is pd.NA or tid is None else int(tid),
        "name": None if name is pd.NA or name is None else str(name),
    }


def channel_closed(trace: Trace, part: Participant, after_row: int | None) -> int | None:
    """Time the COLO thread first closed a channel after COLO started (None: never)."""
    rows = event_rows(trace, protocol().channel_closed, part.mask)
    if after_row is not None:
        rows = rows[rows > after_row]
    return _ts(trace, int(rows[0])) if len(rows) else None


def analyze_failover(
    trace: Trace, part: Participant, checkpoints: list[Checkpoint], colo_row: int | None
) -> Failover | None:
    """The failover of ``part``, or None when the trace shows no failover on it."""
    proto = protocol()
    pmask = part.process_mask
    if colo_row is not None:
        pmask = pmask & (np.arange(len(trace)) > colo_row)
    state_rows = event_rows(trace, proto.failover_state, pmask)
    qmp_rows = event_rows(trace, proto.failover_command, pmask)
    if not len(state_rows) and not len(qmp_rows):
        return None
    states = arg_text(trace, proto.failover_state, state_rows, "new_state")
    require = [r for r, s in zip(state_rows.tolist(), states, strict=True) if s == proto.request_state]
    first = [int(qmp_rows[0])] if len(qmp_rows) else []
    first += require[:1]
    request_row = min(first) if first else None
    if len(qmp_rows) and request_row == int(qmp_rows[0]):
        by = QMP
    elif request_row is not None:
        who = thread_ref(trace, request_row)
        on_colo = part.thread is not None and int(trace.row_thread[request_row]) == part.thread
        by = "colo-thread" if on_colo else f"thread {who['name'] or who['tid'] or '?'}"
    else:
        by = None
    request_ns = _ts(trace, request_row) if request_row is not None else None
    f = Failover(
        requested_by=by,
        request_ns=request_ns,
        request_thread=thread_ref(trace, request_row) if request_row is not None else None,
        channel_closed_ns=channel_closed(trace, part, colo_row),
        during=None,
        checkpoint=None,
        states=[
            {"state": s, "ts_ns": _ts(trace, r), "thread": thread_ref(trace, r)}
            for r, s in zip(state_rows.tolist(), states, strict=True)
        ],
        final_state=states[-1] if states else None,
    )
    if request_ns is not None:
        c, step = state_at(checkpoints, request_ns)
        f.during, f.checkpoint = step, (c.index if c is not None else None)
    mig = event_rows(trace, proto.migration_state, part.process_mask)
    if len(mig):
        f.migration_state = arg_text(trace, proto.migration_state, mig[-1:], "new_state")[0]
    if request_row is not None:
        run = event_rows(trace, proto.running.event, part.process_mask)
        run = run[run > request_row]
        if len(run):
            run = run[matches(trace, proto.running.event, run, proto.running.where)]
        f.running_ns = _ts(trace, int(run[0])) if len(run) else None
    if proto.relaunch_state in states:
        f.notes.append(
            f"failover state {proto.relaunch_state}: the COLO thread was busy with checkpoint "
            f"{f.checkpoint if f.checkpoint is not None else '?'} and asked for failover again "
            "when it had finished with it"
        )
    if f.channel_closed_ns is not None and request_ns is not None and f.channel_closed_ns < request_ns:
        f.notes.append("the COLO channel closed before failover was asked for: the peer was gone first")
    return f
