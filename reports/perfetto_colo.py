"""COLO checkpoints as Perfetto slices on their COLO thread's track.

:func:`colo_spans` turns a :class:`~tracetool._analyses.colo.colo.ColoReport` into rows shaped
like the timeline's spans (kind ``colo``), which :func:`reports.perfetto.chrome_trace` lays out
with the thread's own spans so they nest: ``checkpoint N`` (request to 'vmstate-loaded', or to
where it was cut, or to its VM running again when that came later), inside it ``pause`` (VM stopped
to running), inside that the parts of the pause (``wait for state``, ``RAM load``, ...), and
inside those the thread's sections and device loads. Times are each process's own.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from tracetool._analyses.colo.colo import ColoReport
from tracetool._analyses.colo.records import COMPONENT_NAMES, COMPONENTS

KIND = "colo"
ARGS = ("checkpoint", "pages", "cut_in", "cut_by", "pause_us")
"""The slice arguments these spans carry (added to the Perfetto exporter's span arguments)."""


def _row(p: Any, name: str, a: int, z: int, **args: Any) -> dict[str, Any]:
    return {
        "process": p.label,
        "tid": p.thread["tid"],
        "thread": p.thread["name"],
        "role": "colo",
        "kind": KIND,
        "name": name,
        "start_ns": a,
        "end_ns": max(z, a),
        "duration_us": (max(z, a) - a) / 1000.0,
        "closed": True,
        **args,
    }


def colo_spans(report: ColoReport) -> pd.DataFrame:
    """The checkpoints, pauses and pause parts of every COLO process (see module docstring)."""
    rows: list[dict[str, Any]] = []
    for p in report.processes:
        pages_key = "flush_pages" if p.role == "secondary" else "dirty_pages"
        for c in p.checkpoints:
            a = c["request_ns"]
            ends = [
                t for t in (c["end_ns"], c["resume_ns"] if p.role == "primary" else None) if t is not None
            ]
            if a is None or not ends:
                continue
            done = bool(c["completed"])
            name = f"checkpoint {c['index']}" + ("" if done else f" (cut in {c['cut_in'] or '?'})")
            rows.append(
                _row(
                    p,
                    name,
                    a,
                    max(ends),
                    checkpoint=c["index"],
                    pages=c[pages_key],
                    cut_in=c["cut_in"],
                    cut_by=c["cut_by"],
                    pause_us=c["pause_us"],
                )
            )
            if c["stop_ns"] is not None and c["resume_ns"] is not None:
                rows.append(_row(p, "pause", c["stop_ns"], c["resume_ns"], checkpoint=c["index"]))
            for key, first, last in COMPONENTS[p.role]:
                if c[first] is not None and c[last] is not None:
                    rows.append(_row(p, COMPONENT_NAMES[key], c[first], c[last], checkpoint=c["index"]))
    out = pd.DataFrame(rows)
    for col in ("checkpoint", "pages"):
        if col in out:
            out[col] = out[col].astype("Int64")
    return out
