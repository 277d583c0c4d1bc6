"""migtrace's core: the event catalog, the Trace model, thread roles and analyses.

    >>> import tracetool
    >>> trace = tracetool.load("dst.trace", threads=["dst-threads.json"])
    >>> trace.events.head()
"""

from tracetool.errors import EmptyTrace, InputError, UsageError
from tracetool.load import load
from tracetool.model import Trace

__all__ = ["EmptyTrace", "InputError", "Trace", "UsageError", "load"]
