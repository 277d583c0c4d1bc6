"""``migtrace bql``: who held the Big QEMU Lock, for how long, and who waited for it."""

from __future__ import annotations

from typing import Annotated

import typer

from tracetool.cli.common import (
    EventsOpt,
    FormatOpt,
    InputFormatOpt,
    OutputFormat,
    Paths,
    StrictOpt,
    ThreadsOpt,
    app,
    emit_json,
    fail_if_strict,
    load_trace,
)

BqlAddrOpt = Annotated[str | None, typer.Option(
    "--bql-addr", help="Address of the BQL mutex (e.g. 0x55fafcce4540) instead of finding it "
    "from its releases in */cpus.c.")]
TopOpt = Annotated[int, typer.Option("--top", min=1, help="How many of the longest holds to list.")]
@app.command()
def bql(
    paths: Paths,
    threads: ThreadsOpt = None,
    events: EventsOpt = None,
    input_format: InputFormatOpt = None,
    bql_addr: BqlAddrOpt = None,
    top: TopOpt = 10,
    strict: StrictOpt = False,
    format: FormatOpt = OutputFormat.text,
) -> None:
    """BQL holds and waits per thread, the longest holds with what the holder was loading,
    and hold time per incoming phase. Needs qemu_mutex_lock/locked/unlock in the trace."""
    from reports.bql import bql_json
    from tracetool._analyses.bql.bql import analyze_bql, parse_address

    if bql_addr is not None:
        parse_address(bql_addr)  # a typo fails before the trace is read
    trace = load_trace(paths, threads, events, input_format)
    report = analyze_bql(trace, bql_addr)
    data = bql_json(report, top)
    if format is OutputFormat.json:
        emit_json(data)
    else:
        from reports.bql import render_bql_text
        from reports.console import console

        render_bql_text(data, console())
    fail_if_strict(strict, sum(len(p.inconsistencies) for p in report.processes.values()))
