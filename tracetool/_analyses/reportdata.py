"""Everything migtrace can say about one trace, gathered for a report.

:func:`collect` runs every analysis of the registry that is a report section and keeps each
result. An analysis with nothing to work on in this trace leaves its result out and says
instead which events to enable, so a report never shows an empty section and never stops on a
trace that lacks some events. Nothing here prints.

    >>> data = collect(tracetool.load("dst.trace.xz"))
    >>> data.bql.primary.threads        # or data.notes["bql"] when there are no mutex events
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from tracetool._analyses import registry
from tracetool._analyses.bql.report import BqlReport
from tracetool._analyses.phases import PhaseReport
from tracetool._analyses.preempt import PreemptReport
from tracetool._model.load import printable_path
from tracetool._model.querymigrate import QueryMigrate
from tracetool._model.trace import Trace
from tracetool._timeline.result import Timeline

SECTIONS = tuple(a.name for a in registry.sections())
"""Report sections, in the order reports show them."""


@dataclass
class ReportData:
    """All analysis results of one trace; ``results`` holds those with something to show.

    ``notes[section]`` explains an absent result ("not in this trace: enable ...") and holds
    report-level remarks; each analysis keeps its own notes in its result.
    """

    inputs: list[str]
    trace: Trace
    results: dict[str, Any] = field(default_factory=dict)
    query_migrate: QueryMigrate | None = None
    notes: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SECTIONS})

    @property
    def title(self) -> str:
        """A short name for the trace: its input paths."""
        return ", ".join(self.inputs) if self.inputs else "trace"

    def has(self, section: str) -> bool:
        """Whether the section has a result (else its notes say why not)."""
        return section in self.results

    def document(self, section: str) -> Any:
        """The section's JSON as the report holds it, or None when it has no result."""
        result = self.results.get(section)
        return None if result is None else registry.get(section).report_json(result)

    @property
    def summary(self) -> dict[str, Any]:
        """The ``migtrace summary`` document of the trace."""
        return dict(self.results["summary"].to_json())

    @property
    def phases(self) -> PhaseReport | None:
        """The incoming phases, when the trace has a destination."""
        return self.results.get("phases")

    @property
    def downtime(self) -> dict[str, Any] | None:
        """``{"switchover", "total_time", "alignment"}``, when the trace or QEMU gave a figure."""
        return self.document("downtime")

    @property
    def bql(self) -> BqlReport | None:
        """The BQL analysis, when the trace has mutex events on a BQL."""
        return self.results.get("bql")

    @property
    def preempt(self) -> PreemptReport | None:
        """The postcopy preempt analysis, when the trace has postcopy."""
        return self.results.get("preempt")

    @property
    def timeline(self) -> Timeline:
        """The spans and instants of the trace (computed once per trace; the phases already
        built it)."""
        return cast(Timeline, registry.run(self.trace, "timeline"))

    @property
    def issue_count(self) -> int:
        """Inconsistencies of the input, each counted once although several analyses see the
        timeline's (``--strict``)."""
        counted: dict[str, int] = {}
        for name, result in self.results.items():
            source = registry.get(name).issues_from
            if source is not None:
                counted[source] = max(counted.get(source, 0), int(result.issue_count))
        return sum(counted.values())

    def load_thread(self) -> dict[str, Any] | None:
        """The destination's load thread as the phase analysis found it (tid, name, role)."""
        return self.phases.load_thread if self.phases is not None else None


def collect(
    trace: Trace, query_migrate: QueryMigrate | None = None, inputs: Sequence[str] = ()
) -> ReportData:
    """Runs every report section's analysis on ``trace`` (see module docstring).

    ``query_migrate``: QEMU's own status and numbers, compared with the trace.
    ``inputs``: the paths the trace was loaded from, as the user gave them (for titles).
    """
    paths = [printable_path(p) for p in inputs] or [str(p) for p in trace.inputs["path"].astype(str).tolist()]
    data = ReportData(inputs=paths, trace=trace, query_migrate=query_migrate)
    if not trace.has_time:
        data.notes["summary"].append(registry.NO_TIMESTAMPS)
    for analysis in registry.sections():
        options = {"query_migrate": query_migrate} if "query_migrate" in analysis.options else {}
        try:
            result = registry.run(trace, analysis.name, **options)
        except Exception as exc:
            if os.environ.get("MIGTRACE_DEBUG"):
                raise
            data.notes[analysis.name].append(
                f"the {analysis.label} analysis failed on this trace: {type(exc).__name__}: {exc}"
            )
            continue
        if result.empty:
            data.notes[analysis.name].append(analysis.not_in_trace(trace, result))
        else:
            data.results[analysis.name] = result
    return data
