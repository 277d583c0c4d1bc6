"""``migtrace batch RUN... --out FILE``: the metrics of many runs, in parallel, in one table."""

from __future__ import annotations

from typing import Annotated

import typer

from tracetool.cli.common import EXIT_FAIL, app, check_output, warnings_on_stderr, wrote

RunsArg = Annotated[
    list[str],
    typer.Argument(
        help="Run folders (a folder of run-K folders stands for each of them); a trace file is "
        "a run of its own.",
        show_default=False,
        metavar="RUN...",
    ),
]
OutOpt = Annotated[
    str,
    typer.Option("--out", "-o", help="The table to write: FILE.parquet or FILE.csv (written atomically)."),
]
SchedulerOpt = Annotated[
    str,
    typer.Option(
        "--scheduler",
        help="processes (local processes), local (a Dask LocalCluster) or the address of a Dask "
        "scheduler (tcp://HOST:PORT). The Dask ones need the scale extra.",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers", "-j", help="Worker processes (default: one per CPU); with an address: ignored."
    ),
]
MemoryOpt = Annotated[
    str,
    typer.Option(
        "--memory-limit", help="With --scheduler local: memory per worker (Dask restarts a worker beyond it)."
    ),
]
LabelOpt = Annotated[
    list[str] | None,
    typer.Option("--label", metavar="KEY=VALUE", help="A label for every run (repeatable)."),
]


@app.command()
def batch(
    runs: RunsArg,
    out: OutOpt,
    scheduler: SchedulerOpt = "processes",
    workers: WorkersOpt = None,
    memory_limit: MemoryOpt = "4GiB",
    label: LabelOpt = None,
) -> None:
    """Measure many runs in parallel: every metric of each run (as migtrace check names them)
    as one long table, one row per run and metric id; a run that fails is one row with its
    error. Exit code 0 when every run was measured, 1 when some failed (the table is still
    written), 2 for bad options."""
    import sys

    from reports.batch import BatchBar, summary_lines, table_format, write_table
    from reports.progress import wants_runs_progress
    from tracetool._batch.schedulers import check_scheduler, measure_runs
    from tracetool._batch.work import expand_runs
    from tracetool._check.runid import parse_labels

    table_format(out)
    check_output(out)
    check_scheduler(scheduler)
    labels = parse_labels(label or [])
    total = len(expand_runs(runs))
    with warnings_on_stderr():
        if wants_runs_progress():
            with BatchBar(total) as bar:
                result = measure_runs(
                    runs,
                    scheduler=scheduler,
                    workers=workers,
                    labels=labels,
                    memory_limit=memory_limit,
                    progress=bar,
                )
        else:
            result = measure_runs(
                runs, scheduler=scheduler, workers=workers, labels=labels, memory_limit=memory_limit
            )
    for r in result.results:
        for w in dict.fromkeys(r.warnings):
            sys.stderr.write(f"migtrace: warning: {r.source}: {w}\n")
    rows = write_table(result.table, out)
    wrote(out)
    for line in summary_lines(result, out, rows):
        sys.stdout.write(line + "\n")
    if result.failed:
        raise SystemExit(EXIT_FAIL)
