"""``migtrace events``: the ``-trace events=FILE`` list each analysis needs, with the QEMU flags."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tracetool.cli.common import app

ForOpt = Annotated[
    str,
    typer.Option("--for", metavar="LIST", help="Analyses, comma-separated: bql, phases, preempt, or all."),
]
QemuOpt = Annotated[
    str | None,
    typer.Option(
        "--qemu",
        metavar="GENERATION",
        help="QEMU generation: 7.2 (<= 10.0), 10.1, threadify. "
        "Default: events of every generation, flags of each.",
        show_default=False,
    ),
]


@app.command()
def events(analyses: ForOpt = "all", qemu: QemuOpt = None) -> None:
    """Print the trace events the analyses need, one pattern per line (save it and pass
    '-trace events=FILE' to QEMU), with the QEMU flags for timestamps and thread names as
    comments."""
    from tracetool._analyses.events import check_generation, events_file
    from tracetool._analyses.registry import parse_names

    names = parse_names(analyses)
    sys.stdout.write(events_file(names, check_generation(qemu)))
