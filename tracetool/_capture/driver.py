"""Repeated runs of one scenario with one or more QEMU builds, alternating build by build.

``DIR/<label>/run-K/`` holds run K of a build (K from 1); runs go build A run 1, build B run 1,
A run 2, ..., so that whatever drifts on the host (load, temperature, caches) hits every build
alike. ``DIR/capture.json`` lists the builds, the scenario and every run's outcome; it is
rewritten after each run, so an interrupted capture still describes what it did.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tracetool._capture.errors import (
    EXIT_ENVIRONMENT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_FAILED,
    CaptureError,
    Interrupted,
)
from tracetool._capture.qemu import check_label, find_qemu, qemu_version, version_label
from tracetool._capture.record import write_json
from tracetool._capture.run import RunResult, run_once
from tracetool._capture.scenarios import Scenario
from tracetool._capture.session import RunOptions


@dataclass(frozen=True)
class Build:
    """One QEMU binary and the label that names its folder."""

    qemu: str
    label: str
    version_text: str


def resolve_builds(qemus: list[str], labels: list[str]) -> list[Build]:
    """Find each QEMU, read its version and give it a distinct label (CaptureError, exit 2)."""
    if not qemus:
        raise CaptureError("give at least one --qemu", EXIT_ENVIRONMENT)
    if labels and len(labels) != len(qemus):
        raise CaptureError(
            f"{len(labels)} --label for {len(qemus)} --qemu: give one label per QEMU, or none",
            EXIT_ENVIRONMENT,
        )
    paths = [find_qemu(q) for q in qemus]
    versions = [qemu_version(p) for p in paths]
    if labels:
        for label in labels:
            check_label(label)
        if len(set(labels)) != len(labels):
            raise CaptureError(f"--label: the labels must differ ({', '.join(labels)})", EXIT_ENVIRONMENT)
        names = list(labels)
    else:
        names = [version_label(v) for v in versions]
        for name in set(names):
            if names.count(name) > 1:  # same version twice: number every one of them
                numbered = iter(range(1, len(names) + 1))
                names = [f"{n}-{next(numbered)}" if n == name else n for n in names]
    return [Build(p, n, v) for p, n, v in zip(paths, names, versions, strict=True)]


def run_order(builds: list[Build], runs: int) -> list[tuple[int, Build]]:
    """(run index, build) in the order they run: A1, B1, A2, B2, ..."""
    return [(k, b) for k in range(1, runs + 1) for b in builds]


@dataclass(frozen=True)
class CapturePlan:
    """A whole capture: where, which builds, which scenario, how many runs, how."""

    out: Path
    builds: list[Build]
    scenario: Scenario
    runs: int
    accel: str = "tcg"
    mem_mb: int = 128
    timeout_s: float = 120.0
    per_thread: bool = False
    warmup_s: float = 0.5

    def run_options(self, build: Build, index: int) -> RunOptions:
        """The options of run ``index`` of ``build``."""
        return RunOptions(
            out=self.out / build.label / f"run-{index}",
            qemu=build.qemu,
            version_text=build.version_text,
            label=build.label,
            index=index,
            scenario=self.scenario,
            accel=self.accel,
            mem_mb=self.mem_mb,
            timeout_s=self.timeout_s,
            per_thread=self.per_thread,
            warmup_s=self.warmup_s,
        )


class CaptureListener(Protocol):
    """What the caller hears while the capture runs (the CLI draws its progress from it)."""

    def run_started(self, position: int, total: int, build: Build, index: int) -> None:
        """Run ``index`` of ``build`` starts; it is number ``position`` of ``total``."""

    def log(self, message: str) -> None:
        """A progress line of the current run."""

    def run_finished(self, position: int, total: int, result: RunResult) -> None:
        """The run ended (successfully or not)."""


@dataclass
class CaptureSummary:
    """What happened: every run's result, and how the capture as a whole ended."""

    plan: CapturePlan
    results: list[RunResult] = field(default_factory=list)
    status: str = "running"
    t_start: float = field(default_factory=time.time)
    t_end: float | None = None
    stop_reason: str | None = None

    @property
    def failed(self) -> list[RunResult]:
        """The runs that did not reach the expected state."""
        return [r for r in self.results if not r.ok]

    def exit_code(self) -> int:
        """0 every run ok, 1 some run failed, 2 stopped by an environment problem."""
        if self.status == "stopped":
            return EXIT_ENVIRONMENT
        return EXIT_RUN_FAILED if self.failed else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        """The contents of capture.json."""
        p = self.plan
        return {
            "scenario": p.scenario.to_json(),
            "runs_per_build": p.runs,
            "order": "alternating: run 1 of every build in --qemu order, then run 2, ...",
            "builds": [{"label": b.label, "qemu": b.qemu, "version": b.version_text} for b in p.builds],
            "options": {
                "accel": p.accel,
                "mem_mb": p.mem_mb,
                "per_thread": p.per_thread,
                "timeout_s": p.timeout_s,
                "warmup_s": p.warmup_s,
            },
            "status": self.status,
            "stop_reason": self.stop_reason,
            "t_start": self.t_start,
            "t_end": self.t_end,
            "failed": len(self.failed),
            "results": [r.to_json(p.out) for r in self.results],
        }

    def write(self) -> None:
        """(Re)write DIR/capture.json."""
        write_json(self.plan.out / "capture.json", self.to_json())


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises Interrupted while inside (main thread only), so cleanup runs as on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def capture(plan: CapturePlan, listener: CaptureListener) -> CaptureSummary:
    """Run the whole plan; KeyboardInterrupt / Interrupted propagate once all is stopped."""
    plan.out.mkdir(parents=True, exist_ok=True)
    summary = CaptureSummary(plan)
    order = run_order(plan.builds, plan.runs)
    summary.write()
    current: tuple[RunOptions, float] | None = None
    try:
        with sigterm_raises():
            for position, (index, build) in enumerate(order, 1):
                listener.run_started(position, len(order), build, index)
                current = (plan.run_options(build, index), time.time())
                result = run_once(current[0], listener.log)
                current = None
                summary.results.append(result)
                summary.write()
                listener.run_finished(position, len(order), result)
                if result.error_code == EXIT_ENVIRONMENT:
                    summary.status = "stopped"
                    summary.stop_reason = result.error
                    break
            else:
                summary.status = "completed"
    except (KeyboardInterrupt, Interrupted) as e:
        summary.status = "interrupted"
        summary.stop_reason = "SIGINT" if isinstance(e, KeyboardInterrupt) else "SIGTERM"
        if current is not None:
            opts, t_start = current
            summary.results.append(RunResult(
                opts.label, opts.index, opts.out, False, "interrupted", None, None,
                f"interrupted by {summary.stop_reason}", EXIT_INTERRUPTED, t_start, time.time(),
            ))  # fmt: skip
        raise
    finally:
        summary.t_end = time.time()
        summary.write()
    return summary
