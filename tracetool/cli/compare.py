"""``migtrace compare BEFORE... -- AFTER...``: two traces of one scenario side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from tracetool.cli.common import EventsOpt, InputFormatOpt, Inputs, app
from tracetool.cli.report import (
    OutputOpt,
    ReportFormat,
    ReportFormatOpt,
    check_output,
    emit,
    pick_format,
    plain_text,
)
from tracetool.errors import UsageError

if TYPE_CHECKING:
    from tracetool._analyses.compare import Comparison
    from tracetool._analyses.reportdata import ReportData

AFTER_OPTION = "--after"


class SplitAtDoubleDash(TyperCommand):
    """Paths after ``--`` are the AFTER side: each becomes ``--after PATH``.

    Options may still follow ``--`` (``compare a -- b -o cmp.html``); a lone ``-`` is stdin.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            args = args[:cut] + self._after_paths(args[cut + 1 :])
        return list(super().parse_args(ctx, args))

    def _after_paths(self, rest: Sequence[str]) -> list[str]:
        takes_value = {
            name
            for p in self.params
            if getattr(p, "param_type_name", "") == "option"
            and not getattr(p, "is_flag", False)
            and not getattr(p, "count", False)
            for name in (*p.opts, *p.secondary_opts)
        }
        out: list[str] = []
        i = 0
        while i < len(rest):
            tok = rest[i]
            if tok.startswith("-") and tok != "-":
                out.append(tok)
                if tok in takes_value and i + 1 < len(rest):
                    out.append(rest[i + 1])
                    i += 1
            else:
                out += [AFTER_OPTION, tok]
            i += 1
        return out


BeforeArgs = Annotated[
    list[str] | None,
    typer.Argument(
        help="BEFORE trace files, globs or directories; the AFTER ones follow '--'.",
        show_default=False,
        metavar="BEFORE",
    ),
]
BeforeOpt = Annotated[
    list[str] | None,
    typer.Option("--before", help="A BEFORE trace path (repeatable; adds to the paths before '--')."),
]
AfterOpt = Annotated[
    list[str] | None,
    typer.Option(AFTER_OPTION, help="An AFTER trace path (repeatable; what follows '--' lands here)."),
]
SideThreads = Annotated[
    list[str] | None, typer.Option(help="Thread-name sidecar JSON of that side (repeatable).")
]
SideQuery = Annotated[str | None, typer.Option(help="QEMU's query-migrate JSON of that side.")]
SideLabel = Annotated[str | None, typer.Option(help="Name of that side in the output.")]


@app.command(cls=SplitAtDoubleDash)
def compare(
    before_paths: BeforeArgs = None,
    before: BeforeOpt = None,
    after: AfterOpt = None,
    before_threads: SideThreads = None,
    after_threads: SideThreads = None,
    before_query_migrate: SideQuery = None,
    after_query_migrate: SideQuery = None,
    before_label: SideLabel = None,
    after_label: SideLabel = None,
    output: OutputOpt = None,
    format: ReportFormatOpt = None,
    events: EventsOpt = None,
    input_format: InputFormatOpt = None,
) -> None:
    """Two traces of one scenario side by side, such as QEMU 7.2 against the threaded load:
    phase durations, device load times, BQL holds per thread (matched by role, then name),
    preempt waits and downtime, with absolute and relative changes, and the load thread of each.

    Example: migtrace compare old/dst.trace.xz --before-threads old/dst-threads.json --
    'new/per-thread/dst.*' --after-threads new/per-thread/dst-threads.json -o cmp.html"""
    from tracetool._analyses.compare import compare as run_compare
    from tracetool._analyses.reportdata import collect

    b_paths = [*(before_paths or []), *(before or [])]
    a_paths = list(after or [])
    if not b_paths or not a_paths:
        raise UsageError(
            "compare needs traces on both sides: BEFORE... -- AFTER... (or --before P --after P)"
        )
    fmt = pick_format(format, output)
    check_output(output)
    sides = []
    for paths, threads, query in (
        (b_paths, before_threads, before_query_migrate),
        (a_paths, after_threads, after_query_migrate),
    ):
        side = Inputs(paths, threads, events, input_format, query_migrate=query)
        q = side.query()
        sides.append(collect(side.load(), q, inputs=paths))
    labels = (before_label or "before", after_label or "after")
    cmp = run_compare(sides[0], sides[1], labels)
    if fmt is ReportFormat.text and (output is None or output == "-"):
        from reports.compare import compare_text
        from reports.console import console

        compare_text(cmp, console())
        return
    emit(lambda: render_comparison(cmp, sides, fmt), output)


def render_comparison(cmp: Comparison, sides: Sequence[ReportData], fmt: ReportFormat) -> str:
    """The comparison as text in ``fmt`` (HTML with the paired figure when available)."""
    from reports import compare as view

    if fmt is ReportFormat.json:
        return view.compare_json(cmp)
    if fmt is ReportFormat.md:
        return view.compare_markdown(cmp)
    if fmt is ReportFormat.html:
        from reports.html import compare_figures

        figures, notes = compare_figures(cmp, sides[0], sides[1])
        return view.compare_html(cmp, figures, notes)
    return plain_text(lambda out: view.compare_text(cmp, out))
