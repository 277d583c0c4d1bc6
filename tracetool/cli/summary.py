"""``migtrace summary``: inputs, threads with roles, event counts."""

from __future__ import annotations

from tracetool.cli.common import Inputs, OutputFormat, command, show


@command()
def summary(inputs: Inputs, *, format: OutputFormat, strict: bool) -> None:
    """What is in a trace: inputs and their format, threads with names and roles, event counts.
    With --strict, lines the readers kept but did not fully understand fail the run."""
    from reports.summary import render_summary_text
    from tracetool._analyses.summary import summarize

    result = summarize(inputs.load())
    borrowed = bool(inputs.borrow_from)
    show(result, format, strict, lambda r, out: render_summary_text(r.to_json(), out, borrowed=borrowed))
