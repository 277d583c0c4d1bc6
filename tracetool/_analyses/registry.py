"""The one list of migtrace's analyses.

Each :class:`Analysis` names a function ``Trace -> result`` (every result type has
``to_json()``, ``empty`` and ``issue_count``), the keyword options it takes, the trace events
it needs (``events.toml``, keyed by ``events_key``), the note a report shows when the trace has
nothing for it, and whether it is a report section. Reports, the check metrics, the notebook
display, ``migtrace events --for`` and ``migtrace capture`` all read this table: adding an
analysis is one module, one entry here and its rows in the metric table (a module of
``tracetool._check.metric_rows``).

    >>> run(trace, "bql").to_json()["bql"]["threads"]
    >>> [a.name for a in sections()]
    ['summary', 'phases', 'downtime', 'bql', 'trace_end', 'preempt', 'colo']

Results are computed once per trace and options (:func:`run` keeps them while the trace lives).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tracetool._analyses.bql.report import NOT_IN_TRACE as BQL_NOT_IN_TRACE
from tracetool._analyses.bql.report import BqlReport, analyze_bql
from tracetool._analyses.colo.colo import NOT_IN_TRACE as COLO_NOT_IN_TRACE
from tracetool._analyses.colo.colo import ColoReport, analyze_colo
from tracetool._analyses.downtime.analysis import DEVICE_EVENTS, analyze_downtime
from tracetool._analyses.downtime.result import DowntimeReport
from tracetool._analyses.events import AnalysisEvents, EventPattern, event_data
from tracetool._analyses.phases import PhaseReport, analyze_phases
from tracetool._analyses.preempt import PreemptReport, analyze_preempt
from tracetool._analyses.summary import TraceSummary, summarize
from tracetool._analyses.trace_end import TraceEnd, analyze_trace_end
from tracetool._model.trace import Trace
from tracetool._timeline.builder import build_timeline
from tracetool._timeline.result import Timeline
from tracetool._timeline.rules import rules
from tracetool.errors import UsageError

NO_TIMESTAMPS = (
    "no timestamps in this trace: counts only, no durations (record with "
    "-msg timestamp=on, or use a backend with timestamps)"
)


class Result(Protocol):
    """What every analysis returns."""

    def to_json(self) -> dict[str, Any]:
        """The analysis's ``--format json`` document (keys documented in the README)."""
        ...

    @property
    def empty(self) -> bool:
        """True when the trace had nothing for this analysis (a report shows the note instead)."""
        ...

    @property
    def issue_count(self) -> int:
        """Inconsistencies found in the input (``--strict`` fails on them)."""
        ...


@dataclass(frozen=True)
class Analysis:
    """One entry of the registry (see the module docstring); ``label`` names it in a sentence
    ("the BQL analysis"); ``issues_from`` names what its ``issue_count`` counts, so that
    analyses sharing the timeline's issues are counted once in a report."""

    name: str
    label: str
    run: Callable[..., Any]
    result_type: type
    options: frozenset[str] = frozenset()
    section: bool = True
    events_key: str | None = None
    missing: Callable[[Trace, Any], str] | None = None
    in_report: Callable[[Any], Any] | None = None
    issues_from: str | None = None

    @property
    def command(self) -> str:
        """The command that prints this analysis."""
        return f"migtrace {self.name}"

    @property
    def event_list(self) -> AnalysisEvents | None:
        """The trace events this analysis reads (``events.toml``), or None when it needs none."""
        return event_data().analyses.get(self.events_key) if self.events_key else None

    def events(self, generation: str | None = None) -> list[EventPattern]:
        """The event patterns to enable for this analysis on a QEMU generation."""
        info = self.event_list
        return [e for e in info.events if e.applies_to(generation)] if info else []

    def not_in_trace(self, trace: Trace, result: Any) -> str:
        """Why a report has no section for this analysis on ``trace``."""
        if self.missing is not None:
            return self.missing(trace, result)
        wanted = ", ".join(e.pattern for e in (self.event_list.required() if self.event_list else []))
        return f"not in this trace: enable {wanted}"

    def report_json(self, result: Any) -> Any:
        """The result as the report's JSON holds it under this analysis's name."""
        return self.in_report(result) if self.in_report is not None else result.to_json()


# ------------------------------------------------------------------------------ the entries
PREEMPT_NOTE_EVENTS = (
    "loadvm_postcopy_handle_listen",
    "postcopy_ram_listen_thread_start",
    "postcopy_preempt_thread_entry",
    "postcopy_preempt_new_channel",
    "postcopy_page_req_add",
    "postcopy_page_req_del",
    "ram_load_postcopy_loop",
)


def dst_phase_events() -> list[str]:
    """The events that start the destination's phases (from the span rules), in rule order."""
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


def _phases_missing(trace: Trace, result: PhaseReport) -> str:
    return (
        "not in this trace: no incoming (destination) migration; trace the destination "
        "QEMU with these events enabled: " + ", ".join(dst_phase_events())
    )


def _downtime_missing(trace: Trace, result: DowntimeReport) -> str:
    if not trace.has_time:
        return NO_TIMESTAMPS
    return (
        "not in this trace: trace both QEMUs (source and destination) with "
        + ", ".join(switchover_events())
        + f" and {DEVICE_EVENTS} (QEMU >= 8.2)"
    )


def _bql_missing(trace: Trace, result: BqlReport) -> str:
    return result.note or BQL_NOT_IN_TRACE


def _trace_end_missing(trace: Trace, result: TraceEnd) -> str:
    return result.not_in_trace()


def _preempt_missing(trace: Trace, result: PreemptReport) -> str:
    return (
        "not in this trace: no postcopy; to see preempt waits, migrate with the "
        "postcopy-ram and postcopy-preempt capabilities and enable " + ", ".join(PREEMPT_NOTE_EVENTS)
    )


def _downtime(trace: Trace, query_migrate: Any = None) -> DowntimeReport:
    # The BQL time of each step comes from the BQL analysis of the same trace, computed once.
    bql = run(trace, "bql") if trace.code_of("qemu_mutex_locked") is not None else None
    return analyze_downtime(trace, query_migrate, bql=bql)


def _colo(trace: Trace) -> ColoReport:
    # The BQL analysis of the report (cached) gives the holds and waits each checkpoint clips.
    bql = run(trace, "bql") if trace.code_of("qemu_mutex_locked") is not None else None
    return analyze_colo(trace, bql=bql)


ANALYSES: dict[str, Analysis] = {
    a.name: a
    for a in (
        Analysis("summary", "summary", summarize, TraceSummary, issues_from="summary"),
        Analysis(
            "phases",
            "phase",
            analyze_phases,
            PhaseReport,
            options=frozenset({"query_migrate"}),
            events_key="phases",
            missing=_phases_missing,
            issues_from="timeline",
        ),
        Analysis(
            "downtime",
            "downtime",
            _downtime,
            DowntimeReport,
            options=frozenset({"query_migrate"}),
            events_key="downtime",
            missing=_downtime_missing,
        ),
        Analysis(
            "bql",
            "BQL",
            analyze_bql,
            BqlReport,
            options=frozenset({"bql_addr", "top"}),
            events_key="bql",
            missing=_bql_missing,
            issues_from="bql",
        ),
        Analysis(
            "trace_end",
            "end-of-trace",
            analyze_trace_end,
            TraceEnd,
            missing=_trace_end_missing,
        ),
        Analysis(
            "preempt",
            "preempt",
            analyze_preempt,
            PreemptReport,
            events_key="preempt",
            missing=_preempt_missing,
            in_report=lambda r: r.to_json()["preempt"],
            issues_from="timeline",
        ),
        Analysis(
            "colo",
            "COLO",
            _colo,
            ColoReport,
            events_key="colo",
            missing=lambda trace, result: COLO_NOT_IN_TRACE,
            issues_from="colo",
        ),
        Analysis(
            "timeline",
            "timeline",
            build_timeline,
            Timeline,
            section=False,
            events_key="phases",
            issues_from="timeline",
        ),
    )
}
"""Every analysis, in the order reports show their sections."""


def get(name: str) -> Analysis:
    """The analysis called ``name``; UsageError naming the known ones otherwise."""
    try:
        return ANALYSES[name]
    except KeyError:
        raise UsageError(f"unknown analysis {name!r} (known: {', '.join(ANALYSES)})") from None


def sections() -> list[Analysis]:
    """The analyses that are report sections, in report order."""
    return [a for a in ANALYSES.values() if a.section]


def with_events() -> list[Analysis]:
    """The analyses that read trace events of their own (``migtrace events --for``), one per
    event list."""
    seen: set[str] = set()
    out = []
    for a in ANALYSES.values():
        if a.events_key and a.events_key not in seen and a.events_key == a.name:
            seen.add(a.events_key)
            out.append(a)
    return out


def parse_names(spec: str) -> list[str]:
    """``bql,preempt`` -> those analyses (the ones with event lists); ``all`` or empty -> every
    one. UsageError names the choices."""
    known = [a.name for a in with_events()]
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names or names == ["all"]:
        return known
    bad = [n for n in names if n not in known]
    if bad:
        raise UsageError(f"--for: unknown analysis {bad[0]!r} (choose from: {', '.join(known)}, all)")
    return list(dict.fromkeys(names))


_RESULTS: weakref.WeakKeyDictionary[Trace, dict[tuple[Hashable, ...], tuple[Any, Any]]] = (
    weakref.WeakKeyDictionary()
)


def _key(analysis: Analysis, options: Mapping[str, Any]) -> tuple[Hashable, ...]:
    parts: list[Hashable] = [analysis.name, analysis.run]
    for k in sorted(options):
        v = options[k]
        try:
            hash(v)
        except TypeError:
            v = ("id", id(v))
        parts.append((k, v))
    return tuple(parts)


def run(trace: Trace, name: str, **options: Any) -> Any:
    """The result of analysis ``name`` on ``trace`` (computed once per trace and options).

    Options the analysis does not take are an error; options left at None are dropped.
    """
    analysis = get(name)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = set(given) - analysis.options
    if unknown:
        raise UsageError(f"analysis {name!r} takes no option {sorted(unknown)[0]!r}")
    per_trace = _RESULTS.setdefault(trace, {})
    key = _key(analysis, given)
    hit = per_trace.get(key)
    if hit is None:
        # The options are kept with the result so that an id() in the key stays valid.
        hit = (analysis.run(trace, **given), given)
        per_trace[key] = hit
    return hit[0]
