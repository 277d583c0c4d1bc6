"""QEMU binaries and processes: finding one, its version and label, command lines, one side."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tracetool._capture.errors import EXIT_ENVIRONMENT, CaptureError
from tracetool._capture.qmp import QMPClient

INSTALL_HINT = "on Debian/Ubuntu: apt-get install -y --no-install-recommends qemu-system-x86"
DEFAULT_QEMU = "qemu-system-x86_64"
_VERSION = re.compile(r"version\s+(\d+)\.(\d+)(?:\.(\d+))?")
_LABEL_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def find_qemu(name: str) -> str:
    """Resolve ``--qemu`` (a path or a name on PATH) to an executable; CaptureError (exit 2)."""
    if os.sep in name:
        if not os.path.isfile(name) or not os.access(name, os.X_OK):
            raise CaptureError(f"QEMU {name!r} is not an executable file", EXIT_ENVIRONMENT)
        return os.path.abspath(name)
    path = shutil.which(name)
    if path is None:
        raise CaptureError(
            f"QEMU not found: {name!r} is not an executable on PATH; {INSTALL_HINT}",
            EXIT_ENVIRONMENT,
        )
    return path


def qemu_version(qemu: str) -> str:
    """``qemu --version`` output; CaptureError (exit 2) if it cannot run."""
    try:
        out = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError as e:
        raise CaptureError(f"cannot run {qemu}: {e}", EXIT_ENVIRONMENT) from e
    except subprocess.TimeoutExpired as e:
        raise CaptureError(f"{qemu} --version did not answer", EXIT_ENVIRONMENT) from e
    if out.returncode != 0:
        raise CaptureError(
            f"{qemu} --version failed ({out.returncode}): {out.stderr.strip()}", EXIT_ENVIRONMENT
        )
    return out.stdout.strip()


def version_numbers(version_text: str) -> tuple[int, int, int] | None:
    """(major, minor, micro) from ``--version`` output, or None if it names no version."""
    m = _VERSION.search(version_text)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def version_label(version_text: str) -> str:
    """The default label of a build: ``qemu-7.2.22`` from its ``--version`` output."""
    numbers = version_numbers(version_text)
    return "qemu-" + ".".join(map(str, numbers)) if numbers else "qemu"


def check_label(label: str) -> str:
    """A label becomes a folder name: letters, digits and ``._+-`` only."""
    if not _LABEL_OK.match(label) or label in {".", ".."}:
        raise CaptureError(
            f"--label {label!r}: use letters, digits, '.', '_', '+' and '-' (it names the build's folder)",
            EXIT_ENVIRONMENT,
        )
    return label


def check_kvm() -> None:
    """CaptureError (exit 2) unless /dev/kvm can be opened for reading and writing."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        raise CaptureError(f"--accel kvm: cannot open /dev/kvm: {e.strerror}", EXIT_ENVIRONMENT) from e
    os.close(fd)


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class MachineSpec:
    """What is the same on both sides: the machine, accelerator, guest RAM and kernel, vCPUs and
    devices (QEMU arguments given as they are, after the fixed ones)."""

    qemu: str
    machine: str
    accel: str
    mem_mb: int
    kernel: Path
    events_file: Path
    per_thread: bool
    smp: int = 1
    devices: tuple[str, ...] = ()


def qemu_command(spec: MachineSpec, role: str, qmp_sock: Path, log_path: Path) -> list[str]:
    """The command line of one side (``role`` ``dst`` listens with ``-incoming defer``)."""
    cmd = [
        spec.qemu,
        "-msg", "timestamp=on",
        "-name", f"{role},debug-threads=on",
        "-machine", spec.machine,
        "-accel", spec.accel,
        "-cpu", "qemu64",
        "-smp", str(spec.smp),
        "-m", str(spec.mem_mb),
        "-nic", "none",
        "-display", "none",
        "-monitor", "none",
        "-serial", "none",
        "-parallel", "none",
        "-kernel", str(spec.kernel),
        "-qmp", f"unix:{qmp_sock},server=on,wait=off",
    ]  # fmt: skip
    cmd += spec.devices
    if spec.per_thread:
        cmd += ["-d", "tid"]
    cmd += ["-D", str(log_path), "-trace", f"events={spec.events_file}"]
    if role == "dst":
        cmd += ["-incoming", "defer"]
    return cmd


def _parent_death_signal() -> Callable[[], None]:
    """A pre-exec hook that asks Linux to SIGKILL the child when the capture dies first.

    libc is looked up here, in the parent, so the child only makes the one call.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda: None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)

    return hook


_PDEATHSIG_HOOK = _parent_death_signal()


@dataclass
class Side:
    """One running QEMU with its QMP client."""

    role: str
    cmd: list[str]
    proc: subprocess.Popen[bytes]
    qmp: QMPClient
    stderr_path: Path

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def stderr_tail(self, lines: int = 15) -> str:
        """The last lines QEMU wrote to stderr, for error messages."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def kill(self) -> None:
        """Kill the process if it still runs, and reap it."""
        self.qmp.close()
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


def start_qemu(cmd: list[str], stderr_path: Path) -> subprocess.Popen[bytes]:
    """Start one QEMU, its output to ``stderr_path``; it dies with the capture process."""
    with stderr_path.open("wb") as err:
        try:
            return subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                preexec_fn=_PDEATHSIG_HOOK,
                # its own process group: Ctrl-C on a terminal reaches the capture only,
                # which then stops both QEMUs itself
                process_group=0,
            )
        except OSError as e:
            raise CaptureError(f"cannot start {cmd[0]}: {e}", EXIT_ENVIRONMENT) from e
