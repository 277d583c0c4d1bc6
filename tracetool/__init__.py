"""migtrace's core: the event catalog, the Trace model, thread roles and analyses.

    >>> import tracetool
    >>> trace = tracetool.load("dst.trace", threads=["dst-threads.json"])
    >>> trace.events.head()
"""

from tracetool.bql import BqlReport, analyze_bql
from tracetool.check import check as check
from tracetool.errors import EmptyTrace, InputError, UsageError
from tracetool.load import load
from tracetool.model import Trace
from tracetool.replay import EventContext, replay

__all__ = ["BqlReport", "EmptyTrace", "EventContext", "InputError", "Trace", "UsageError",
           "analyze_bql", "load", "replay"]
