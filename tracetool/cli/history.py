"""``migtrace history add|show|regressions``: keep every run's metrics, watch them over time."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from tracetool.cli.common import EXIT_FAIL, app, emit_json, warnings_on_stderr, wrote
from tracetool.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from tracetool._history.store import History

history_app = typer.Typer(
    name="history",
    help="A run history in SQLite or PostgreSQL: add runs, show a metric over time, find regressions.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(history_app, name="history")


class TextOrJson(StrEnum):
    """Output formats of ``history add`` and ``history regressions``."""

    text = "text"
    json = "json"


class ShowFormat(StrEnum):
    """Output formats of ``history show``."""

    text = "text"
    json = "json"
    png = "png"
    html = "html"


DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="PATH|URL",
        help="The history: a SQLite file, sqlite:///PATH or postgresql://USER:PASS@HOST/DB (scale "
        "extra). Default: $MIGTRACE_HISTORY, else migtrace-history.sqlite here.",
        show_default=False,
    ),
]
LabelOpt = Annotated[
    list[str] | None,
    typer.Option("--label", metavar="KEY=VALUE", help="A label for the runs added (repeatable)."),
]
WhereOpt = Annotated[
    list[str] | None,
    typer.Option("--where", metavar="KEY=VALUE", help="Only runs with this label value (repeatable)."),
]
ByOpt = Annotated[str | None, typer.Option("--by", metavar="LABEL", help="Group the runs by this label.")]
RecentOpt = Annotated[int, typer.Option("--recent", help="The newest runs (of each group) to judge.")]
BaselineOpt = Annotated[int, typer.Option("--baseline", help="The runs before them that are the baseline.")]


def _open(db: str | None) -> History:
    from tracetool._history.store import History

    return History(db)


# ---------------------------------------------------------------------------------- add
@history_app.command("add")
def add(
    runs: Annotated[
        list[str],
        typer.Argument(
            help="Run folders (a folder of run-K folders stands for each), or tables written by "
            "migtrace batch (.parquet, .csv).",
            show_default=False,
            metavar="RUN...",
        ),
    ],
    db: DbOpt = None,
    label: LabelOpt = None,
    workers: Annotated[
        int, typer.Option("--workers", "-j", help="Measure the runs in this many local processes.")
    ] = 1,
    format: Annotated[TextOrJson, typer.Option("--format", "-f", help="Output format.")] = TextOrJson.text,
) -> None:
    """Add runs to the history: every metric of each run, its labels and its start time. A run
    already there (same trace files' content) is kept once and its labels are merged. Exit code
    1 when some run could not be measured (the others are added), 2 for bad options."""
    from reports.history import added_lines
    from tracetool._check.runid import parse_labels

    labels = parse_labels(label or [])
    tables, failed = _measure(runs, workers)
    with _open(db) as history:
        added = [a for t in tables for a in history.add(t, labels)]
        where = history.shown
    if format is TextOrJson.json:
        emit_json(
            {
                "db": where,
                "runs": [
                    {"run": a.run, "source": a.source, "new": a.new, "metrics": a.metrics, "labels": a.labels}
                    for a in added
                ],
                "failed": [{"source": s, "error": e} for s, e in failed],
            }
        )
    else:
        for line in added_lines(added, where):
            sys.stdout.write(line + "\n")
    for source, error in failed:
        sys.stderr.write(f"migtrace: {source}: not added: {error}\n")
    if failed:
        raise SystemExit(EXIT_FAIL)


def _measure(paths: list[str], workers: int) -> tuple[list[pd.DataFrame], list[tuple[str, str]]]:
    """The metrics tables of the runs and batch tables given, and the runs that failed."""
    from tracetool._batch.schedulers import measure_runs
    from tracetool._batch.tablefile import is_table_file, read_table
    from tracetool._batch.work import RunResult, expand_runs, measure_one

    if workers < 1:
        raise UsageError(f"--workers {workers}: at least 1")
    files = [p for p in paths if is_table_file(p)]
    folders = [p for p in paths if not is_table_file(p)]
    tables = [read_table(f) for f in files]
    results: list[RunResult] = []
    with warnings_on_stderr():
        if folders and workers > 1:
            results = list(measure_runs(folders, workers=workers).results)
        elif folders:
            results = [measure_one(run) for run in expand_runs(folders)]
    for r in results:
        for w in dict.fromkeys(r.warnings):
            sys.stderr.write(f"migtrace: warning: {r.source}: {w}\n")
    tables += [r.frame for r in results if r.ok]
    failed = [(r.source, r.error or "") for r in results if not r.ok]
    for t in tables[: len(files)]:
        failed += [(str(s), str(e)) for s, e in t.loc[t["error"].notna(), ["source", "error"]].to_numpy()]
    return tables, failed


# ---------------------------------------------------------------------------------- show
@history_app.command("show")
def show(
    metric: Annotated[
        str,
        typer.Option(
            "--metric", "-m", help="The metric id, as migtrace check spells it: bql.hold.total{load=true}."
        ),
    ],
    by: ByOpt = None,
    where: WhereOpt = None,
    db: DbOpt = None,
    recent: RecentOpt = 3,
    baseline: BaselineOpt = 10,
    format: Annotated[
        ShowFormat, typer.Option("--format", "-f", help="text, json, png (a figure) or html (a page).")
    ] = ShowFormat.text,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write to this file (atomically); png needs one.")
    ] = None,
) -> None:
    """Show one metric over the history: every run's value in time order (UTC of its first
    event), grouped by a label, with the baseline band of the recent runs."""
    from tracetool._check.runid import parse_labels
    from tracetool._history.trend import trend
    from tracetool.cli.common import check_output

    check_output(output)
    if format is ShowFormat.png and (output is None or output == "-"):
        raise UsageError("--format png writes a file: give --output FILE.png")
    with _open(db) as history:
        labels = parse_labels(where or [])
        _require_labels(history, by, labels)
        found = trend(history, metric, by=by, where=labels, recent=recent, baseline=baseline)
        shown = history.shown
    if format is ShowFormat.json:
        from tracetool._json import dumps

        _emit_text(lambda: dumps(found.to_json()), output)
    elif format is ShowFormat.text:
        from reports.history import render_trend
        from tracetool.cli.report import plain_text

        if output is None or output == "-":
            from reports.console import console

            render_trend(found, console())
        else:
            _emit_text(lambda: plain_text(lambda out: render_trend(found, out)), output)
    elif format is ShowFormat.html:
        from reports.history_html import history_html

        _emit_text(lambda: history_html(found, shown), output)
    else:
        from reports.atomic import write_bytes
        from reports.plots.trend import trend_png

        assert output is not None
        size = write_bytes(output, trend_png(found))
        wrote(output, size)


def _require_labels(history: History, by: str | None, where: Mapping[str, str]) -> None:
    """``--by`` and ``--where`` name labels the history has, or the command says so (exit 2)
    rather than showing nothing."""
    from tracetool.cli.common import require_match

    values: dict[str, set[str]] = {}
    for labels in history.runs()["labels"]:
        for key, value in labels.items():
            values.setdefault(key, set()).add(value)
    place = "this history"
    if by is not None:
        require_match("--by", by, sorted(values), "labels", place)
    for key, value in where.items():
        require_match("--where", key, sorted(values), "labels", place)
        known = [f"{key}={v}" for v in sorted(values[key])]
        require_match("--where", f"{key}={value}", known, "values", place)


def _emit_text(render: Callable[[], str], output: str | None) -> None:
    from tracetool.cli.report import emit

    emit(render, output)


# ---------------------------------------------------------------------------------- regressions
@history_app.command("regressions")
def regressions(
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric", "-m", help="A metric id to check (repeatable; default: those migtrace compare shows)."
        ),
    ] = None,
    by: ByOpt = None,
    where: WhereOpt = None,
    db: DbOpt = None,
    recent: RecentOpt = 3,
    baseline: BaselineOpt = 10,
    min_change: Annotated[
        float,
        typer.Option(
            "--min-change", help="The smallest rise, as a share of the baseline median, that counts."
        ),
    ] = 0.05,
    format: Annotated[TextOrJson, typer.Option("--format", "-f", help="Output format.")] = TextOrJson.text,
) -> None:
    """Compare the newest runs with a baseline window of the runs before them, per metric
    (and per --by group), with the statistics of migtrace compare. Exit code 1 when a metric
    regressed (significant and up by at least --min-change), 0 otherwise, 2 for bad options."""
    from tracetool._check.runid import parse_labels
    from tracetool._history.regressions import find_regressions

    with _open(db) as history:
        labels = parse_labels(where or [])
        _require_labels(history, by, labels)
        report = find_regressions(
            history,
            metric or None,
            by=by,
            where=labels,
            recent=recent,
            baseline=baseline,
            min_change=min_change,
        )
    if format is TextOrJson.json:
        emit_json(report.to_json())
    else:
        from reports.console import console
        from reports.history import render_regressions

        render_regressions(report, console())
    if report.exit_code:
        raise SystemExit(report.exit_code)
