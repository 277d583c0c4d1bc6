"""``migtrace capture``: record real migrations with one or more QEMU builds, run after run."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from tracetool.cli.common import app, fail

if TYPE_CHECKING:
    from rich.progress import Progress

    from tracetool._capture.driver import Build, CaptureSummary
    from tracetool._capture.run import RunResult


class Accel(StrEnum):
    """QEMU accelerators a capture can use."""

    tcg = "tcg"
    kvm = "kvm"


def _scenario_names() -> str:
    from tracetool._capture.scenarios import scenarios

    return ", ".join(scenarios())


QemuOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--qemu",
        metavar="PATH",
        help="QEMU binary (a path or a name on PATH); repeat to compare "
        "builds, which then run alternately. Default: qemu-system-x86_64.",
        show_default=False,
    ),
]
ScenarioOpt = Annotated[
    str,
    typer.Option(
        "--scenario",
        metavar="NAME",
        help=f"What to migrate and how: {_scenario_names()} "
        "(tracetool/_capture/scenarios.toml describes each).",
    ),
]
RunsOpt = Annotated[int, typer.Option("--runs", min=1, help="Runs per build.")]
OutOpt = Annotated[
    Path,
    typer.Option(
        "--out", help="Capture folder: DIR/<label>/run-K/ per run, DIR/capture.json.", show_default=False
    ),
]
AccelOpt = Annotated[Accel, typer.Option("--accel", help="QEMU accelerator (COLO needs kvm).")]
PerThreadOpt = Annotated[
    bool,
    typer.Option(
        "--per-thread", help="One trace file per thread (-d tid): run-K/per-thread/dst.<TID>.trace."
    ),
]
LabelOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--label",
        metavar="NAME",
        help="Folder name of each --qemu, in the same order (default: "
        "from 'qemu --version', e.g. qemu-7.2.22).",
        show_default=False,
    ),
]
MemOpt = Annotated[int, typer.Option("--mem", min=32, metavar="MB", help="Guest RAM in MiB.")]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout", min=1.0, metavar="S", help="A run gives up (and kills both QEMUs) after S seconds."
    ),
]
WarmupOpt = Annotated[
    float,
    typer.Option("--warmup", min=0.0, metavar="S", help="Seconds the guest runs its loop before migrating."),
]


class PlainProgress:
    """One line per event on stderr, for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.prefix = ""

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def _line(self, text: str) -> None:
        self.stream.write(f"capture: {text}\n")
        self.stream.flush()

    def run_started(self, position: int, total: int, build: Build, index: int) -> None:
        self.prefix = f"[{position}/{total}] {build.label} run-{index}"
        self._line(f"{self.prefix}: start")

    def log(self, message: str) -> None:
        self._line(f"{self.prefix}: {message}")

    def run_finished(self, position: int, total: int, result: RunResult) -> None:
        self._line(f"{self.prefix}: {_verdict(result)}")


class BarProgress:
    """A rich progress bar over all runs, with the current run's last step beside it."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar: Progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[step]}"),
            console=Console(file=stream),
            transient=True,
        )
        self.task = self.bar.add_task("capture", total=None, step="")
        self.name = ""

    def __enter__(self) -> BarProgress:
        self.bar.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.bar.stop()

    def run_started(self, position: int, total: int, build: Build, index: int) -> None:
        self.name = f"{build.label} run-{index}"
        self.bar.update(
            self.task, total=total, completed=position - 1, description=self.name, step="starting"
        )

    def log(self, message: str) -> None:
        self.bar.update(self.task, step=message[:60])

    def run_finished(self, position: int, total: int, result: RunResult) -> None:
        self.bar.update(self.task, completed=position, step="")
        self.bar.console.print(f"{self.name}: {_verdict(result)}", markup=False, highlight=False)


def _verdict(result: RunResult) -> str:
    if result.ok:
        return f"ok ({result.outcome})"
    first = (result.error or result.outcome).splitlines()[0]
    return f"FAILED ({result.outcome}): {first}"


def _report(summary: CaptureSummary) -> None:
    failed = summary.failed
    runs = len(summary.results)
    where = summary.plan.out / "capture.json"
    if summary.status == "stopped":
        sys.stderr.write(
            f"migtrace: capture stopped: {(summary.stop_reason or '').splitlines()[0]} (see {where})\n"
        )
    elif failed:
        sys.stderr.write(f"migtrace: {len(failed)} of {runs} runs failed (see {where})\n")
    else:
        sys.stderr.write(f"capture: {runs} runs ok, written to {summary.plan.out}\n")


@app.command(
    epilog="Exit codes: 0 every run reached the state its scenario expects, 1 some run "
    "did not (the others still ran), 2 usage or environment (QEMU missing, no KVM), "
    "130 interrupted (both QEMUs are stopped first)."
)
def capture(
    out: OutOpt,
    qemu: QemuOpt = None,
    scenario: ScenarioOpt = "precopy",
    runs: RunsOpt = 1,
    accel: AccelOpt = Accel.tcg,
    per_thread: PerThreadOpt = False,
    label: LabelOpt = None,
    mem: MemOpt = 128,
    timeout: TimeoutOpt = 120.0,
    warmup: WarmupOpt = 0.5,
) -> None:
    """Run real source/destination QEMU migrations on loopback and write their traces and
    sidecars to DIR/<label>/run-K/, alternating the builds run by run. Scenarios are defined in
    tracetool/_capture/scenarios.toml."""
    from tracetool._capture.driver import CapturePlan, capture, resolve_builds
    from tracetool._capture.errors import EXIT_INTERRUPTED, CaptureError, Interrupted
    from tracetool._capture.qemu import DEFAULT_QEMU, check_kvm
    from tracetool._capture.scenarios import scenarios

    known = scenarios()
    if scenario not in known:
        fail(f"--scenario: unknown scenario {scenario!r} (choose from: {', '.join(known)})")
    chosen = known[scenario]
    problem = chosen.accel_problem(accel.value)
    if problem:
        fail(problem)
    if not sys.platform.startswith("linux"):
        fail("capture needs Linux (/proc, unix sockets, prctl)")
    try:
        if accel is Accel.kvm:
            check_kvm()
        builds = resolve_builds(list(qemu or [DEFAULT_QEMU]), list(label or []))
    except CaptureError as e:
        fail(str(e).splitlines()[0], e.code)
    plan = CapturePlan(out.resolve(), builds, chosen, runs, accel.value, mem, timeout, per_thread, warmup)
    interactive = sys.stderr.isatty() and not os.environ.get("CI")
    listener = BarProgress(sys.stderr) if interactive else PlainProgress(sys.stderr)
    try:
        with listener:
            summary = capture(plan, listener)
    except (KeyboardInterrupt, Interrupted) as e:
        sys.stderr.write(
            "migtrace: interrupted; the QEMUs of the current run were stopped "
            f"(see {plan.out / 'capture.json'})\n"
        )
        raise SystemExit(e.exit_code if isinstance(e, Interrupted) else EXIT_INTERRUPTED) from None
    _report(summary)
    code = summary.exit_code()
    if code:
        raise SystemExit(code)
