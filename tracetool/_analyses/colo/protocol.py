"""The COLO protocol as data (``colo.toml``), and finding its participants in a trace.

A process takes part in COLO when it sends or receives COLO messages. It is the **primary**
when it sends what goes to the secondary (``checkpoint-request``, ...) or receives what goes
to the primary (``vmstate-loaded``, ...), the **secondary** the other way round; only when the
messages say neither does the migration side decide (src: primary, dst: secondary). Its
**COLO thread** is the thread that exchanged the most checkpoint messages (the secondary's
``COLO incoming`` / ``mig/dst/colo``, the primary's migration thread).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from tracetool._analyses.merge import process_mask
from tracetool._model.trace import Trace

PRIMARY, SECONDARY = "primary", "secondary"
SEND, RECEIVE = "colo_send_message", "colo_receive_message"


@dataclass(frozen=True)
class Step:
    """One event a checkpoint passes on one side (see colo.toml)."""

    event: str
    where: Mapping[str, tuple[str, ...]]
    time: str | None
    then: str | None
    starts: bool = False
    completes: bool = False
    pick: str = "first"
    count: str | None = None


@dataclass(frozen=True)
class Where:
    """An event and the argument values it must have."""

    event: str
    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Protocol:
    """colo.toml, compiled."""

    to_secondary: frozenset[str]
    to_primary: frozenset[str]
    steps: Mapping[str, tuple[Step, ...]]
    colo_start: Where
    failover_command: str
    failover_state: str
    request_state: str
    relaunch_state: str
    channel_closed: str
    migration_state: str
    running: Where


def _where(d: Mapping[str, Any] | None) -> dict[str, tuple[str, ...]]:
    return {k: tuple(str(x) for x in v) for k, v in (d or {}).items()}


@cache
def protocol() -> Protocol:
    """The COLO rules shipped with migtrace."""
    text = resources.files("tracetool._analyses.colo").joinpath("colo.toml").read_text("utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    steps = {
        side: tuple(
            Step(
                event=s["event"],
                where=_where(s.get("where")),
                time=s.get("time"),
                then=s.get("then"),
                starts=bool(s.get("starts", False)),
                completes=bool(s.get("completes", False)),
                pick=s.get("pick", "first"),
                count=s.get("count"),
            )
            for s in data[side]["step"]
        )
        for side in (PRIMARY, SECONDARY)
    }
    f = data["failover"]
    return Protocol(
        to_secondary=frozenset(data["messages"]["to_secondary"]),
        to_primary=frozenset(data["messages"]["to_primary"]),
        steps=steps,
        colo_start=Where(data["colo_start"]["event"], _where(data["colo_start"].get("where"))),
        failover_command=f["command"],
        failover_state=f["state"],
        request_state=f["request_state"],
        relaunch_state=f["relaunch_state"],
        channel_closed=f["channel_closed"],
        migration_state=f["migration_state"],
        running=Where(f["running"]["event"], _where(f["running"].get("where"))),
    )


def step_events(side: str) -> list[str]:
    """The trace events the checkpoint steps of a side read."""
    return list(dict.fromkeys(s.event for s in protocol().steps[side]))


# ---------------------------------------------------------------------------------- rows
def event_rows(trace: Trace, events: str | Sequence[str], mask: np.ndarray) -> np.ndarray:
    """Rows of ``events`` where ``mask`` is set (time order)."""
    rows = trace.rows(events)
    return rows[mask[rows]] if len(rows) else rows


def arg_text(trace: Trace, event: str, rows: np.ndarray, arg: str) -> list[str | None]:
    """One decoded argument of ``event`` at ``rows``, as text (None where it did not decode)."""
    if not len(rows):
        return []
    f = trace.fields(event)
    if arg not in f.columns:
        return [None] * len(rows)
    col = f[arg].reindex(rows)
    return [None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v) for v in col]


def matches(trace: Trace, event: str, rows: np.ndarray, where: Mapping[str, tuple[str, ...]]) -> np.ndarray:
    """Which of ``rows`` (all of ``event``) have the argument values ``where`` asks for."""
    ok = np.ones(len(rows), dtype=bool)
    for arg, allowed in where.items():
        values = arg_text(trace, event, rows, arg)
        ok &= np.array([v in allowed for v in values], dtype=bool)
    return ok


def first_row(trace: Trace, w: Where, mask: np.ndarray) -> int | None:
    """The first row of ``w``'s event with its arguments, inside ``mask``."""
    rows = event_rows(trace, w.event, mask)
    if len(rows) and w.where:
        rows = rows[matches(trace, w.event, rows, w.where)]
    return int(rows[0]) if len(rows) else None


# ---------------------------------------------------------------------------------- participants
@dataclass(frozen=True)
class Participant:
    """A process that takes part in COLO: its role, how the role was found, its COLO thread
    (index into ``trace.threads``; None without thread ids) and the rows of that thread (all
    the process's rows when the trace has no thread ids)."""

    label: str
    role: str
    role_from: str
    thread: int | None
    thread_tid: int | None
    thread_name: str | None
    mask: np.ndarray
    process_mask: np.ndarray


def participants(trace: Trace) -> list[Participant]:
    """Every process of the trace that sends or receives COLO messages (see module docstring)."""
    proto = protocol()
    out: list[Participant] = []
    side_of = {str(r.label): r.side for r in trace.processes.itertuples()}
    th = trace.threads
    for label in [str(x) for x in trace.processes["label"]]:
        pmask = process_mask(trace, label)
        sent = event_rows(trace, SEND, pmask)
        received = event_rows(trace, RECEIVE, pmask)
        if not len(sent) and not len(received):
            continue
        out_msgs = set(filter(None, arg_text(trace, SEND, sent, "msg")))
        in_msgs = set(filter(None, arg_text(trace, RECEIVE, received, "msg")))
        says_primary = bool(out_msgs & proto.to_secondary or in_msgs & proto.to_primary)
        says_secondary = bool(out_msgs & proto.to_primary or in_msgs & proto.to_secondary)
        if says_primary != says_secondary:
            role, role_from = (PRIMARY if says_primary else SECONDARY), "messages"
        else:
            side = side_of.get(label)
            role = PRIMARY if side == "src" else SECONDARY if side == "dst" else "unknown"
            role_from = "migration side" if role != "unknown" else "unknown"
        rows = np.concatenate([sent, received])
        threads = trace.row_thread[rows]
        counts = np.bincount(threads, minlength=len(th))
        t = int(np.argmax(counts))
        tid = th["tid"].iloc[t]
        if tid is pd.NA or tid is None:
            out.append(Participant(label, role, role_from, None, None, None, pmask, pmask))
            continue
        name = th["name"].iloc[t]
        mask = pmask & (trace.row_thread == t)
        out.append(
            Participant(
                label,
                role,
                role_from,
                t,
                int(tid),
                None if name is pd.NA or name is None else str(name),
                mask,
                pmask,
            )
        )
    return out
