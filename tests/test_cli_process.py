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


def _interrupted(out: Path, when: str, delay: float) -> tuple[int, str] | None:
    """Runs `migtrace report` and sends SIGINT at ``when`` (a library loading) or ``delay``
    seconds in; (exit code, stderr), or None when the command ended first."""
    proc = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "report", str(BIG), "-o", str(out)],
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
    time.sleep(delay)
    if proc.poll() is not None:
        proc.communicate()
        return None
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    return proc.returncode, stderr


@pytest.mark.slow
@pytest.mark.parametrize("when", ["importing numpy", "importing pandas", "reading", "analysing"])
def test_ctrl_c_at_any_moment_exits_130_quietly(tmp_path: Path, when: str) -> None:
    """From the moment migtrace's own code runs (the interpreter's start-up is Python's):
    while the libraries load (the issue's traceback came from 'import pandas'), while the
    trace is read, while it is analysed (1 s and 3 s into a ~4 s command; half as long again
    on a machine fast enough to finish first)."""
    delay = {"reading": 1.0, "analysing": 3.0}.get(when, 0.0)
    for attempt in range(4):
        folder = tmp_path / f"attempt-{attempt}"
        folder.mkdir()
        got = _interrupted(folder / "report.html", when, delay / 2**attempt)
        if got is not None:
            break
    else:
        pytest.fail("the command ended before every interrupt")
    code, stderr = got
    assert "Traceback" not in stderr, stderr
    assert code == 130, (code, stderr)
    assert stderr.strip() == "migtrace: interrupted"
    assert not list(folder.iterdir())  # nothing half-written


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
