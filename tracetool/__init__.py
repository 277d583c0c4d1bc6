"""migtrace's library: load QEMU migration traces and analyse them.

    >>> import tracetool
    >>> trace = tracetool.load("run/dst.trace.xz", threads=["run/dst-threads.json"])
    >>> trace.events.head()                          # one row per event, time-sorted
    >>> bql = tracetool.analyze_bql(trace)           # BQL holds and waits per thread
    >>> bql.primary.threads
    >>> tracetool.analyze_phases(trace).to_json()    # incoming phases, devices, downtime
    >>> tracetool.check_trace(trace, "bql.hold.max{role=load} < 5ms").ok

Every analysis is a function ``Trace -> result``; every result has ``to_json()`` (the document
``migtrace <analysis> --format json`` prints), ``empty`` and ``issue_count``. ``analyses`` lists
them all (:func:`run_analysis` runs one by name). Everything not in ``__all__`` is internal.
In Jupyter, ``%load_ext reports.notebook`` shows results as tables.
"""

from tracetool._analyses.bql.bql import BqlProcess, BqlReport, analyze_bql
from tracetool._analyses.compare import Comparison, compare
from tracetool._analyses.multifd import MultifdReport
from tracetool._analyses.phases import PhaseReport, analyze_phases
from tracetool._analyses.preempt import PreemptReport, analyze_preempt
from tracetool._analyses.registry import ANALYSES as analyses
from tracetool._analyses.registry import Analysis, Result
from tracetool._analyses.registry import run as run_analysis
from tracetool._analyses.reportdata import ReportData, collect
from tracetool._analyses.summary import TraceSummary, summarize
from tracetool._analyses.switchover import SwitchoverSummary
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

__all__ = [
    "Analysis",
    "BatchResult",
    "BqlProcess",
    "BqlReport",
    "CheckReport",
    "Comparison",
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
    "SwitchoverSummary",
    "Timeline",
    "Trace",
    "TraceEventsError",
    "TraceSummary",
    "Trend",
    "UnknownFormat",
    "UsageError",
    "analyses",
    "analyze_bql",
    "analyze_phases",
    "analyze_preempt",
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
