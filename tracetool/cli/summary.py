"""``migtrace summary``: inputs, threads with roles, event counts."""

from __future__ import annotations

from tracetool.cli.common import (
    BorrowOpt,
    EventsOpt,
    FormatOpt,
    InputFormatOpt,
    OutputFormat,
    Paths,
    ThreadsOpt,
    app,
    emit_json,
    load_trace,
)


@app.command()
def summary(
    paths: Paths,
    threads: ThreadsOpt = None,
    events: EventsOpt = None,
    input_format: InputFormatOpt = None,
    borrow_from: BorrowOpt = None,
    format: FormatOpt = OutputFormat.text,
) -> None:
    """What is in a trace: inputs and their format, threads with names and roles, event counts."""
    trace = load_trace(paths, threads, events, input_format, borrow_from)
    data = trace.summary()
    if format is OutputFormat.json:
        emit_json(data)
        return
    from reports.console import console
    from reports.summary import render_summary_text

    render_summary_text(data, console())
