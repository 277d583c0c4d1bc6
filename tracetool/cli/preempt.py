"""``migtrace preempt``: postcopy preempt-channel waits and page-request latency."""

from __future__ import annotations

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


@app.command()
def preempt(
    paths: Paths,
    threads: ThreadsOpt = None,
    events: EventsOpt = None,
    input_format: InputFormatOpt = None,
    format: FormatOpt = OutputFormat.text,
    strict: StrictOpt = False,
) -> None:
    """Postcopy preempt: the preempt thread's wait for its channel, the packaged-load wait,
    page-request latency, pages per channel, and the source's channel switches."""
    from tracetool._analyses.preempt import preempt_waits
    from tracetool._timeline.timeline import build_timeline

    trace = load_trace(paths, threads, events, input_format)
    doc = preempt_waits(trace).to_json()
    if format is OutputFormat.json:
        emit_json(doc)
    else:
        from reports.console import console
        from reports.preempt import render_preempt_text

        render_preempt_text(doc, console())
    fail_if_strict(strict, len(build_timeline(trace).issues))
