"""migtrace's core: the event catalog, the Trace model, thread roles and analyses.

    >>> import tracetool
    >>> trace = tracetool.load("dst.trace", threads=["dst-threads.json"])
    >>> trace.events.head()
"""

from tracetool._analyses.bql.bql import BqlReport, analyze_bql
from tracetool._check.evaluate import check as check_trace
from tracetool._model.load import load
from tracetool._model.trace import Trace
from tracetool._replay import EventContext, replay
from tracetool.errors import EmptyTrace, InputError, UsageError

__all__ = ["BqlReport", "EmptyTrace", "EventContext", "InputError", "Trace", "UsageError",
           "analyze_bql", "check_trace", "load", "replay"]
