"""The state of one run: its options, both QEMUs, the QMP journal, deadline and log."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tracetool._capture.errors import CaptureError, QMPError
from tracetool._capture.qemu import Side
from tracetool._capture.qmp import Journal
from tracetool._capture.sampler import ThreadSampler
from tracetool._capture.scenarios import Scenario

POLL_INTERVAL_S = 0.1


@dataclass(frozen=True)
class RunOptions:
    """Everything one run needs to know."""

    out: Path
    qemu: str
    version_text: str
    label: str
    index: int
    scenario: Scenario
    accel: str = "tcg"
    mem_mb: int = 128
    timeout_s: float = 120.0
    per_thread: bool = False
    warmup_s: float = 0.5


@dataclass
class Session:
    """One run in progress; every QMP command goes through ``qmp`` so errors read well."""

    opts: RunOptions
    on_log: Callable[[str], None] | None = None
    journal: Journal = field(default_factory=Journal)
    sides: dict[str, Side] = field(default_factory=dict)
    sampler: ThreadSampler | None = None
    run_info: dict[str, Any] = field(default_factory=dict)
    final: dict[str, Any] = field(default_factory=dict)
    log_file: TextIO | None = None
    start_mono: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        """Monotonic time after which the run gives up."""
        return self.start_mono + self.opts.timeout_s

    def log(self, msg: str) -> None:
        """One progress line: into ``capture.log`` of the run and to the caller."""
        line = f"[{time.monotonic() - self.start_mono:6.2f}s] {msg}"
        if self.log_file is not None:
            self.log_file.write(line + "\n")
            self.log_file.flush()
        if self.on_log is not None:
            self.on_log(msg)

    def check_deadline(self, what: str) -> None:
        """Raise CaptureError once the run's timeout has passed."""
        if time.monotonic() > self.deadline:
            raise CaptureError(f"timed out after {self.opts.timeout_s:g} s while {what}")

    def qmp(
        self,
        role: str,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        poll: bool = False,
        timeout: float = 30.0,
    ) -> Any:
        """Run one QMP command on ``role``; errors become CaptureError."""
        side = self.sides[role]
        deadline = min(self.deadline, time.monotonic() + timeout)
        try:
            return side.qmp.command(name, arguments, deadline=deadline, poll=poll)
        except QMPError as e:
            if time.monotonic() >= self.deadline:
                raise CaptureError(
                    f"timed out after {self.opts.timeout_s:g} s (waiting for {name} on {role})"
                ) from e
            extra = ""
            if not side.alive():
                extra = f" ({role} QEMU exited with code {side.proc.returncode})"
                tail = side.stderr_tail()
                if tail:
                    extra += f"\n{role} stderr:\n{tail}"
            raise CaptureError(f"{e}{extra}") from e

    def query_migrate(self, role: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll ``query-migrate`` and keep the answer in the history."""
        info: dict[str, Any] = self.qmp(role, "query-migrate", poll=True, timeout=timeout)
        with self.journal.lock:
            self.journal.history.append({"t": time.time(), "side": role, "info": info})
        return info

    def stop_all(self) -> None:
        """Kill whatever QEMU of this run still runs and stop the sampler (idempotent)."""
        for side in self.sides.values():
            side.kill()
        if self.sampler is not None:
            self.sampler.stop()
