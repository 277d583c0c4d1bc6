"""``migtrace phases``: the destination's incoming phases, per-device loads and downtime."""

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

QueryMigrateOpt = Annotated[str | None, typer.Option(
    "--query-migrate", help="QEMU's query-migrate result as JSON ({\"src\": ..., \"dst\": ...}, "
    "{\"source\": ..., \"destination\": ...}, or one plain return object) to compare with.")]
@app.command()
def phases(
    paths: Paths,
    threads: ThreadsOpt = None,
    events: EventsOpt = None,
    input_format: InputFormatOpt = None,
    query_migrate: QueryMigrateOpt = None,
    format: FormatOpt = OutputFormat.text,
    strict: StrictOpt = False,
) -> None:
    """Incoming migration phases of the destination: which thread ran what, per-device load
    times, RAM iterations, outcome, and the switchover downtime from both ends."""
    from tracetool._analyses.phases import incoming_phases
    from tracetool._model.querymigrate import load_query_migrate

    query = load_query_migrate(query_migrate) if query_migrate else None
    trace = load_trace(paths, threads, events, input_format)
    report = incoming_phases(trace, query)
    doc = report.to_json()
    if format is OutputFormat.json:
        emit_json(doc)
    else:
        from reports.console import console
        from reports.phases import render_phases_text

        render_phases_text(doc, console())
    fail_if_strict(strict, len(report.issues))
