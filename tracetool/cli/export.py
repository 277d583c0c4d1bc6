"""``migtrace export``: a trace for other tools — Perfetto / chrome://tracing JSON, parquet, CSV."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from tracetool.cli.common import EventsOpt, InputFormatOpt, Paths, ThreadsOpt, app, load_trace


class ExportFormat(StrEnum):
    """What ``migtrace export`` writes."""

    perfetto = "perfetto"
    parquet = "parquet"
    csv = "csv"


ToOpt = Annotated[ExportFormat, typer.Option(
    "--to", help="perfetto: Trace Event Format JSON for ui.perfetto.dev and chrome://tracing; "
    "parquet / csv: one file per table (events, spans, instants, threads, processes, and "
    "bql_holds / bql_waits when the trace has mutex events).", show_default=False)]
OutputOpt = Annotated[str, typer.Option(
    "--output", "-o", help="perfetto: the JSON file. parquet/csv: a directory (existing, or "
    "ending in '/') for DIR/events.parquet..., or a prefix: runs/a gives runs/a-events.parquet...",
    show_default=False)]
NoBqlOpt = Annotated[bool, typer.Option(
    "--no-bql", help="Leave out the BQL analysis (holds/waits tracks and tables).")]


@app.command()
def export(
    paths: Paths,
    to: ToOpt,
    output: OutputOpt,
    threads: ThreadsOpt = None,
    events: EventsOpt = None,
    input_format: InputFormatOpt = None,
    no_bql: NoBqlOpt = False,
) -> None:
    """Writes the trace for other tools: a Perfetto / Chrome trace (threads as tracks, spans
    as slices, BQL holds on their own tracks, instants, page requests in flight as a counter),
    or its tables as parquet or CSV files. Files are written atomically."""
    trace = load_trace(paths, threads, events, input_format)
    if to is ExportFormat.perfetto:
        from reports.perfetto import write_chrome_trace

        write_chrome_trace(trace, output, bql=False if no_bql else None)
        typer.echo(f"wrote {output}")
        return
    from tracetool._analyses.tables import export_tables

    for path in export_tables(trace, output, to.value, with_bql=False if no_bql else None):
        typer.echo(f"wrote {path}")
