"""``migtrace phases``: the destination's incoming phases, per-device loads and downtime."""

from __future__ import annotations

from tracetool.cli.common import Inputs, OutputFormat, command, offset_files, show


@command(query_migrate=True)
def phases(inputs: Inputs, *, format: OutputFormat, strict: bool) -> None:
    """Incoming migration phases of the destination: which thread ran what, per-device load
    times, RAM sections, outcome, and the switchover downtime from both ends."""
    from reports.phases import render_phases_text
    from reports.timezero import TimeZero
    from tracetool._analyses.phases import analyze_phases

    query = inputs.query()
    trace = inputs.load()
    result = analyze_phases(trace, query)
    zero, offsets = TimeZero.of(trace), offset_files(trace)
    show(result, format, strict, lambda r, out: render_phases_text(r.to_json(), out, zero, offsets))
