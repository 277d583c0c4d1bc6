"""The report in a terminal: sections as rich tables (colour only on a terminal, see
:mod:`reports.console`), under a title, the time zero and a headline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from reports.block_text import print_blocks
from reports.blocks import Section
from reports.console import fmt_us
from reports.report_json import report_document
from reports.report_sections import report_sections, zero_of
from tracetool._analyses.reportdata import ReportData


# ---------------------------------------------------------------------------------- terminal
def render_text(title: str, sections: Sequence[Section], out: Console, intro: Sequence[str] = ()) -> None:
    """Prints sections as rich tables; long tables are cut to their ``compact`` rows."""
    out.print(Text(title))
    for line in intro:
        out.print(Text(line))
    for sec in sections:
        out.print("")
        out.rule(Text(sec.title), align="left")
        print_blocks(sec.blocks, out, "json/html")


# ---------------------------------------------------------------------------------- whole report
def report_title(data: ReportData) -> str:
    """The heading of a report."""
    return "migtrace report"


def report_intro(data: ReportData) -> list[str]:
    """Lines under the heading: what was read, the time zero, and the headline."""
    doc = report_document(data)
    return ["trace: " + ", ".join(data.inputs), zero_of(doc).header(), report_headline(doc)]


def _load_bql(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The BQL figures of the thread that ran the incoming load, when both are known."""
    bql, ph = doc.get("bql"), doc.get("phases")
    if not bql or not bql.get("bql") or not ph:
        return None
    lt = ph.get("load_thread") or {}
    for t in bql["bql"]["threads"]:
        if (lt.get("tid") is not None and t["tid"] == lt["tid"]) or (
            lt.get("tid") is None and lt.get("role") and t["role"] == lt["role"]
        ):
            return dict(t)
    return None


def report_headline(doc: dict[str, Any]) -> str:
    """The report in one paragraph: outcome and load thread; the load thread's BQL total and
    longest hold; the main loop's longest wait for the BQL; downtime reported vs end to end.
    A figure the trace cannot give says so."""
    ph, bql, down = doc.get("phases"), doc.get("bql"), doc.get("downtime")
    parts: list[str] = []
    if ph:
        lt = ph.get("load_thread") or {}
        name = lt.get("name") or lt.get("role") or "unknown"
        if lt.get("role") == "main":
            name += " (the main thread, in a coroutine)"
        parts.append(f"{ph['process']} {ph['outcome']}, load thread {name}")
    else:
        parts.append("no incoming migration in this trace")
    load = _load_bql(doc)
    if load is not None:
        parts.append(
            f"it held the BQL {fmt_us(load['hold_total_us'])} in all, {fmt_us(load['hold_max_us'])} at most"
        )
    elif bql is None:
        parts.append("BQL not in this trace")
    main = None
    if bql and bql.get("bql"):
        main = next((t for t in bql["bql"]["threads"] if t["role"] == "main"), None)
    if main is not None and main.get("wait_max_us") is not None:
        parts.append(f"the main loop waited up to {fmt_us(main['wait_max_us'])} for it")
    if down:
        reported, e2e = down.get("reported_us"), down.get("end_to_end_us")
        said = f"{fmt_us(reported)} reported by QEMU" if reported is not None else "none reported"
        seen = f"{fmt_us(e2e)} end to end" if e2e is not None else "end to end not measurable"
        parts.append(f"downtime {said}, {seen}")
    return "Headline: " + "; ".join(parts) + "."


def report_text(data: ReportData, out: Console) -> None:
    """Prints the whole report of one trace to a terminal (or a file-backed Console)."""
    render_text(report_title(data), report_sections(report_document(data)), out, intro=report_intro(data))
