"""``migtrace compare BEFORE... -- AFTER...``: two traces of one scenario side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from tracetool.cli.common import (
    EventsOpt,
    ForceOpt,
    InputFormatOpt,
    Inputs,
    app,
    check_output,
    warnings_on_stderr,
)
from tracetool.cli.report import (
    OutputOpt,
    ReportFormat,
    ReportFormatOpt,
    emit,
    pick_format,
    plain_text,
)
from tracetool.errors import UsageError

if TYPE_CHECKING:
    from tracetool._analyses.comparison import Comparison
    from tracetool._analyses.reportdata import ReportData
    from tracetool._check.repeats import RunsComparison

NO_NOISE_ESTIMATE = (
    "one run per side: no noise estimate (give several run folders per side, e.g. from "
    "migtrace capture --runs N, for medians, spread and a significance test)"
)

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
MetricOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--metric",
        help="With several runs per side: a metric to compare, as migtrace check spells it "
        "(bql.hold.total{load=true}); repeatable; default: the headline metrics and more.",
    ),
]


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
    metric: MetricOpt = None,
    output: OutputOpt = None,
    format: ReportFormatOpt = None,
    events: EventsOpt = None,
    input_format: InputFormatOpt = None,
    force: ForceOpt = False,
) -> None:
    """Two traces of one scenario side by side, such as QEMU 7.2 against the threaded load:
    phase durations, device load times, BQL holds per thread (matched by role, then name),
    preempt waits and downtime, with absolute and relative changes, and the load thread of each.

    With several run folders per side (or a build's folder of run-K folders, as migtrace capture
    writes them): every run's value of each metric, median and quartiles per side, and the
    change as a Hodges-Lehmann shift with its 95 % interval and a Mann-Whitney p-value.

    Example: migtrace compare old/dst.trace.xz --before-threads old/dst-threads.json --
    'new/per-thread/dst.*' --after-threads new/per-thread/dst-threads.json -o cmp.html;
    migtrace compare runs/qemu-7.2.22 -- runs/threadify --format json"""
    from tracetool._check.repeats import folder_label, side_labels, side_runs

    b_paths = [*(before_paths or []), *(before or [])]
    a_paths = list(after or [])
    if not b_paths or not a_paths:
        raise UsageError(
            "compare needs traces on both sides: BEFORE... -- AFTER... (or --before P --after P)"
        )
    fmt = pick_format(format, output)
    check_output(output)
    b_runs, a_runs = side_runs(b_paths), side_runs(a_paths)
    labels = (before_label, after_label)
    if len(b_runs) > 1 or len(a_runs) > 1:
        given = [n for n, v in (("--before-threads", before_threads), ("--after-threads", after_threads),
                                ("--before-query-migrate", before_query_migrate),
                                ("--after-query-migrate", after_query_migrate)) if v]  # fmt: skip
        if given:
            raise UsageError(
                f"{given[0]} describes one run; with several runs per side each run folder brings "
                "its own sidecars and query-migrate.json"
            )
        cmp_runs = _compare_runs(b_paths, a_paths, labels, metric, events, input_format, force)
        if fmt is ReportFormat.text and (output is None or output == "-"):
            from reports.compare_runs import runs_text
            from reports.console import console

            runs_text(cmp_runs, console())
            return
        emit(lambda: render_runs(cmp_runs, fmt), output)
        return
    if metric:
        raise UsageError("--metric applies to several runs per side (give run folders on both sides)")
    cmp, sides = _compare_one_run_each(
        (b_paths, before_threads, before_query_migrate),
        (a_paths, after_threads, after_query_migrate),
        side_labels(labels, [folder_label(b_runs[0])], [folder_label(a_runs[0])]),
        events,
        input_format,
        force,
    )
    cmp.notes.append(NO_NOISE_ESTIMATE)
    if fmt is ReportFormat.text and (output is None or output == "-"):
        from reports.compare import compare_text
        from reports.console import console

        compare_text(cmp, console())
        return
    emit(lambda: render_comparison(cmp, sides, fmt), output)


def _compare_one_run_each(
    before: tuple[list[str], list[str] | None, str | None],
    after: tuple[list[str], list[str] | None, str | None],
    labels: tuple[str, str],
    events: list[str] | None,
    input_format: str | None,
    force: bool,
) -> tuple[Comparison, list[ReportData]]:
    from tracetool._analyses.compare import compare as run_compare
    from tracetool._analyses.reportdata import collect

    sides = []
    for paths, threads, query in (before, after):
        side = Inputs(paths, threads, events, input_format, query_migrate=query, force=force)
        q = side.query()
        sides.append(collect(side.load(), q, inputs=paths))
    return run_compare(sides[0], sides[1], labels), sides


def _compare_runs(
    before: list[str],
    after: list[str],
    labels: tuple[str | None, str | None],
    metrics: list[str] | None,
    events: list[str] | None,
    input_format: str | None,
    force: bool,
) -> RunsComparison:
    from reports.progress import RunsProgress, wants_runs_progress
    from tracetool._check.repeats import DEFAULT_METRICS, compare_runs, side_runs

    def go(progress: RunsProgress | None) -> RunsComparison:
        return compare_runs(
            before,
            after,
            labels=labels,
            metrics=metrics or DEFAULT_METRICS,
            events=events or (),
            input_format=input_format,
            force=force,
            progress=progress,
        )

    with warnings_on_stderr():
        if wants_runs_progress():
            with RunsProgress(len(side_runs(before)) + len(side_runs(after))) as bar:
                return go(bar)
        return go(None)


def render_runs(cmp: RunsComparison, fmt: ReportFormat) -> str:
    """A several-runs comparison as text in ``fmt``."""
    from reports import compare_runs as view

    if fmt is ReportFormat.json:
        return view.runs_json(cmp)
    if fmt is ReportFormat.md:
        return view.runs_markdown(cmp)
    if fmt is ReportFormat.html:
        return view.runs_html(cmp)
    return plain_text(lambda out: view.runs_text(cmp, out))


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
