"""migtrace's library: load QEMU migration traces and analyse them.

    >>> import tracetool
    >>> trace = tracetool.load("run/dst.trace.xz", threads=["run/dst-threads.json"])
    >>> trace.events.head()                          # one row per event, time-sorted
    >>> bql = tracetool.analyze_bql(trace)           # BQL holds and waits per thread
    >>> bql.primary.threads
    >>> tracetool.analyze_phases(trace).to_json()    # incoming phases, devices, downtime
    >>> tracetool.analyze_downtime(tracetool.load(["src.trace", "dst.trace"]))  # the pause end to end
    >>> tracetool.analyze_colo(trace).secondary.summary  # COLO checkpoints, pauses, failover
    >>> tracetool.check_trace(trace, "bql.hold.max{role=load} < 5ms").ok

Every analysis is a function ``Trace -> result``; every result has ``to_json()`` (the document
``migtrace <analysis> --format json`` prints), ``empty`` and ``issue_count``. ``analyses`` lists
them all (:func:`run_analysis` runs one by name). Everything not in ``__all__`` is internal.
In Jupyter, ``%load_ext reports.notebook`` shows results as tables.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracetool._analyses.bql.report import BqlProcess, BqlReport, analyze_bql
    from tracetool._analyses.colo.colo import ColoProcess, ColoReport, analyze_colo
    from tracetool._analyses.compare import compare
    from tracetool._analyses.comparison import Comparison
    from tracetool._analyses.downtime.analysis import analyze_downtime
    from tracetool._analyses.downtime.result import DowntimeReport
    from tracetool._analyses.multifd import MultifdReport
    from tracetool._analyses.phases import PhaseReport, analyze_phases
    from tracetool._analyses.preempt import PreemptReport, analyze_preempt
    from tracetool._analyses.registry import ANALYSES as analyses
    from tracetool._analyses.registry import Analysis, Result
    from tracetool._analyses.registry import run as run_analysis
    from tracetool._analyses.reportdata import ReportData, collect
    from tracetool._analyses.summary import TraceSummary, summarize
    from tracetool._analyses.trace_end import TraceEnd, analyze_trace_end
    from tracetool._batch.schedulers import BatchResult, measure_runs
    from tracetool._check.evaluate import CheckReport, RuleResult, Status, check_trace, measure_metric
    from tracetool._check.repeats import RunsComparison, compare_runs
    from tracetool._check.runmetrics import run_metrics
    from tracetool._history.regressions import RegressionReport, find_regressions
    from tracetool._history.store import History
    from tracetool._history.trend import Trend, trend
    from tracetool._model.lanes import thread_lanes, trace_start_ns
    from tracetool._model.load import load, load_run
    from tracetool._model.querymigrate import QueryMigrate, load_query_migrate
    from tracetool._model.runfolder import Run, RunFolder
    from tracetool._model.trace import Trace
    from tracetool._replay import EventContext, replay
    from tracetool._timeline.builder import build_timeline
    from tracetool._timeline.result import Timeline
    from tracetool.errors import (
        EmptyTrace,
        ForeignInput,
        ForeignInputWarning,
        InputError,
        NotInTrace,
        RulesError,
        TraceEventsError,
        UnknownFormat,
        UsageError,
    )

# Names are imported on first use, so that ``migtrace --help`` and ``import tracetool.errors``
# do not pay for pandas and every analysis.
_WHERE: dict[str, tuple[str, str]] = {
    "Analysis": ("tracetool._analyses.registry", "Analysis"),
    "BatchResult": ("tracetool._batch.schedulers", "BatchResult"),
    "BqlProcess": ("tracetool._analyses.bql.report", "BqlProcess"),
    "BqlReport": ("tracetool._analyses.bql.report", "BqlReport"),
    "CheckReport": ("tracetool._check.evaluate", "CheckReport"),
    "ColoProcess": ("tracetool._analyses.colo.colo", "ColoProcess"),
    "ColoReport": ("tracetool._analyses.colo.colo", "ColoReport"),
    "Comparison": ("tracetool._analyses.comparison", "Comparison"),
    "DowntimeReport": ("tracetool._analyses.downtime.result", "DowntimeReport"),
    "EmptyTrace": ("tracetool.errors", "EmptyTrace"),
    "EventContext": ("tracetool._replay", "EventContext"),
    "ForeignInput": ("tracetool.errors", "ForeignInput"),
    "ForeignInputWarning": ("tracetool.errors", "ForeignInputWarning"),
    "History": ("tracetool._history.store", "History"),
    "InputError": ("tracetool.errors", "InputError"),
    "MultifdReport": ("tracetool._analyses.multifd", "MultifdReport"),
    "NotInTrace": ("tracetool.errors", "NotInTrace"),
    "PhaseReport": ("tracetool._analyses.phases", "PhaseReport"),
    "PreemptReport": ("tracetool._analyses.preempt", "PreemptReport"),
    "QueryMigrate": ("tracetool._model.querymigrate", "QueryMigrate"),
    "RegressionReport": ("tracetool._history.regressions", "RegressionReport"),
    "ReportData": ("tracetool._analyses.reportdata", "ReportData"),
    "Result": ("tracetool._analyses.registry", "Result"),
    "RuleResult": ("tracetool._check.evaluate", "RuleResult"),
    "RulesError": ("tracetool.errors", "RulesError"),
    "Run": ("tracetool._model.runfolder", "Run"),
    "RunFolder": ("tracetool._model.runfolder", "RunFolder"),
    "RunsComparison": ("tracetool._check.repeats", "RunsComparison"),
    "Status": ("tracetool._check.evaluate", "Status"),
    "Timeline": ("tracetool._timeline.result", "Timeline"),
    "Trace": ("tracetool._model.trace", "Trace"),
    "TraceEnd": ("tracetool._analyses.trace_end", "TraceEnd"),
    "TraceEventsError": ("tracetool.errors", "TraceEventsError"),
    "TraceSummary": ("tracetool._analyses.summary", "TraceSummary"),
    "Trend": ("tracetool._history.trend", "Trend"),
    "UnknownFormat": ("tracetool.errors", "UnknownFormat"),
    "UsageError": ("tracetool.errors", "UsageError"),
    "analyses": ("tracetool._analyses.registry", "ANALYSES"),
    "analyze_bql": ("tracetool._analyses.bql.report", "analyze_bql"),
    "analyze_colo": ("tracetool._analyses.colo.colo", "analyze_colo"),
    "analyze_downtime": ("tracetool._analyses.downtime.analysis", "analyze_downtime"),
    "analyze_phases": ("tracetool._analyses.phases", "analyze_phases"),
    "analyze_preempt": ("tracetool._analyses.preempt", "analyze_preempt"),
    "analyze_trace_end": ("tracetool._analyses.trace_end", "analyze_trace_end"),
    "build_timeline": ("tracetool._timeline.builder", "build_timeline"),
    "check_trace": ("tracetool._check.evaluate", "check_trace"),
    "collect": ("tracetool._analyses.reportdata", "collect"),
    "compare": ("tracetool._analyses.compare", "compare"),
    "compare_runs": ("tracetool._check.repeats", "compare_runs"),
    "find_regressions": ("tracetool._history.regressions", "find_regressions"),
    "load": ("tracetool._model.load", "load"),
    "load_query_migrate": ("tracetool._model.querymigrate", "load_query_migrate"),
    "load_run": ("tracetool._model.load", "load_run"),
    "measure_metric": ("tracetool._check.evaluate", "measure_metric"),
    "measure_runs": ("tracetool._batch.schedulers", "measure_runs"),
    "replay": ("tracetool._replay", "replay"),
    "run_analysis": ("tracetool._analyses.registry", "run"),
    "run_metrics": ("tracetool._check.runmetrics", "run_metrics"),
    "summarize": ("tracetool._analyses.summary", "summarize"),
    "thread_lanes": ("tracetool._model.lanes", "thread_lanes"),
    "trace_start_ns": ("tracetool._model.lanes", "trace_start_ns"),
    "trend": ("tracetool._history.trend", "trend"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'tracetool' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "Analysis",
    "BatchResult",
    "BqlProcess",
    "BqlReport",
    "CheckReport",
    "ColoProcess",
    "ColoReport",
    "Comparison",
    "DowntimeReport",
    "EmptyTrace",
    "EventContext",
    "ForeignInput",
    "ForeignInputWarning",
    "History",
    "InputError",
    "MultifdReport",
    "NotInTrace",
    "PhaseReport",
    "PreemptReport",
    "QueryMigrate",
    "RegressionReport",
    "ReportData",
    "Result",
    "RuleResult",
    "RulesError",
    "Run",
    "RunFolder",
    "RunsComparison",
    "Status",
    "Timeline",
    "Trace",
    "TraceEnd",
    "TraceEventsError",
    "TraceSummary",
    "Trend",
    "UnknownFormat",
    "UsageError",
    "analyses",
    "analyze_bql",
    "analyze_colo",
    "analyze_downtime",
    "analyze_phases",
    "analyze_preempt",
    "analyze_trace_end",
    "build_timeline",
    "check_trace",
    "collect",
    "compare",
    "compare_runs",
    "find_regressions",
    "load",
    "load_query_migrate",
    "load_run",
    "measure_metric",
    "measure_runs",
    "replay",
    "run_analysis",
    "run_metrics",
    "summarize",
    "thread_lanes",
    "trace_start_ns",
    "trend",
]
