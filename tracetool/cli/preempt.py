"""``migtrace preempt``: postcopy preempt-channel waits and page-request latency."""

from __future__ import annotations

from tracetool.cli.common import Inputs, OutputFormat, command, show


@command()
def preempt(inputs: Inputs, *, format: OutputFormat, strict: bool) -> None:
    """Postcopy preempt: the preempt thread's wait for its channel, the packaged-load wait,
    page-request latency, pages per channel, and the source's channel switches."""
    from reports.preempt import render_preempt_text
    from tracetool._analyses import registry

    trace = inputs.load()
    result = registry.run(trace, "preempt")
    # Without postcopy there is nothing to tabulate: one line says so and what to enable.
    absent = registry.get("preempt").not_in_trace(trace, result) if result.empty else None
    show(result, format, strict, lambda r, out: render_preempt_text(r.to_json(), out, absent))
