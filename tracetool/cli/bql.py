"""``migtrace bql``: who held the Big QEMU Lock, for how long, and who waited for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from tracetool.cli.common import Inputs, OutputFormat, command, offset_files, show

if TYPE_CHECKING:
    from rich.console import Console

    from tracetool._analyses.bql.report import BqlReport

BqlAddrOpt = Annotated[
    str | None,
    typer.Option(
        "--bql-addr",
        help="Address of the BQL mutex (e.g. 0x55fafcce4540) instead of finding it "
        "from its releases in */cpus.c.",
    ),
]
TopOpt = Annotated[int, typer.Option("--top", min=1, help="How many of the longest holds to list.")]


@command()
def bql(
    inputs: Inputs, *, bql_addr: BqlAddrOpt = None, top: TopOpt = 10, format: OutputFormat, strict: bool
) -> None:
    """BQL holds and waits per thread, the longest holds with what the holder was loading,
    and hold time per incoming phase. Needs qemu_mutex_lock/locked/unlock in the trace."""
    from reports.bql import render_bql_text
    from reports.timezero import TimeZero
    from tracetool._analyses import registry
    from tracetool._analyses.bql.identify import parse_address
    from tracetool._analyses.bql.report import analyze_bql

    if bql_addr is not None:
        parse_address(bql_addr)  # a typo fails before the trace is read
    trace = inputs.load()
    result = analyze_bql(trace, bql_addr, top=top)

    def render(r: BqlReport, out: Console) -> None:
        end = registry.run(trace, "trace_end")  # a hung or killed run: what each thread did last
        end_doc = None if end.empty else end.to_json()
        render_bql_text(r.to_json(), out, TimeZero.of(trace), end_doc, offset_files(trace))

    show(result, format, strict, render)
