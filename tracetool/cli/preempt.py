"""``migtrace preempt``: postcopy preempt-channel waits and page-request latency."""

from __future__ import annotations

from tracetool.cli.common import Inputs, OutputFormat, command, show


@command()
def preempt(inputs: Inputs, *, format: OutputFormat, strict: bool) -> None:
    """Postcopy preempt: the preempt thread's wait for its channel, the packaged-load wait,
    page-request latency, pages per channel, and the source's channel switches."""
    from reports.preempt import render_preempt_text
    from tracetool._analyses.preempt import analyze_preempt

    result = analyze_preempt(inputs.load())
    show(result, format, strict, lambda r, out: render_preempt_text(r.to_json(), out))
