"""``migtrace plot``: a figure of one trace as PNG, SVG or PDF."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tracetool.cli.common import Inputs, check_output, command, require_match, wrote
from tracetool.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd


class PlotKind(StrEnum):
    """The figures ``migtrace plot`` draws."""

    gantt = "gantt"
    bql = "bql"
    phases = "phases"
    page_latency = "page-latency"
    downtime = "downtime"
    colo = "colo"


KindArg = Annotated[
    PlotKind,
    typer.Argument(
        help="gantt: per-thread timeline (phases, sections, device loads, BQL holds, instants); "
        "bql: BQL hold/wait CDFs per thread; phases: incoming phase waterfall and slowest device "
        "loads; page-latency: postcopy page-request latency per channel; downtime: the guest's "
        "pause on source and destination lanes with its critical path (both traces); colo: the "
        "parts of each COLO checkpoint's pause, and the pauses over time.",
        show_default=False,
    ),
]
OutputOpt = Annotated[
    str, typer.Option("--output", "-o", help="Output file; .png, .svg or .pdf.", show_default=False)
]
FromOpt = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="gantt: window start. Time since the trace start in seconds (1.5) or with a "
        "unit (1500ms, 40us, 800ns), or an absolute trace time in ns after '@' (@1795694364092905000, "
        "as in the start_ns columns).",
    ),
]
ToOpt = Annotated[str | None, typer.Option("--to", help="gantt: window end, as --from.")]
WindowOpt = Annotated[
    str | None,
    typer.Option(
        "--window",
        metavar="PHASE",
        help="gantt: show one incoming phase, from its start to its end (switchover, devices, "
        "precopy, ...: the names 'migtrace phases' lists). Instead of --from/--to.",
    ),
]
TopOpt = Annotated[int, typer.Option("--top", min=1, help="phases: how many device loads to show.")]

_TIME = re.compile(
    r"^\s*(?P<value>[0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*(?P<unit>s|ms|us|µs|ns)?\s*$", re.IGNORECASE
)
_SCALE = {"s": 1e9, "ms": 1e6, "us": 1e3, "µs": 1e3, "ns": 1.0}


def parse_time(text: str, trace_start_ns: int) -> int:
    """An absolute trace time (ns) from ``--from``/``--to`` (see the option help)."""
    t = text.strip()
    if t.startswith("@"):
        try:
            ns = int(t[1:])
        except ValueError:
            raise UsageError(f"{text!r}: after '@' give an absolute time in ns") from None
    else:
        m = _TIME.match(t)
        if not m:
            raise UsageError(f"{text!r}: not a time (e.g. 1.5, 250ms, 40us, @1795694364092905000)")
        unit = (m.group("unit") or "s").lower()
        offset = float(m.group("value")) * _SCALE[unit]
        ns = trace_start_ns + round(offset) if offset < 2**63 else 2**63
    if not -(2**63) <= ns < 2**63:
        raise UsageError(f"{text!r}: out of range (trace times are int64 ns)")
    return ns


def phase_window(phases: pd.DataFrame, name: str) -> tuple[int, int | None]:
    """The (start, end) ns of the first phase called ``name`` in the phases analysis's table
    (end None, the trace's end, when the phase never closed); UsageError naming the phases
    there, closest first, for a name the trace does not have."""
    from parsers.segment import NO_TIME

    timed = phases[phases["start_ns"] != NO_TIME]
    require_match("--window", name, list(dict.fromkeys(str(n) for n in timed["name"])), "phases")
    row = timed[timed["name"] == name].iloc[0]
    end = int(row["end_ns"]) if bool(row["closed"]) and int(row["end_ns"]) != NO_TIME else None
    return int(row["start_ns"]), end


@command(output_format=False, strict=False)
def plot(
    kind: KindArg,
    inputs: Inputs,
    *,
    output: OutputOpt,
    start: FromOpt = None,
    end: ToOpt = None,
    window: WindowOpt = None,
    top: TopOpt = 15,
) -> None:
    """Draws a figure of the trace into a PNG, SVG or PDF file (written atomically). A trace
    without the events a figure needs gives one line naming the events to enable (exit 2)."""
    from reports.plots.common import SAVE_FORMATS, save_figure
    from tracetool._analyses import registry
    from tracetool._model.lanes import trace_start_ns

    if not output.lower().endswith(tuple(f".{x}" for x in SAVE_FORMATS)):
        raise UsageError(f"--output {output}: give a .png, .svg or .pdf file name")
    if kind is not PlotKind.gantt and (start or end or window):
        raise UsageError("--from/--to/--window apply to 'gantt' only")
    if window and (start or end):
        raise UsageError("--window replaces --from/--to: give one or the other")
    check_output(output)
    trace = inputs.load()
    fig: Any
    if kind is PlotKind.gantt:
        from reports.plots.gantt import gantt

        t0 = trace_start_ns(trace)
        has_mutex = trace.code_of("qemu_mutex_unlock") is not None
        lo, hi = (
            phase_window(registry.run(trace, "phases").phases, window)
            if window
            else (parse_time(start, t0) if start else None, parse_time(end, t0) if end else None)
        )
        fig = gantt(
            trace,
            registry.run(trace, "timeline"),
            registry.run(trace, "bql") if has_mutex else None,
            start_ns=lo,
            end_ns=hi,
        )
    elif kind is PlotKind.bql:
        from reports.plots.bql import bql_distribution

        fig = bql_distribution(registry.run(trace, "bql"))
    elif kind is PlotKind.phases:
        from reports.plots.phases import phase_waterfall

        fig = phase_waterfall(registry.run(trace, "phases"), top=top)
    elif kind is PlotKind.downtime:
        from reports.plots.downtime import downtime_figure

        fig = downtime_figure(registry.run(trace, "downtime"))
    elif kind is PlotKind.colo:
        from reports.plots.colo import colo_figure

        fig = colo_figure(registry.run(trace, "colo"), trace_start_ns(trace))
    else:
        from reports.plots.page_latency import page_latency

        fig = page_latency(registry.run(trace, "preempt"), trace_start_ns(trace))
    save_figure(fig, output)
    wrote(output)
