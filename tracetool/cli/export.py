"""``migtrace export``: a trace for other tools — Perfetto / chrome://tracing JSON, parquet, CSV."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from tracetool.cli.common import Inputs, check_output, command, wrote


class ExportFormat(StrEnum):
    """What ``migtrace export`` writes."""

    perfetto = "perfetto"
    parquet = "parquet"
    csv = "csv"


ToOpt = Annotated[
    ExportFormat,
    typer.Option(
        "--to",
        help="perfetto: Trace Event Format JSON for ui.perfetto.dev and chrome://tracing; "
        "parquet / csv: one file per table (events, spans, instants, threads, processes, and "
        "bql_holds / bql_waits when the trace has mutex events).",
        show_default=False,
    ),
]
OutputOpt = Annotated[
    str,
    typer.Option(
        "--output",
        "-o",
        help="perfetto: the JSON file. parquet/csv: a directory (existing, or "
        "ending in '/') for DIR/events.parquet..., or a prefix: runs/a gives runs/a-events.parquet...",
        show_default=False,
    ),
]
NoBqlOpt = Annotated[
    bool, typer.Option("--no-bql", help="Leave out the BQL analysis (holds/waits tracks and tables).")
]


@command(output_format=False, strict=False)
def export(inputs: Inputs, *, to: ToOpt, output: OutputOpt, no_bql: NoBqlOpt = False) -> None:
    """Writes the trace for other tools: a Perfetto / Chrome trace (threads as tracks, spans
    as slices, BQL holds on their own tracks, instants, page requests in flight as a counter,
    COLO checkpoints and their parts on the COLO thread),
    or its tables as parquet or CSV files. Files are written atomically."""
    from tracetool._analyses import registry

    check_output(output, directory=to is not ExportFormat.perfetto)
    trace = inputs.load()
    timeline = registry.run(trace, "timeline")
    bql = None if no_bql or trace.code_of("qemu_mutex_unlock") is None else registry.run(trace, "bql")
    if to is ExportFormat.perfetto:
        from reports.perfetto import write_chrome_trace

        downtime = registry.run(trace, "downtime") if trace.has_time else None
        has_colo = (
            trace.code_of("colo_send_message") is not None
            or trace.code_of("colo_receive_message") is not None
        )
        colo = registry.run(trace, "colo") if has_colo else None
        write_chrome_trace(trace, output, timeline, bql, downtime=downtime, colo=colo)
        wrote(output)
        return
    from reports.tables import export_tables
    from tracetool._analyses.tables import trace_tables

    for path in export_tables(trace_tables(trace, timeline, bql), output, to.value):
        wrote(path)
