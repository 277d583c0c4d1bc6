"""The analyses a metric can come from, each as a function Trace -> its ``--format json`` document.

Documents are computed once per trace and analysis, and only for analyses some rule uses.
"""

from __future__ import annotations

import importlib.util
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tracetool._model.trace import Trace


@dataclass(frozen=True)
class Analysis:
    """An analysis: its command, the module that implements it, and its JSON builder."""

    name: str
    command: str
    module: str
    build: Callable[[Trace], dict[str, Any]]

    def available(self) -> bool:
        """Whether this migtrace has the module."""
        return importlib.util.find_spec(self.module) is not None


def _summary(trace: Trace) -> dict[str, Any]:
    return trace.summary()


def _phases(trace: Trace) -> dict[str, Any]:
    from tracetool._analyses.phases import incoming_phases

    return incoming_phases(trace).to_json()


def _preempt(trace: Trace) -> dict[str, Any]:
    from tracetool._analyses.preempt import preempt_waits

    return preempt_waits(trace).to_json()


def _bql(trace: Trace) -> dict[str, Any]:
    from reports.bql import bql_json
    from tracetool._analyses.bql.bql import analyze_bql

    return bql_json(analyze_bql(trace))


ANALYSES: dict[str, Analysis] = {a.name: a for a in (
    Analysis("summary", "migtrace summary", "tracetool._model.trace", _summary),
    Analysis("bql", "migtrace bql", "tracetool._analyses.bql.bql", _bql),
    Analysis("phases", "migtrace phases", "tracetool._analyses.phases", _phases),
    Analysis("preempt", "migtrace preempt", "tracetool._analyses.preempt", _preempt),
)}

_documents: weakref.WeakKeyDictionary[Trace, dict[str, dict[str, Any]]] = weakref.WeakKeyDictionary()


def document(trace: Trace, analysis: str) -> dict[str, Any]:
    """The JSON document of one analysis of ``trace`` (computed on first use, then cached)."""
    per_trace = _documents.setdefault(trace, {})
    doc = per_trace.get(analysis)
    if doc is None:
        doc = ANALYSES[analysis].build(trace)
        per_trace[analysis] = doc
    return doc


def notes_of(doc: dict[str, Any]) -> list[str]:
    """The notes an analysis attached to its document (top level or one level down)."""
    notes = doc.get("notes")
    if isinstance(notes, list):
        return [str(n) for n in notes]
    for v in doc.values():
        if isinstance(v, dict) and isinstance(v.get("notes"), list):
            return [str(n) for n in v["notes"]]
    return []
