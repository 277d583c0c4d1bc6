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

from tracetool._analyses.bql.report import BqlProcess, BqlReport, analyze_bql
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
from tracetool._analyses.trace_end import TraceEnd, analyze_trace_end
from tracetool._check.evaluate import CheckReport, RuleResult, Status, check_trace
from tracetool._model.load import load
from tracetool._model.querymigrate import QueryMigrate, load_query_migrate
from tracetool._model.trace import Trace
from tracetool._replay import EventContext, replay
from tracetool._timeline.timeline import Timeline, build_timeline
from tracetool.errors import (
    EmptyTrace,
    InputError,
    NotInTrace,
    RulesError,
    TraceEventsError,
    UnknownFormat,
    UsageError,
)

__all__ = [
    "Analysis",
    "BqlProcess",
    "BqlReport",
    "CheckReport",
    "Comparison",
    "EmptyTrace",
    "EventContext",
    "InputError",
    "MultifdReport",
    "NotInTrace",
    "PhaseReport",
    "PreemptReport",
    "QueryMigrate",
    "ReportData",
    "Result",
    "RuleResult",
    "RulesError",
    "Status",
    "SwitchoverSummary",
    "Timeline",
    "Trace",
    "TraceEnd",
    "TraceEventsError",
    "TraceSummary",
    "UnknownFormat",
    "UsageError",
    "analyses",
    "analyze_bql",
    "analyze_phases",
    "analyze_preempt",
    "analyze_trace_end",
    "build_timeline",
    "check_trace",
    "collect",
    "compare",
    "load",
    "load_query_migrate",
    "replay",
    "run_analysis",
    "summarize",
]
