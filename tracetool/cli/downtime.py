"""``migtrace downtime``: the guest's pause end to end, across the source and the destination."""

from __future__ import annotations

from tracetool.cli.common import Inputs, OutputFormat, command, show


@command(query_migrate=True)
def downtime(inputs: Inputs, *, format: OutputFormat, strict: bool) -> None:
    """The guest's real pause, from the source stopping the VM to the destination running it
    (give both sides' traces), its critical path step by step, per-device save and load times,
    and QEMU's own downtime figure next to it."""
    from reports.downtime import render_downtime_text
    from reports.timezero import TimeZero
    from tracetool._analyses import registry

    trace = inputs.load()
    result = registry.run(trace, "downtime", query_migrate=inputs.query())
    zero = TimeZero.of(trace)
    show(result, format, strict, lambda r, out: render_downtime_text(r.to_json(), out, zero))
