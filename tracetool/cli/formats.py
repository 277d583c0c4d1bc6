"""``migtrace formats``: the trace formats migtrace reads, and how each is recognised."""

from __future__ import annotations

from tracetool.cli.common import OutputFormat, command, emit_json


@command(paths=False, strict=False)
def formats(*, format: OutputFormat) -> None:
    """The input formats migtrace reads (QEMU trace backends), as --input-format takes them.
    Each input is detected from its first 64 KiB; --input-format forces one."""
    from parsers.registry import backends

    rows = [{"name": b.name, "description": b.description} for b in backends()]
    if format is OutputFormat.json:
        emit_json({"formats": rows})
        return
    from reports.console import console, table

    console().print(
        table(
            "Input formats (--input-format NAME)",
            ["name", "what"],
            [[r["name"], r["description"]] for r in rows],
        )
    )
