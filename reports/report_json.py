"""``migtrace report --format json``: every analysis's JSON contract under one stable key.

Top-level keys, always present and in this order: one per report section of the analysis
registry (``summary``, ``phases``, ``downtime``, ``bql``, ``preempt``, ``colo``), each holding that
analysis's document (``preempt``: the object inside ``migtrace preempt``'s ``{"preempt": ...}``),
and ``notes`` (per section: why a section is null, report-level remarks). A section is null when
the trace has nothing for it; ``notes[section]`` then says which events to enable.
"""

from __future__ import annotations

from typing import Any

from tracetool._analyses.reportdata import SECTIONS, ReportData
from tracetool._json import dumps


def report_document(data: ReportData) -> dict[str, Any]:
    """The report as JSON-ready data (see module docstring)."""
    doc: dict[str, Any] = {s: data.document(s) for s in SECTIONS}
    doc["notes"] = {s: list(data.notes.get(s, [])) for s in SECTIONS}
    return doc


def to_json_text(doc: Any) -> str:
    """JSON text as every migtrace command writes it: indented, UTF-8, no NaN, newline-ended."""
    return dumps(doc)
