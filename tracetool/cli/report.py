"""``migtrace report``: every analysis of one trace in one report (text, Markdown, HTML, JSON)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from tracetool.cli.common import Inputs, check_output, command, fail_if_strict, wrote
from tracetool.errors import UsageError

if TYPE_CHECKING:
    from tracetool._analyses.reportdata import ReportData


class ReportFormat(StrEnum):
    """Output formats of ``report`` and ``compare``."""

    text = "text"
    md = "md"
    html = "html"
    json = "json"


SUFFIXES = {
    ".html": ReportFormat.html,
    ".htm": ReportFormat.html,
    ".md": ReportFormat.md,
    ".markdown": ReportFormat.md,
    ".json": ReportFormat.json,
    ".txt": ReportFormat.text,
}

OutputOpt = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        help="Write the report to this file (format from its suffix: .html, .md, "
        ".json, .txt) instead of standard output. Written atomically.",
    ),
]
ReportFormatOpt = Annotated[
    ReportFormat | None,
    typer.Option("--format", "-f", help="Output format; default: from the --output suffix, else text."),
]


def pick_format(fmt: ReportFormat | None, output: str | None) -> ReportFormat:
    """--format when given, else the output file's suffix, else text. A --format that
    contradicts a known suffix of --output (``-o out.html -f json``) is an error."""
    suffix = os.path.splitext(output)[1].lower() if output and output != "-" else ""
    if fmt is not None:
        implied = SUFFIXES.get(suffix)
        if implied not in (None, ReportFormat.text, fmt):  # any text may go into a .txt
            raise UsageError(
                f"--format {fmt.value} does not match --output {output} (a {implied} file "
                f"name); change one of them"
            )
        return fmt
    if output is None or output == "-":
        return ReportFormat.text
    if suffix not in SUFFIXES:
        raise UsageError(
            f"{output}: cannot tell the format from the suffix {suffix or '(none)'!r}; "
            "use .html, .md, .json or .txt, or give --format"
        )
    return SUFFIXES[suffix]


def emit(render: Callable[[], str], output: str | None) -> None:
    """Writes the rendered report to ``output`` atomically (stdout when None or "-")."""
    from reports.atomic import write_text

    if output is None or output == "-":
        sys.stdout.write(render())
        return
    try:
        size = write_text(output, render)
    except OSError as exc:
        raise UsageError(f"{output}: cannot write: {exc.strerror or exc}") from None
    wrote(output, size)


def plain_text(print_to: Callable[..., None]) -> str:
    """What a terminal renderer prints, as plain text (no colour) for a file."""
    import io

    from reports.console import console

    buf = io.StringIO()
    print_to(console(buf))
    return buf.getvalue()


@command(query_migrate=True, output_format=False)
def report(inputs: Inputs, *, output: OutputOpt = None, format: ReportFormatOpt = None, strict: bool) -> None:
    """All analyses of one trace in one report: summary, incoming phases, downtime, BQL,
    postcopy preempt and COLO. Sections the trace has no events for say which events to enable."""
    from tracetool._analyses.reportdata import collect

    fmt = pick_format(format, output)
    check_output(output)
    query = inputs.query()
    data = collect(inputs.load(), query, inputs=inputs.paths)
    if fmt is ReportFormat.text and (output is None or output == "-"):
        from reports.console import console
        from reports.report_text import report_text

        report_text(data, console())
    else:
        emit(lambda: render_report(data, fmt), output)
    fail_if_strict(strict, data.issue_count)


def render_report(data: ReportData, fmt: ReportFormat) -> str:
    """The report of ``data`` as text in ``fmt``."""
    from reports.html import report_html
    from reports.markdown import report_markdown
    from reports.report_json import report_document
    from reports.report_text import report_text
    from tracetool._json import dumps

    if fmt is ReportFormat.json:
        return dumps(report_document(data))
    if fmt is ReportFormat.md:
        return report_markdown(data)
    if fmt is ReportFormat.html:
        return report_html(data)
    return plain_text(lambda out: report_text(data, out))
