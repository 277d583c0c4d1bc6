"""``migtrace colo``: COLO checkpoints on both sides, the BQL inside each, failover."""

from __future__ import annotations

from tracetool.cli.common import Inputs, OutputFormat, command, show


@command()
def colo(inputs: Inputs, *, format: OutputFormat, strict: bool) -> None:
    """COLO (fault tolerance on top of migration): each checkpoint of the secondary (RAM load,
    RAM-cache flush, device load, pause, BQL) and of the primary, paired on one time axis; the
    initial migration; the failover: who asked, its states, where the secondary was."""
    from reports.colo import render_colo_text
    from reports.timezero import TimeZero
    from tracetool._analyses import registry

    trace = inputs.load()
    result = registry.run(trace, "colo")
    zero = TimeZero.of(trace)
    show(result, format, strict, lambda r, out: render_colo_text(r.to_json(), out, zero))
