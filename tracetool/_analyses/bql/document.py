"""The BQL analysis as a JSON document: the ``migtrace bql --format json`` contract."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracetool._json import integer, number, text

if TYPE_CHECKING:
    from tracetool._analyses.bql.issues import IssueTable
    from tracetool._analyses.bql.report import BqlProcess, BqlReport

MAX_LISTED = 1000
"""Inconsistencies and edges listed per process in JSON (all are counted)."""


def _issues(table: IssueTable) -> list[dict[str, Any]]:
    shown = table.first(MAX_LISTED)
    return [{"path": i.path, "line": i.line, "kind": i.kind, "message": i.message} for i in shown]


def process_json(p: BqlProcess, top: int) -> dict[str, Any]:
    """One process's BQL figures as JSON-ready data (see README, ``migtrace bql``)."""
    threads = [
        {
            "tid": integer(r["tid"]),
            "name": text(r["name"]),
            "role": text(r["role"]),
            "holds": int(r["holds"]),
            "hold_total_us": number(r["hold_total_us"]),
            "hold_max_us": number(r["hold_max_us"]),
            "hold_p50_us": number(r["hold_p50_us"]),
            "hold_p90_us": number(r["hold_p90_us"]),
            "hold_p99_us": number(r["hold_p99_us"]),
            "open_holds": int(r["open_holds"]),
            "waits": int(r["waits"]),
            "wait_total_us": number(r["wait_total_us"]),
            "wait_max_us": number(r["wait_max_us"]),
            "wait_p50_us": number(r["wait_p50_us"]),
            "wait_p90_us": number(r["wait_p90_us"]),
            "wait_p99_us": number(r["wait_p99_us"]),
        }
        for r in p.threads.to_dict("records")
    ]
    longest = [
        {
            "tid": integer(r["tid"]),
            "thread": text(r["thread"]),
            "role": text(r["role"]),
            "start_ns": integer(r["start_ns"]),
            "end_ns": integer(r["end_ns"]),
            "duration_us": number(r["duration_us"]),
            "lock_site": text(r["lock_site"]),
            "started_by": text(r["started_by"]),
            "phase": text(r["phase"]),
            "section": text(r["section"]),
            "device": text(r["device"]),
            "path": text(r["source"]),
            "line": integer(r["line"]),
        }
        for r in p.longest_holds(top).to_dict("records")
    ]
    by_phase = [
        {
            "phase": r["phase"],
            "start_ns": int(r["start_ns"]),
            "end_ns": int(r["end_ns"]),
            "duration_us": number(r["duration_us"]),
            "holds": int(r["holds"]),
            "hold_us": number(r["hold_us"]),
            "held_fraction": number(r["held_fraction"]),
            "threads": [
                {k: (number(v) if k == "hold_us" else v) for k, v in t.items()} for t in r["threads"]
            ],
        }
        for r in p.by_phase.to_dict("records")
    ]
    return {
        "process": p.process,
        "side": p.side,
        "mutex": None if p.mutex is None else f"{p.mutex:#x}",
        "identified_by": p.identified_by,
        "attribution": p.attribution,
        "threads": threads,
        "longest_holds": longest,
        "by_phase": by_phase,
        "inconsistencies": _issues(p.issues),
        "inconsistency_count": len(p.issues),
        "edges": _issues(p.edge_table),
        "edge_count": len(p.edge_table),
        "notes": list(p.notes),
        "at_end": None if p.at_end is None else p.at_end.to_json(),
    }


def report_json(report: BqlReport, top: int) -> dict[str, Any]:
    """``{"bql": <primary process>, "processes": {label: ...}, "note": ...}``."""
    procs = {label: process_json(p, top) for label, p in report.processes.items()}
    primary = report.primary
    return {
        "bql": procs[primary.process] if primary is not None else None,
        "processes": procs,
        "note": report.note,
    }
