"""One time zero for every text output: the first event of the trace.

Every command that prints times prints them as seconds since the trace's first event (on the
source's and destination's common axis when both are loaded) and says so in one header line,
with that event's wall-clock time when the trace has one. JSON keeps absolute times (ns).
Figures use the same zero for their time axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from parsers.segment import NO_TIME
from tracetool._model.trace import Trace


@dataclass(frozen=True)
class TimeZero:
    """The zero of printed times: ``ns`` on the trace's ``clock`` (None without timestamps)."""

    ns: int | None
    clock: str

    @classmethod
    def of(cls, trace: Trace) -> TimeZero:
        """The first event of ``trace``."""
        ts = trace.ts
        timed = ts[ts != NO_TIME]
        return cls(int(timed.min()) if len(timed) else None, trace.clock)

    def at(self, ns: int | None, digits: int = 6) -> str:
        """``ns`` as seconds since the zero (``12.345678``); ``-`` when unknown."""
        if ns is None or self.ns is None or ns == NO_TIME:
            return "-"
        return f"{(ns - self.ns) / 1e9:.{digits}f}"

    def header(self) -> str:
        """The line that says which zero the times use."""
        if self.ns is None:
            return "times: none (the trace has no timestamps)"
        if self.clock == "wall":
            when = datetime.fromtimestamp(self.ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
        else:
            when = f"{self.ns} ns on the trace's {self.clock} clock"
        return f"times: seconds since the first event of the trace ({when})"


NO_ZERO = TimeZero(None, "none")
"""For documents rendered without their trace (times are then not shown)."""
