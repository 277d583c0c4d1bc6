"""Every exception migtrace raises on purpose, in one place.

::

    Exception
     ├── InputError            an input cannot be opened, read or recognised (exit code 2)
     │    ├── UnknownFormat    no trace backend recognises the file
     │    └── EmptyTrace       the inputs hold no trace events at all
     ├── UsageError            bad options, side files or arguments (exit code 2)
     │    ├── RulesError       a CI rules file or rule that cannot be used (file:line:column)
     │    ├── ForeignInput     a sidecar or --borrow-from log that belongs to another trace
     │    │                    (another run, the other side); ``force=True`` takes it anyway
     │    └── NotInTrace       the trace lacks the events a result needs ("not in this trace:
     │                         enable ...")
     └── TraceEventsError      a trace-events file that cannot be read (path:line)

``InputError`` and ``UnknownFormat`` are defined by the readers (``parsers``), which know
nothing else of migtrace, and re-exported here. The command line prints any of them as one line
and exits with code 2.
"""

from __future__ import annotations

from parsers.io import InputError
from parsers.registry import UnknownFormat


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


class UsageError(Exception):
    """Bad options or side files (exit code 2). ``str(error)`` is one line: line breaks in
    it (a file name may hold one) read ``\\n``."""

    def __str__(self) -> str:
        return _one_line(super().__str__())


class EmptyTrace(InputError):
    """The inputs hold no trace events at all (exit code 2)."""


class ForeignInput(UsageError):
    """A side file (thread-name sidecar, ``--borrow-from`` log) whose processes, thread ids or
    time do not match the trace's; ``str(exc)`` names the file and why (exit code 2)."""


class ForeignInputWarning(UserWarning):
    """The same finding when the file is used anyway (``force=True``, ``--force``)."""


class NotInTrace(UsageError):
    """The trace lacks the events a result needs; the message names what to enable.

    ``str(exc)`` reads ``not in this trace: enable EVENTS (for WHAT)``.
    """


class RulesError(UsageError):
    """A rules file or rule that cannot be used; ``str()`` is one line with the location."""

    def __init__(
        self,
        message: str,
        origin: str,
        line: int | None = None,
        column: int | None = None,
        rule: str | None = None,
    ) -> None:
        self.message, self.origin, self.line, self.column, self.rule = (message, origin, line, column, rule)
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.origin
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        who = f"rule {self.rule!r}: " if self.rule else ""
        return _one_line(f"{where}: {who}{self.message}")


class TraceEventsError(Exception):
    """A trace-events file that cannot be read or holds a malformed line.

    ``str(error)`` is ``"PATH:LINE: what is wrong"`` (``"PATH: what"`` when no line applies).
    """

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(_one_line(f"{where}: {message}"))


__all__ = [
    "EmptyTrace",
    "ForeignInput",
    "ForeignInputWarning",
    "InputError",
    "NotInTrace",
    "RulesError",
    "TraceEventsError",
    "UnknownFormat",
    "UsageError",
]
