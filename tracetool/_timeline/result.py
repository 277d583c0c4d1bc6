"""The timeline of a trace: spans, instants, notes and the inconsistencies of the input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from tracetool._json import records as json_records
from tracetool._timeline.frames import ISSUE_COLUMNS
from tracetool._timeline.queries import select


@dataclass
class Timeline:
    """Spans and instants of a trace, built by :func:`tracetool._timeline.builder.build_timeline`.

    ``spans``: process, tid (Int64, NA when the format has no thread ids), thread, role, kind,
    name, start_ns, end_ns (int64; ``NO_TIME`` in traces without timestamps), duration_us
    (float, NaN without timestamps), closed, begin_row, end_row (Int64, NA when unclosed), then
    attribute columns (idstr, instance_id, section_id, section_type, ...; NA where a rule has
    none). Rows index ``trace.events``.
    ``instants``: process, tid, thread, role, kind, name, ts_ns, row, attribute columns.
    ``issues``: kind, path, line, message: what was inconsistent in the input.
    ``open_at_end``: the same columns for spans still open where the trace of a process that
    never reached a final migration state ends (killed, or its trace cut): not inconsistencies.
    """

    spans: pd.DataFrame
    instants: pd.DataFrame
    issues: pd.DataFrame
    notes: list[str]
    has_time: bool
    threads_known: bool
    open_at_end: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ISSUE_COLUMNS))

    def of_kind(self, *kinds: str) -> pd.DataFrame:
        """Spans of the given kinds, in start order."""
        s = self.spans
        return s[s["kind"].isin(kinds)]

    @property
    def empty(self) -> bool:
        """True when no rule matched anything in the trace."""
        return not len(self.spans) and not len(self.instants)

    @property
    def issue_count(self) -> int:
        """Inconsistencies of the input (unclosed spans, lines out of order, ...)."""
        return len(self.issues)

    def select(self, kinds: Sequence[str] | None = None, thread: str | None = None) -> Timeline:
        """The spans and instants of the given kinds and thread (a TID, name or role); notes
        and issues stay those of the whole trace."""
        return replace(
            self, spans=select(self.spans, kinds, thread), instants=select(self.instants, kinds, thread)
        )

    def to_json(self) -> dict[str, Any]:
        """``{"spans", "instants", "notes", "issues"}`` as ``migtrace timeline --format json``
        prints them (see :func:`records`)."""
        return {
            "spans": records(self.spans),
            "instants": records(self.instants),
            "notes": self.notes,
            "issues": records(self.issues),
            "open_at_end": records(self.open_at_end),
        }


ALWAYS_KEPT = ("tid", "thread", "end_row", "start_ns", "end_ns", "ts_ns", "duration_us")
"""Keys every span/instant record has; other attribute keys only where the row has a value."""


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of spans, instants or issues as JSON-ready dicts; attribute columns that are empty
    on a row are left out, times of a trace without timestamps are null."""
    return json_records(frame, keep=ALWAYS_KEPT)
