"""Rendering the BQL analysis: the ``migtrace bql --format json`` contract and text tables."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from rich.console import Console

from reports.console import fmt_us, table
from tracetool._analyses.bql.bql import BqlProcess, BqlReport, Inconsistency

MAX_LISTED = 1000
"""Inconsistencies and edges listed per process in JSON (all are counted)."""


def _num(v: Any) -> float | None:
    """A float for JSON: None for NaN/NA."""
    if v is None or v is pd.NA:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _int(v: Any) -> int | None:
    return None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else int(v)


def _str(v: Any) -> str | None:
    return None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else str(v)


def _issues(items: list[Inconsistency]) -> list[dict[str, Any]]:
    return [{"path": i.path, "line": i.line, "kind": i.kind, "message": i.message}
            for i in items[:MAX_LISTED]]


def process_json(p: BqlProcess, top: int) -> dict[str, Any]:
    """One process's BQL figures as JSON-ready data (see README, ``migtrace bql``)."""
    threads = [{
        "tid": _int(r["tid"]), "name": _str(r["name"]), "role": _str(r["role"]),
        "holds": int(r["holds"]), "hold_total_us": _num(r["hold_total_us"]),
        "hold_max_us": _num(r["hold_max_us"]), "hold_p50_us": _num(r["hold_p50_us"]),
        "hold_p90_us": _num(r["hold_p90_us"]), "hold_p99_us": _num(r["hold_p99_us"]),
        "open_holds": int(r["open_holds"]),
        "waits": int(r["waits"]), "wait_total_us": _num(r["wait_total_us"]),
        "wait_max_us": _num(r["wait_max_us"]), "wait_p50_us": _num(r["wait_p50_us"]),
        "wait_p90_us": _num(r["wait_p90_us"]), "wait_p99_us": _num(r["wait_p99_us"]),
    } for r in p.threads.to_dict("records")]
    longest = [{
        "tid": _int(r["tid"]), "thread": _str(r["thread"]), "role": _str(r["role"]),
        "start_ns": _int(r["start_ns"]), "end_ns": _int(r["end_ns"]),
        "duration_us": _num(r["duration_us"]), "lock_site": _str(r["lock_site"]),
        "started_by": _str(r["started_by"]), "phase": _str(r["phase"]),
        "section": _str(r["section"]), "device": _str(r["device"]),
        "path": _str(r["source"]), "line": _int(r["line"]),
    } for r in p.longest_holds(top).to_dict("records")]
    by_phase = [{
        "phase": r["phase"], "start_ns": int(r["start_ns"]), "end_ns": int(r["end_ns"]),
        "duration_us": _num(r["duration_us"]), "holds": int(r["holds"]),
        "hold_us": _num(r["hold_us"]), "held_fraction": _num(r["held_fraction"]),
        "threads": [{k: (_num(v) if k == "hold_us" else v) for k, v in t.items()}
                    for t in r["threads"]],
    } for r in p.by_phase.to_dict("records")]
    return {
        "process": p.process,
        "side": p.side,
        "mutex": None if p.mutex is None else f"{p.mutex:#x}",
        "identified_by": p.identified_by,
        "attribution": p.attribution,
        "threads": threads,
        "longest_holds": longest,
        "by_phase": by_phase,
        "inconsistencies": _issues(p.inconsistencies),
        "inconsistency_count": len(p.inconsistencies),
        "edges": _issues(p.edges),
        "edge_count": len(p.edges),
        "notes": list(p.notes),
    }


def bql_json(report: BqlReport, top: int = 10) -> dict[str, Any]:
    """``{"bql": <primary process>, "processes": {label: ...}, "note": ...}``."""
    procs = {label: process_json(p, top) for label, p in report.processes.items()}
    primary = report.primary
    return {
        "bql": procs[primary.process] if primary is not None else None,
        "processes": procs,
        "note": report.note,
    }


def _time(ns: int | None) -> str:
    if ns is None:
        return "-"
    if ns > 10**17:  # wall clock
        return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%H:%M:%S.%f")
    return f"{ns / 1e9:.6f}"


def _us(v: Any) -> str:
    f = _num(v)
    return fmt_us(f) if f is not None else "-"


def render_process_text(data: dict[str, Any], out: Console, issues_shown: int = 20) -> None:
    """One process (as produced by :func:`process_json`) as readable tables."""
    head = f"BQL in {data['process']}"
    if data["mutex"] is None:
        out.print(f"{head}: not found")
    else:
        how = "per thread" if data["attribution"] == "thread" else \
            "by call site (no thread ids in the trace)"
        out.print(f"{head}: mutex {data['mutex']}, {data['identified_by']}; attributed {how}")
    if data["threads"]:
        out.print(table(
            "Holds and waits per thread" if data["attribution"] == "thread" else
            "Holds and waits per role (by call site)",
            ["tid", "thread", "role", "holds", "total", "max", "p50", "p90", "p99", "open",
             "waits", "wait total", "wait max", "wait p99"],
            [[t["tid"] if t["tid"] is not None else "-", t["name"] or "-", t["role"], t["holds"],
              _us(t["hold_total_us"]), _us(t["hold_max_us"]), _us(t["hold_p50_us"]),
              _us(t["hold_p90_us"]), _us(t["hold_p99_us"]), t["open_holds"], t["waits"],
              _us(t["wait_total_us"]), _us(t["wait_max_us"]), _us(t["wait_p99_us"])]
             for t in data["threads"]],
            right=["tid", "holds", "total", "max", "p50", "p90", "p99", "open", "waits",
                   "wait total", "wait max", "wait p99"]))
    if data["longest_holds"]:
        out.print(table(
            f"Longest holds (top {len(data['longest_holds'])})",
            ["taken at", "held", "thread", "lock site", "phase", "section", "device", "line"],
            [[_time(h["start_ns"]), _us(h["duration_us"]),
              h["thread"] or h["role"] or "-", h["lock_site"] or "-", h["phase"] or "-",
              h["section"] or "-", h["device"] or "-", h["line"]]
             for h in data["longest_holds"]],
            right=["held", "line"]))
    if data["by_phase"]:
        out.print(table(
            "BQL held, by migration phase",
            ["phase", "length", "holds", "held", "held %", "by"],
            [[ph["phase"], _us(ph["duration_us"]), ph["holds"], _us(ph["hold_us"]),
              "-" if ph["held_fraction"] is None else f"{100 * ph['held_fraction']:.1f}",
              ", ".join(f"{t['thread'] or t['role']} {fmt_us(t['hold_us'])}"
                        for t in ph["threads"][:3])]
             for ph in data["by_phase"]],
            right=["length", "holds", "held", "held %"]))
    n = data["inconsistency_count"]
    if n:
        out.print(f"{n} inconsistencies:")
        for i in data["inconsistencies"][:issues_shown]:
            out.print(f"  {i['path']}:{i['line']}: {i['message']}")
        if n > issues_shown:
            out.print(f"  ... {n - issues_shown} more (--format json lists up to {MAX_LISTED})")
    if data["edge_count"]:
        out.print(f"{data['edge_count']} holds or waits cut by the start or end of the trace:")
        for i in data["edges"][:5]:
            out.print(f"  {i['path']}:{i['line']}: {i['message']}")
    for note in data["notes"]:
        out.print(f"note: {note}")


def render_bql_text(data: dict[str, Any], out: Console) -> None:
    """The whole report (as produced by :func:`bql_json`)."""
    if data["note"]:
        out.print(data["note"])
        return
    for i, proc in enumerate(data["processes"].values()):
        if i:
            out.print("")
        render_process_text(proc, out)
