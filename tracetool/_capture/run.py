"""One run: a destination and a source QEMU, one migration, one folder of traces and sidecars.

The folder (``RunOptions.out``) gets, as the recorded scenarios have them:

* ``dst.trace`` / ``src.trace``: the log backend's output (``-D``), ``TID@SEC.USEC:name args``
  on QEMU <= 10.0 because of ``-msg timestamp=on``; with ``per_thread`` one file per thread
  instead, ``per-thread/dst.<TID>.trace`` (``-d tid``);
* ``dst-threads.json`` / ``src-threads.json``: thread names sampled every 50 ms;
* ``query-migrate.json``: the final ``query-migrate`` answer of both sides;
* ``query-migrate-history.jsonl``, ``qmp-events.jsonl``: everything QMP said;
* ``cmdline.txt``: the QEMU command lines and every QMP command sent;
* ``events.txt`` (the ``-trace events=`` list), ``qemu-version.txt``, ``run.json``;
* ``guest.bin`` (the guest kernel), ``dst-stderr.txt`` / ``src-stderr.txt`` (only when QEMU
  printed something), ``capture.log``.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracetool._capture.errors import EXIT_ENVIRONMENT, CaptureError, Interrupted
from tracetool._capture.events import scenario_events
from tracetool._capture.guest import dirty_range, guest_kernel, write_kernel
from tracetool._capture.migrate import drive_source, start_migration, wait_destination
from tracetool._capture.qemu import (
    MachineSpec,
    Side,
    qemu_command,
    start_qemu,
    version_numbers,
)
from tracetool._capture.qmp import QMPClient
from tracetool._capture.record import write_run_files
from tracetool._capture.sampler import ThreadSampler
from tracetool._capture.session import RunOptions, Session

GUEST_BOOT_LIMIT_S = 30.0


@dataclass(frozen=True)
class RunResult:
    """How one run ended."""

    label: str
    index: int
    out: Path
    ok: bool
    outcome: str
    source_status: str | None
    destination_status: str | None
    error: str | None
    error_code: int
    t_start: float
    t_end: float

    def to_json(self, root: Path) -> dict[str, Any]:
        """The run's entry in capture.json (``folder`` relative to the capture folder)."""
        return {
            "label": self.label,
            "run": self.index,
            "folder": str(self.out.relative_to(root)),
            "ok": self.ok,
            "outcome": self.outcome,
            "source_status": self.source_status,
            "destination_status": self.destination_status,
            "error": self.error,
            "t_start": self.t_start,
            "t_end": self.t_end,
        }


def _register(text: str, name: str) -> int | None:
    """One register value (hex) from HMP ``info registers`` output."""
    key = f"{name}="
    i = text.find(key)
    if i < 0:
        return None
    j = k = i + len(key)
    while k < len(text) and text[k] in "0123456789abcdefABCDEF":
        k += 1
    return int(text[j:k], 16) if k > j else None


class _Run:
    """The steps of one run, in order; ``execute`` always leaves no QEMU running."""

    def __init__(self, opts: RunOptions, on_log: Callable[[str], None] | None) -> None:
        self.s = Session(opts, on_log)
        self.kernel = guest_kernel(*dirty_range(opts.mem_mb))
        self.sock_dir: Path | None = None
        self.trace_dir = opts.out / "per-thread" if opts.per_thread else opts.out

    def prepare(self) -> None:
        """The folder (stale traces removed), the events list, the guest kernel."""
        o = self.s.opts
        self.trace_dir.mkdir(parents=True, exist_ok=True)
        for stale in [*self.trace_dir.glob("dst*.trace"), *self.trace_dir.glob("src*.trace")]:
            stale.unlink()
        self.s.log_file = (o.out / "capture.log").open("w")
        events = scenario_events(o.scenario, version_numbers(o.version_text))
        (o.out / "events.txt").write_text(events)
        write_kernel(o.out / "guest.bin", self.kernel)
        self.s.run_info["guest"] = {
            "dirty_start": hex(self.kernel.dirty_start),
            "dirty_end": hex(self.kernel.dirty_end),
        }
        self.sock_dir = Path(tempfile.mkdtemp(prefix="migtrace-qmp-"))

    def spawn(self) -> None:
        """Start the destination, then the source, then the thread sampler."""
        assert self.sock_dir is not None
        o = self.s.opts
        spec = MachineSpec(
            o.qemu, o.scenario.machine, o.accel, o.mem_mb, o.out / "guest.bin",
            o.out / "events.txt", o.per_thread, o.scenario.smp, o.scenario.devices,
        )  # fmt: skip
        for role in ("dst", "src"):
            log_path = self.trace_dir / (f"{role}.%d.trace" if o.per_thread else f"{role}.trace")
            sock = self.sock_dir / f"{role}-qmp.sock"
            cmd = qemu_command(spec, role, sock, log_path)
            stderr_path = o.out / f"{role}-stderr.txt"
            proc = start_qemu(cmd, stderr_path)
            client = QMPClient(role, sock, self.s.journal)
            self.s.sides[role] = Side(role, cmd, proc, client, stderr_path)
            self.s.run_info[f"t_{role}_spawn"] = time.time()
            self.s.run_info[f"{role}_pid"] = proc.pid
            self.s.log(f"started {role} QEMU, pid {proc.pid}")
        self.s.sampler = ThreadSampler({r: side.proc.pid for r, side in self.s.sides.items()})
        self.s.sampler.start()

    def connect(self) -> None:
        """Connect both QMP monitors; a QEMU that dies here is an environment problem."""
        for role, side in self.s.sides.items():
            try:
                side.qmp.connect(side.proc, min(self.s.deadline, time.monotonic() + 30))
            except Exception as e:
                time.sleep(0.2)
                tail = side.stderr_tail()
                raise CaptureError(
                    f"{role} QEMU did not start: {e}" + (f"\n{role} stderr:\n{tail}" if tail else ""),
                    EXIT_ENVIRONMENT,
                ) from e
        self.s.run_info["query_version"] = self.s.qmp("src", "query-version")

    def wait_guest_loop(self) -> None:
        """Wait until the source vCPU runs the dirtying loop, then ``warmup_s`` longer."""
        t0 = time.monotonic()
        last = ""
        while True:
            self.s.check_deadline("waiting for the guest to boot")
            regs = str(
                self.s.qmp("src", "human-monitor-command", {"command-line": "info registers"}, poll=True)
            )
            eip, cr0 = _register(regs, "EIP"), _register(regs, "CR0")
            last = f"EIP={eip:#x} CR0={cr0:#x}" if eip is not None and cr0 is not None else regs
            in_loop = eip is not None and self.kernel.loop_start <= eip < self.kernel.loop_end
            if in_loop and cr0 is not None and cr0 & 1:
                break
            if time.monotonic() - t0 > GUEST_BOOT_LIMIT_S:
                raise CaptureError(
                    f"the guest did not reach its dirtying loop in {GUEST_BOOT_LIMIT_S:g} s ({last})"
                )
            time.sleep(0.05)
        self.s.log(f"guest runs its loop ({last}) after {time.monotonic() - t0:.2f} s")
        time.sleep(self.s.opts.warmup_s)

    def finish(self) -> None:
        """Let the destination guest run a moment, query the run states, quit both."""
        s = self.s
        if s.final.get("destination", {}).get("status") == "completed":
            time.sleep(0.5)  # the guest runs on the destination now
        for role, side in s.sides.items():
            if side.alive():
                with contextlib.suppress(CaptureError):
                    s.run_info[f"{role}_query_status"] = s.qmp(role, "query-status", timeout=10)
        for role, side in s.sides.items():
            if side.alive():
                with contextlib.suppress(CaptureError):
                    s.qmp(role, "quit", timeout=10)
        for role, side in s.sides.items():
            try:
                side.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                s.log(f"{role} QEMU did not quit; killing it")
                side.kill()
            s.run_info[f"{role}_exit_code"] = side.proc.returncode
            side.qmp.drain_events()
            side.qmp.close()

    def check_traces(self) -> None:
        """Both sides left trace output."""
        for role in self.s.sides:
            pattern = f"{role}.*.trace" if self.s.opts.per_thread else f"{role}.trace"
            files = list(self.trace_dir.glob(pattern))
            if not files or all(f.stat().st_size == 0 for f in files):
                raise CaptureError(f"{role} QEMU wrote no trace output in {self.trace_dir}")

    def execute(self) -> RunResult:
        """Every step; the files are written whatever happens, and no QEMU is left running."""
        s, o = self.s, self.s.opts
        t_start = time.time()
        s.run_info.update({"scenario": o.scenario.name, "t_start": t_start})
        outcome, ok, error, code = "error", False, None, 0
        src_status = dst_status = None
        try:
            self.prepare()
            self.spawn()
            self.connect()
            self.wait_guest_loop()
            start_migration(s)
            src_status = drive_source(s)
            dst_status = wait_destination(s, src_status)
            ok = o.scenario.succeeded(src_status, dst_status)
            outcome = src_status if ok else f"{src_status}/{dst_status}"
            self.finish()
            self.check_traces()
            if not ok:
                error = (
                    f"migration ended source={src_status} destination={dst_status}, expected "
                    f"{o.scenario.expected()}"
                )
                code = 1
        except CaptureError as e:
            ok, error, code = False, str(e), e.code
            if outcome == "error" and code != EXIT_ENVIRONMENT:
                outcome = "failed"
        except (KeyboardInterrupt, Interrupted):
            outcome = "interrupted"
            s.log("interrupted: stopping both QEMUs")
            raise
        finally:
            s.stop_all()
            for side in s.sides.values():  # QEMU said nothing: no empty file in the run folder
                if side.stderr_path.exists() and side.stderr_path.stat().st_size == 0:
                    side.stderr_path.unlink()
            if s.sides:
                try:
                    write_run_files(s, outcome)
                except OSError as e:
                    s.log(f"could not write the run's files: {e}")
            if error:
                s.log(f"error: {error}")
            if s.log_file is not None:
                s.log_file.close()
            if self.sock_dir is not None:
                shutil.rmtree(self.sock_dir, ignore_errors=True)
        return RunResult(
            o.label, o.index, o.out, ok, outcome, src_status, dst_status, error, code,
            t_start, time.time(),
        )  # fmt: skip


def run_once(opts: RunOptions, on_log: Callable[[str], None] | None = None) -> RunResult:
    """Capture one migration into ``opts.out``; SIGINT/SIGTERM propagate after cleanup."""
    return _Run(opts, on_log).execute()
