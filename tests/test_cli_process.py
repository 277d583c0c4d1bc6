"""The migtrace command as a process: start-up, Ctrl-C, a shadowing 'tracetool' package."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLES

LAUNCHER = REPO / "scripts" / "migtrace"
BIG = SAMPLES / "qemu-threadify-lttng/a-precopy-mutex/lttng-babeltrace2.txt.xz"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MIGTRACE_DEBUG", "PYTHONPATH")}
    env.update(extra)
    return env


def test_a_shadowing_tracetool_package_is_named_in_one_line(tmp_path: Path) -> None:
    """QEMU's scripts/ has a package called tracetool too; with it first on the path (here:
    PYTHONPATH without site-packages), the command says so instead of a traceback."""
    fake = tmp_path / "qemu" / "scripts" / "tracetool"
    (fake / "backend").mkdir(parents=True)
    (fake / "__init__.py").write_text('"""QEMU trace-events code generator."""\n')
    (fake / "backend" / "__init__.py").write_text("")
    run = subprocess.run(
        [sys.executable, "-S", str(LAUNCHER), "--version"],
        capture_output=True,
        text=True,
        env=_env(PYTHONPATH=str(fake.parent)),
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert str(fake / "__init__.py") in run.stderr and "PYTHONPATH" in run.stderr


def _loaded(pid: int, library: str) -> bool:
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _report(out: Path) -> list[str]:
    return [sys.executable, str(LAUNCHER), "report", str(BIG), "-o", str(out)]


@pytest.fixture(scope="module")
def report_seconds(tmp_path_factory: pytest.TempPathFactory) -> float:
    """How long the whole command takes on this machine: the moments the test interrupts it
    are fractions of that, so that a faster machine does not see it end first."""
    started = time.monotonic()
    subprocess.run(
        _report(tmp_path_factory.mktemp("whole") / "report.html"),
        check=True,
        capture_output=True,
        env=_env(),
        timeout=300,
    )
    return time.monotonic() - started


@pytest.mark.slow
@pytest.mark.parametrize("when", ["importing numpy", "importing pandas", "reading", "analysing"])
def test_ctrl_c_at_any_moment_exits_130_quietly(tmp_path: Path, when: str, report_seconds: float) -> None:
    """From the moment migtrace's own code runs (the interpreter's start-up is Python's):
    while the libraries load (the issue's traceback came from 'import pandas'), while the
    trace is read, while it is analysed."""
    out = tmp_path / "report.html"
    proc = subprocess.Popen(
        _report(out),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        # as from an interactive shell: a test run started in the background has SIGINT
        # ignored, and the command would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    marker = {"importing numpy": "numpy", "importing pandas": "pandas"}.get(when)
    deadline = time.monotonic() + 60
    while marker and not _loaded(proc.pid, marker) and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep({"reading": 0.25, "analysing": 0.7}.get(when, 0.0) * report_seconds)
    assert proc.poll() is None, "the command ended before the interrupt"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert "Traceback" not in stderr, stderr
    assert proc.returncode == 130, (proc.returncode, stderr)
    assert stderr.strip() == "migtrace: interrupted"
    assert not out.exists() and not list(tmp_path.iterdir())  # nothing half-written


_INTERRUPT_WHILE_LAUNCHING = """
import os, runpy, signal, sys

class Interrupt:
    # Ctrl-C at the moment the script imports migtrace's launcher, before it handles SIGINT.
    def find_spec(self, name, path=None, target=None):
        if name == "tracetool.cli.launch":
            os.kill(os.getpid(), signal.SIGINT)
        return None

signal.signal(signal.SIGINT, signal.default_int_handler)
sys.meta_path.insert(0, Interrupt())
sys.argv = [sys.argv[1], "--version"]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_ctrl_c_while_the_script_imports_the_launcher_exits_130_quietly() -> None:
    """The moment before migtrace's own SIGINT handler is in place: the script says the same."""
    run = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_WHILE_LAUNCHING, str(LAUNCHER)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert run.stderr == "migtrace: interrupted\n" and run.returncode == 130, (run.returncode, run.stderr)
