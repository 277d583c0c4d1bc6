"""Everything migtrace can say about one trace, gathered for a report.

:func:`collect` runs every analysis that applies (summary, incoming phases, downtime, BQL,
postcopy preempt) and keeps each result. An analysis with nothing to work on in this trace
leaves its result out and says instead which events to enable, so a report never shows an
empty section and never stops on a trace that lacks some events. Nothing here prints.

    >>> data = collect(tracetool.load("dst.trace.xz"))
    >>> data.bql.primary.threads        # or data.notes["bql"] when there are no mutex events
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tracetool._analyses.bql.bql import NOT_IN_TRACE as BQL_NOT_IN_TRACE
from tracetool._analyses.bql.bql import BqlReport, analyze_bql
from tracetool._analyses.phases import PhaseReport, incoming_phases
from tracetool._analyses.preempt import PreemptReport, preempt_waits
from tracetool._model.querymigrate import QueryMigrate
from tracetool._model.trace import Trace
from tracetool._timeline.timeline import rules

SECTIONS = ("summary", "phases", "downtime", "bql", "preempt")
"""Report sections, in the order reports show them."""

PREEMPT_EVENTS = ("loadvm_postcopy_handle_listen", "postcopy_ram_listen_thread_start",
                  "postcopy_preempt_thread_entry", "postcopy_preempt_new_channel",
                  "postcopy_page_req_add", "postcopy_page_req_del", "ram_load_postcopy_loop")
NO_TIMESTAMPS = ("no timestamps in this trace: counts only, no durations (record with "
                 "-msg timestamp=on, or use a backend with timestamps)")

T = TypeVar("T")


@dataclass
class ReportData:
    """All analysis results of one trace, each None where the trace has nothing for it.

    ``notes[section]`` explains an absent result ("not in this trace: enable ...") and holds
    report-level remarks; each analysis keeps its own notes in its result.
    ``downtime`` is ``{"switchover": ..., "total_time": ..., "alignment": ...}`` as
    :func:`tracetool._analyses.phases.incoming_phases` measured them.
    """

    inputs: list[str]
    trace: Trace
    summary: dict[str, Any]
    phases: PhaseReport | None = None
    downtime: dict[str, Any] | None = None
    bql: BqlReport | None = None
    preempt: PreemptReport | None = None
    query_migrate: QueryMigrate | None = None
    notes: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SECTIONS})

    @property
    def title(self) -> str:
        """A short name for the trace: its input paths."""
        return ", ".join(self.inputs) if self.inputs else "trace"

    def has(self, section: str) -> bool:
        """Whether the section has a result (else its notes say why not)."""
        return getattr(self, section) is not None

    def load_thread(self) -> dict[str, Any] | None:
        """The destination's load thread as the phase analysis found it (tid, name, role)."""
        return self.phases.load_thread if self.phases is not None else None


def dst_phase_events() -> list[str]:
    """The events that start the destination's phases (from tracetool/_timeline/spans.toml), in rule order."""
    out: list[str] = []
    for p in rules().phases:
        if p.side == "dst":
            out.extend(e for e in p.start if e not in out)
    return out


def switchover_events() -> list[str]:
    """The events that bound the switchover downtime on either side."""
    out: list[str] = []
    for p in rules().phases:
        if p.name in ("switchover", "src-downtime"):
            out.extend(e for e in (*p.start, *p.end) if e not in out)
    return out


def _guard(notes: list[str], what: str, run: Callable[[], T]) -> T | None:
    """Runs one analysis; a failure becomes a note so the other sections still appear."""
    try:
        return run()
    except Exception as exc:
        if os.environ.get("MIGTRACE_DEBUG"):
            raise
        notes.append(f"{what} failed on this trace: {type(exc).__name__}: {exc}")
        return None


def collect(trace: Trace, query_migrate: QueryMigrate | None = None,
            inputs: Sequence[str] = ()) -> ReportData:
    """Runs every analysis that applies to ``trace`` (see module docstring).

    ``query_migrate``: QEMU's own status and numbers, compared with the trace.
    ``inputs``: the paths the trace was loaded from, as the user gave them (for titles).
    """
    paths = list(inputs) or [str(p) for p in trace.inputs["path"].astype(str).tolist()]
    data = ReportData(inputs=paths, trace=trace, summary=trace.summary(), query_migrate=query_migrate)
    notes = data.notes
    if not trace.has_time:
        notes["summary"].append(NO_TIMESTAMPS)

    phases = _guard(notes["phases"], "the phase analysis", lambda: incoming_phases(trace, query_migrate))
    if phases is not None:
        if phases.process is not None:
            data.phases = phases
        else:
            notes["phases"].append(
                "not in this trace: no incoming (destination) migration; trace the destination "
                "QEMU with these events enabled: " + ", ".join(dst_phase_events()))
        data.downtime = _downtime(phases)
    if data.downtime is None:
        notes["downtime"].append(NO_TIMESTAMPS if not trace.has_time else
                                 "not in this trace: enable " + ", ".join(switchover_events()))

    bql = _guard(notes["bql"], "the BQL analysis", lambda: analyze_bql(trace))
    if bql is not None:
        if bql.note is None and bql.processes:
            data.bql = bql
        else:
            notes["bql"].append(bql.note or BQL_NOT_IN_TRACE)

    preempt = _guard(notes["preempt"], "the preempt analysis", lambda: preempt_waits(trace))
    if preempt is not None:
        if preempt.postcopy or preempt.enabled:
            data.preempt = preempt
        else:
            notes["preempt"].append(
                "not in this trace: no postcopy; to see preempt waits, migrate with the "
                "postcopy-ram and postcopy-preempt capabilities and enable "
                + ", ".join(PREEMPT_EVENTS))
    return data


def _downtime(phases: PhaseReport) -> dict[str, Any] | None:
    """Downtime and total time from both ends; None when neither the trace nor QEMU gave one."""
    down, total = phases.downtime, phases.total_time
    known = [down.get(k) for k in ("src_us", "dst_us", "end_to_end_us", "qemu_reported_ms")]
    known += [total.get(k) for k in ("src_us", "dst_us", "qemu_reported_ms")]
    if all(v is None for v in known):
        return None
    return {"switchover": dict(down), "total_time": dict(total), "alignment": dict(phases.alignment)}
