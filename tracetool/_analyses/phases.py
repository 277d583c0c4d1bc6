"""Incoming migration phases of the destination: what ran when, on which thread, and how it ended.

Built on the timeline (phase, section and device spans, instants); works for both loads: the
pre-threadify coroutine on the main thread (QEMU <= 10.1) and the threaded ``mig/dst/main``.
``migtrace phases --format json`` is ``PhaseReport.to_json()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tracetool._analyses.merge import align, process_mask, process_of_side, switchover_downtime, total_time
from tracetool._analyses.multifd import MultifdReport, multifd_recv, multifd_send_pages
from tracetool._json import records
from tracetool._model.querymigrate import QueryMigrate
from tracetool._model.trace import Trace
from tracetool._timeline.builder import build_timeline
from tracetool._timeline.result import Timeline
from tracetool._timeline.rules import rules

SECTION_KEYS = {"START": "start", "PART": "part", "END": "end", "FULL": "full", "COMMAND": "command"}
SIDE_WORDS = {"src": "source", "dst": "destination"}
PHASE_KEYS = ("name", "tid", "thread", "role", "start_ns", "end_ns", "duration_us", "closed")
MAX_ISSUES_IN_JSON = 200


@dataclass
class PhaseReport:
    """The result of :func:`analyze_phases` (see ``to_json`` for the stable keys)."""

    process: str | None
    phases: pd.DataFrame
    devices: pd.DataFrame
    load_thread: dict[str, Any]
    outcome: str
    ram: dict[str, Any]
    checkpoints: pd.DataFrame
    multifd: MultifdReport
    downtime: dict[str, Any]
    total_time: dict[str, Any]
    qemu_status: dict[str, Any] | None
    notes: list[str]
    issues: pd.DataFrame
    alignment: dict[str, Any] = field(default_factory=dict)
    outcome_sides: dict[str, Any] = field(default_factory=dict)
    open_at_end: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["path", "line", "message"])
    )

    def to_json(self) -> dict[str, Any]:
        """The ``migtrace phases --format json`` document."""
        return {
            "process": self.process,
            "phases": records(self.phases, PHASE_KEYS),
            "devices": records(
                self.devices,
                (
                    "idstr",
                    "instance_id",
                    "section_id",
                    "section_type",
                    "tid",
                    "thread",
                    "start_ns",
                    "duration_us",
                    "downtime_us",
                    "closed",
                ),
            ),
            "load_thread": self.load_thread,
            "outcome": self.outcome,
            "outcome_sides": self.outcome_sides,
            "ram": self.ram,
            "checkpoints": records(self.checkpoints, ("process", "name", "tid", "thread", "ts_ns")),
            "multifd": self.multifd.to_json(),
            "downtime": self.downtime,
            "total_time": self.total_time,
            "qemu_status": self.qemu_status,
            "alignment": self.alignment,
            "notes": list(self.notes),
            "issue_counts": {str(k): int(v) for k, v in self.issues["kind"].value_counts().items()},
            "issues": records(self.issues.head(MAX_ISSUES_IN_JSON), ("kind", "path", "line", "message")),
            "open_at_end": records(self.open_at_end.head(MAX_ISSUES_IN_JSON), ("path", "line", "message")),
        }

    @property
    def empty(self) -> bool:
        """True when the trace has no incoming (destination) migration."""
        return self.process is None

    @property
    def issue_count(self) -> int:
        """Timeline inconsistencies (unclosed spans, lines out of order)."""
        return len(self.issues)


def analyze_phases(trace: Trace, query_migrate: QueryMigrate | None = None) -> PhaseReport:
    """Phases, per-device loads, RAM sections, outcome and downtime of the destination.

    ``query_migrate``: QEMU's own final status and figures, shown next to the trace's.
    """
    query = query_migrate
    tl = build_timeline(trace)
    notes = list(tl.notes)
    dst = process_of_side(trace, "dst")
    if dst is None:
        notes.append("no destination (incoming) process in this trace: nothing to cut into phases")
        unknown = trace.processes["side"].isna().sum()
        if unknown:
            notes.append(
                f"{unknown} process(es) of unknown side: both QEMUs in one input without "
                "process ids (e.g. ftrace without record-tgid) cannot be told apart"
            )
    spans = tl.spans[tl.spans["process"] == dst] if dst is not None else tl.spans.iloc[0:0]
    phases = spans[spans["kind"] == "phase"].reset_index(drop=True)
    devices = _devices(spans)
    mask = process_mask(trace, dst) if dst is not None else np.zeros(len(trace), bool)
    outcome, last_state = _outcome(tl, dst)
    if outcome == "incomplete" and dst is not None:
        notes.append(_cut_note(trace, mask, last_state))
    src = process_of_side(trace, "src")
    src_outcome, src_state = _outcome(tl, src)
    sides: dict[str, Any] = {
        "dst": {"state": last_state, "outcome": outcome, "from": "trace"} if dst is not None else None,
        "src": {"state": src_state, "outcome": src_outcome, "from": "trace"} if src is not None else None,
    }
    src_known = src is not None
    if src is None and query is not None and query.status("src"):
        # A source without a trace: its final state as QEMU's query-migrate reported it.
        src_state = query.status("src")
        src_outcome = _outcome_of_state(src_state) or "incomplete"
        sides["src"] = {"state": src_state, "outcome": src_outcome, "from": "query-migrate"}
        src_known = True
    if dst is not None and src_outcome == "cancelled" and outcome in ("failed", "incomplete"):
        # A cancel on the source closes the stream; the destination only sees its load fail.
        notes.append(
            f"the source cancelled the migration; the destination recorded "
            f"'{last_state or 'nothing'}' (a cancel looks like a failed load there)"
        )
        outcome = "cancelled"
    elif dst is not None and src_known and outcome == "incomplete" and src_outcome in ("failed", "paused"):
        # The destination died or its trace stops; the source saw the stream break.
        notes.append(
            f"outcome from the source: it said '{src_state}'; the destination's trace ends with "
            f"'{last_state or 'nothing'}' (the destination died, or its trace was cut)"
        )
        outcome = src_outcome
    elif dst is not None and src is not None and src_outcome not in ("incomplete", outcome):
        notes.append(f"the two sides disagree: the source said '{src_state}', the destination '{last_state}'")
    lt = _load_thread(trace, dst)
    if lt.get("inferred"):
        notes.append(
            f"no thread ids: the load thread is taken to be {lt['name']} from the end events this QEMU emits"
        )
    ram = _ram(trace, spans, mask, query)
    mf_pages = multifd_send_pages(trace, process_mask(trace, src) if src is not None else None)
    checkpoints = tl.instants[tl.instants["kind"] == "checkpoint"].reset_index(drop=True)
    if dst is not None and not len(checkpoints):
        notes.append("no vmstate_downtime_checkpoint events (QEMU < 8.2, or not enabled)")
    mf = multifd_recv(trace, mask if dst is not None else None)
    if mf.note:
        notes.append(mf.note)
    if mf.present and mf_pages is not None and all(c["pages"] is None for c in mf.channels):
        # QEMU >= 9.2's receive side traces no page counts; the source's fill events do.
        normal, zero = mf_pages
        ram.update(normal_pages=normal, zero_pages=zero, pages=normal + zero, pages_from="source")
        if ram["page_size"]:
            ram["bytes"] = normal * ram["page_size"]
        notes.append(
            "multifd: the destination traces no page counts; normal and zero pages are the "
            "source's (multifd_send_ram_fill)"
        )
    a = align(trace)
    down = switchover_downtime(trace, query, a)
    notes.extend(down.notes)
    if a.src is not None and a.dst is not None:
        notes.extend(a.notes)
    status: dict[str, Any] | None = None
    if query is not None:
        status = {"src": query.status("src"), "dst": query.status("dst")}
        agree = _agrees(outcome, status)
        status["agrees"] = agree
        if agree is False:
            said = " and ".join(f"the {who} '{status[k]}'" for k, who in SIDE_WORDS.items() if status[k])
            notes.append(f"QEMU's query-migrate said {said} but the trace shows '{outcome}'")
        notes.extend(query.exit_notes())
    return PhaseReport(
        process=dst,
        phases=phases,
        devices=devices,
        load_thread=lt,
        outcome=outcome,
        ram=ram,
        checkpoints=checkpoints,
        multifd=mf,
        downtime=down.to_json(),
        total_time=total_time(trace, query).to_json(),
        qemu_status=status,
        notes=notes,
        issues=tl.issues,
        open_at_end=tl.open_at_end,
        alignment=a.to_json(),
        outcome_sides=sides,
    )


def _devices(spans: pd.DataFrame) -> pd.DataFrame:
    dev = spans[spans["kind"] == "device"].reset_index(drop=True).copy()
    names = rules().names.get("section_types", {})
    if "section_type" in dev:
        dev["section_type"] = [
            names.get(str(x), str(x)) if not pd.isna(x) else None for x in dev["section_type"].tolist()
        ]
    dev["downtime_us"] = dev["downtime"].astype("Float64") if "downtime" in dev else pd.NA
    return dev


def _outcome_of_state(state: str | None) -> str | None:
    """The outcome a final migration state stands for (the ``[outcome]`` table), or None."""
    for outcome, values in rules().outcome.items():
        if state in values:
            return str(outcome)
    return None


def _outcome(tl: Timeline, dst: str | None) -> tuple[str, str | None]:
    inst = tl.instants
    states = inst[(inst["kind"] == "state") & (inst["process"] == dst)]
    if not len(states):
        return "incomplete", None
    for name in reversed(states["name"].tolist()):
        outcome = _outcome_of_state(name)
        if outcome is not None:
            return outcome, name
    return "incomplete", str(states["name"].iloc[-1])


def _cut_note(trace: Trace, mask: np.ndarray, last_state: str | None) -> str:
    rows = np.flatnonzero(mask)
    where = ""
    if len(rows):
        last = int(rows[-1])
        path = str(trace.inputs["path"].iloc[int(trace.source[last])])
        where = f" (last event {trace.event_names[trace.name_codes[last]]} at {path}:{int(trace.line[last])})"
    state = f"'{last_state}'" if last_state else "not yet started"
    return f"incomplete: the trace ends while the incoming migration is {state}{where}"


def _load_thread(trace: Trace, dst: str | None) -> dict[str, Any]:
    if dst is None:
        return {"tid": None, "name": None, "role": None, "inferred": False}
    p = trace.processes
    row = p[p["label"] == dst].iloc[0]
    tid = row["load_tid"]
    if not pd.isna(tid):
        th = trace.threads
        hit = th[(th["process"] == dst) & (th["tid"] == int(tid))]
        name = None if not len(hit) or pd.isna(hit["name"].iloc[0]) else str(hit["name"].iloc[0])
        role = str(hit["role"].iloc[0]) if len(hit) else None
        return {"tid": int(tid), "name": name, "role": role, "inferred": False}
    hints = rules().load_thread
    mask = process_mask(trace, dst)
    for events, name in (
        (hints.get("threaded_events", []), hints.get("threaded_name")),
        (hints.get("coroutine_events", []), hints.get("coroutine_name")),
    ):
        rows = trace.rows(list(events))
        if len(rows) and mask[rows].any():
            return {"tid": None, "name": name, "role": "load", "inferred": True}
    return {"tid": None, "name": None, "role": None, "inferred": False}


def _ram(trace: Trace, spans: pd.DataFrame, mask: np.ndarray, query: QueryMigrate | None) -> dict[str, Any]:
    sections = spans[spans["kind"] == "section"]
    counts = sections["name"].value_counts()
    by_type = {key: int(counts.get(name, 0)) for name, key in SECTION_KEYS.items()}
    zero, normal, post_n = _page_counts(trace, mask)
    complete = trace.fields("ram_load_complete")
    seq = None
    if len(complete) and "seq_iter" in complete:
        c = complete[mask[complete.index.to_numpy()]]["seq_iter"].dropna()
        seq = int(c.max()) if len(c) else None
    page_size = query.page_size if query else None
    pages = None if zero is None else zero + (normal or 0)
    return {
        "pages_from": "destination" if zero is not None else None,
        "iterations": by_type["part"],
        "sections": by_type,
        "pages": pages,
        "zero_pages": zero,
        "normal_pages": normal,
        "postcopy_pages": post_n,
        "seq_iterations": seq,
        "page_size": page_size,
        "bytes": normal * page_size if (normal is not None and page_size) else None,
    }


def _page_counts(trace: Trace, mask: np.ndarray) -> tuple[int | None, int | None, int]:
    """Zero and normal page records loaded (precopy and postcopy), and how many in postcopy."""
    bits = rules().ram
    zero_bit = bits.get("zero", 0)
    data_bits = bits.get("page", 0) | bits.get("xbzrle", 0) | bits.get("compressed", 0)
    zero = normal = None
    post = 0
    for event in ("ram_load_loop", "ram_load_postcopy_loop"):
        # Precopy pages: the flags only, not a text per page converted whole. Postcopy pages are
        # decoded whole once, for this and for the preempt analysis (the channel of each page).
        f = trace.fields(event, columns=("flags",) if event == "ram_load_loop" else None)
        if not len(f) or "flags" not in f:
            continue
        f = f[mask[f.index.to_numpy()]]
        flags = f["flags"].fillna(0).astype(np.int64).to_numpy()
        z = int(np.count_nonzero(flags & zero_bit))
        d = int(np.count_nonzero(flags & data_bits))
        zero, normal = (zero or 0) + z, (normal or 0) + d
        if event == "ram_load_postcopy_loop":
            post = z + d
    return zero, normal, post


def _agrees(outcome: str, status: dict[str, Any]) -> bool | None:
    """Whether the trace's outcome fits what QEMU reported (None when QEMU said nothing)."""
    reported = [s for s in (status.get("dst"), status.get("src")) if s]
    if not reported:
        return None
    if outcome == "incomplete":
        return not any(s in ("completed", "failed", "cancelled") for s in reported[:1])
    if outcome == "paused":
        return "postcopy-paused" in reported
    return outcome in reported
