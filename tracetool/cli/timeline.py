"""``migtrace timeline``: the spans and instants of a trace, per thread."""

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

KindOpt = Annotated[list[str] | None, typer.Option(
    "--kind", "-k", help="Only these kinds (phase, section, device, command, postcopy, wait, "
    "thread, page-request, qmp; instants: checkpoint, state, runstate...). Repeatable.")]
ThreadOpt = Annotated[str | None, typer.Option(
    "--thread", "-t", help="Only this thread: a TID, a thread name, or a role (load, main...).")]
LimitOpt = Annotated[int, typer.Option("--limit", help="Rows shown per table in text output.")]


@app.command()
def timeline(
    paths: Paths,
    threads: ThreadsOpt = None,
    events: EventsOpt = None,
    input_format: InputFormatOpt = None,
    kind: KindOpt = None,
    thread: ThreadOpt = None,
    format: FormatOpt = OutputFormat.text,
    limit: LimitOpt = 500,
    strict: StrictOpt = False,
) -> None:
    """Spans (begin/end pairs: phases, sections, devices, waits...) and instants (checkpoints,
    state changes) of every thread, from the rules in tracetool/_timeline/spans.toml."""
    from tracetool._timeline.timeline import build_timeline, select

    trace = load_trace(paths, threads, events, input_format)
    tl = build_timeline(trace)
    spans = select(tl.spans, kind, thread)
    instants = select(tl.instants, kind, thread)
    if format is OutputFormat.json:
        from reports.timeline import records

        emit_json({"spans": records(spans), "instants": records(instants), "notes": tl.notes,
                   "issues": records(tl.issues)})
    else:
        from reports.console import console
        from reports.timeline import render_timeline_text

        render_timeline_text(spans, instants, tl.notes, tl.issues, console(), limit)
    fail_if_strict(strict, len(tl.issues))
