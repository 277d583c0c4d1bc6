"""``migtrace report --format json``: every analysis's JSON contract under one stable key.

Top-level keys, always present and in this order: ``summary`` (``migtrace summary``),
``phases`` (``migtrace phases``), ``downtime`` (``switchover``, ``total_time``, ``alignment``),
``bql`` (``migtrace bql``), ``preempt`` (the object inside ``migtrace preempt``'s
``{"preempt": ...}``), and ``notes`` (per section: why a section is null, report-level remarks).
A section is null when the trace has nothing for it; ``notes[section]`` then says which events
to enable.
"""

from __future__ import annotations

import json
from typing import Any

from reports.bql import bql_json
from tracetool._analyses.reportdata import SECTIONS, ReportData

TOP_LONGEST_HOLDS = 10


def report_document(data: ReportData) -> dict[str, Any]:
    """The report as JSON-ready data (see module docstring)."""
    return {
        "summary": data.summary,
        "phases": data.phases.to_json() if data.phases is not None else None,
        "downtime": data.downtime,
        "bql": bql_json(data.bql, TOP_LONGEST_HOLDS) if data.bql is not None else None,
        "preempt": data.preempt.to_json()["preempt"] if data.preempt is not None else None,
        "notes": {s: list(data.notes.get(s, [])) for s in SECTIONS},
    }


def to_json_text(doc: Any) -> str:
    """JSON text as every migtrace command writes it: indented, UTF-8, no NaN, newline-ended."""
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
