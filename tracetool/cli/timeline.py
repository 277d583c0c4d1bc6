"""``migtrace timeline``: the spans and instants of a trace, per thread."""

from __future__ import annotations

from typing import Annotated

import typer

from tracetool.cli.common import Inputs, OutputFormat, command, offset_files, require_match, show

KindOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--kind",
        "-k",
        help="Only these kinds (phase, section, device, command, postcopy, wait, "
        "thread, page-request, qmp; instants: checkpoint, state, runstate...). Repeatable.",
    ),
]
ThreadOpt = Annotated[
    str | None,
    typer.Option("--thread", "-t", help="Only this thread: a TID, a thread name, or a role (load, main...)."),
]
LimitOpt = Annotated[int, typer.Option("--limit", help="Rows shown per table in text output.")]


@command()
def timeline(
    inputs: Inputs,
    *,
    kind: KindOpt = None,
    thread: ThreadOpt = None,
    limit: LimitOpt = 500,
    format: OutputFormat,
    strict: bool,
) -> None:
    """Spans (begin/end pairs: phases, sections, devices, waits...) and instants (checkpoints,
    state changes) of every thread, from the rules in tracetool/_timeline/spans.toml."""
    from reports.timeline import render_timeline_text
    from reports.timezero import TimeZero
    from tracetool._timeline.builder import build_timeline

    trace = inputs.load()
    whole = build_timeline(trace)
    frames = (whole.spans, whole.instants)
    kinds = {str(k) for f in frames for k in f["kind"].dropna().unique()}
    for k in kind or ():
        require_match("--kind", k, sorted(kinds), "kinds")
    if thread:
        tids = {str(int(t)) for f in frames for t in f["tid"].dropna().unique()}
        named = {str(n) for f in frames for col in ("thread", "role") for n in f[col].dropna().unique()}
        require_match("--thread", thread, sorted(tids | named), "threads and roles")
    result = whole.select(kind, thread)
    zero, offsets = TimeZero.of(trace), offset_files(trace)
    show(result, format, strict, lambda r, out: render_timeline_text(r, out, limit, zero, offsets))
