#!/usr/bin/env python3
"""One-command developer setup for migtrace (standard library only).

    python3 scripts/dev.py demo          # set up .venv, run migtrace on the shipped samples
    python3 scripts/dev.py test [ARGS]   # set up .venv, run ruff, mypy, the import contract and
                                         # pytest (ARGS -> pytest)
    python3 scripts/dev.py setup         # only set up .venv

Setup creates ``.venv`` in the repository root when it is missing or stale and installs
``pip install -e '.[test]'`` into it.  It works on a bare Debian/Ubuntu that has python3
but not the python3-venv package: then the venv is made ``--without-pip`` and pip is
bootstrapped with get-pip.py.  A stamp file keyed on pyproject.toml, setup.py, the compiled
readers' sources, the Python version and the repository path makes a re-run that changed
nothing take a moment.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

# ---------------------------------------------------------------------------------------
# What `demo` runs, in order (run from the repository root with .venv/bin first on PATH).
# ---------------------------------------------------------------------------------------
_TFY = "sample_traces/qemu-threadify/e-precopy-mutex/per-thread"
_Q72 = "sample_traces/qemu-7.2/e-precopy-mutex"
DEMO_COMMANDS: list[list[str]] = [
    # What is in a threaded-load trace (one file per thread) and a QEMU 7.2 trace.
    [
        "migtrace",
        "summary",
        _TFY,
        "--threads",
        f"{_TFY}/dst-threads.json",
        "--threads",
        f"{_TFY}/src-threads.json",
    ],
    ["migtrace", "summary", f"{_Q72}/dst.trace.xz", "--threads", f"{_Q72}/dst-threads.json"],
    # The incoming phases and per-device loads, and who held the BQL.
    [
        "migtrace",
        "phases",
        f"{_TFY}/dst.*.trace.xz",
        "--threads",
        f"{_TFY}/dst-threads.json",
        "--query-migrate",
        f"{_TFY}/query-migrate.json",
    ],
    ["migtrace", "bql", f"{_TFY}/dst.*.trace.xz", "--threads", f"{_TFY}/dst-threads.json", "--top", "5"],
    # The coroutine load on QEMU 7.2 against the threaded load.
    [
        "migtrace",
        "compare",
        f"{_Q72}/dst.trace.xz",
        "--before-threads",
        f"{_Q72}/dst-threads.json",
        "--before-label",
        "QEMU 7.2",
        "--",
        f"{_TFY}/dst.*.trace.xz",
        "--after-threads",
        f"{_TFY}/dst-threads.json",
        "--after-label",
        "threadify",
    ],
    # Everything in one self-contained HTML page.
    [
        "migtrace",
        "report",
        f"{_TFY}/dst.*.trace.xz",
        "--threads",
        f"{_TFY}/dst-threads.json",
        "-o",
        "migtrace-demo-report.html",
    ],
]


# What `test` runs, in order; extra command-line arguments go to pytest.
CHECK_COMMANDS: list[list[str]] = [
    ["ruff", "check", "."],
    ["ruff", "format", "--check", "."],
    ["mypy"],
    ["lint-imports"],  # the import contract in pyproject.toml: parsers -> core -> reports -> CLI
    ["pytest"],
]

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv"
STAMP = VENV / ".migtrace-setup-stamp"
STAMP_INPUTS = ("pyproject.toml", "setup.py", "parsers/_scan.c", "parsers/_simple.c", "parsers/_common.h")
GET_PIP_URL = os.environ.get("MIGTRACE_GET_PIP_URL", "https://bootstrap.pypa.io/get-pip.py")
MIN_PYTHON = (3, 11)

EXIT_SETUP = 2


class SetupError(Exception):
    """Setup cannot go on; the message says what to do."""


def step(msg: str) -> None:
    """Print one progress line."""
    print(f"==> {msg}", flush=True)


def venv_python() -> Path:
    """The venv's interpreter."""
    return VENV / "bin" / "python"


def run(
    cmd: Sequence[str | Path],
    *,
    quiet: bool = False,
    env: dict[str, str] | None = None,
    show_failure: bool = True,
) -> int:
    """Run a command from the repository root; return its exit code.

    With ``quiet`` the output is kept back and shown only if the command fails (and
    ``show_failure`` is set).
    """
    args = [str(c) for c in cmd]
    try:
        if quiet:
            out = subprocess.run(
                args, cwd=REPO, env=env, check=False, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )  # fmt: skip
            if out.returncode != 0 and out.stdout and show_failure:
                print(out.stdout.rstrip(), file=sys.stderr)
            return out.returncode
        return subprocess.run(args, cwd=REPO, env=env, check=False).returncode
    except OSError as e:
        print(f"    cannot run {args[0]}: {e}", file=sys.stderr)
        return 127


def stamp_key() -> str:
    """Hash of everything that decides whether the installed venv is still right."""
    h = hashlib.sha256()
    h.update(f"python {sys.version_info.major}.{sys.version_info.minor}\n".encode())
    h.update(f"repo {REPO}\n".encode())
    for name in STAMP_INPUTS:
        p = REPO / name
        h.update(f"{name}\n".encode())
        h.update(p.read_bytes() if p.exists() else b"<missing>")
    return h.hexdigest()


def venv_works() -> bool:
    """True when .venv has a Python of the same minor version as this one, with pip."""
    py = venv_python()
    if not py.exists():
        return False
    want = f"{sys.version_info.major}.{sys.version_info.minor}"
    check = "import sys, pip; print('%d.%d' % sys.version_info[:2])"
    try:
        out = subprocess.run([str(py), "-c", check], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == want


def apt_hint() -> str:
    """What to install on Debian/Ubuntu so that venvs with pip can be made."""
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    return (
        "install the venv support of this Python, then run this again:\n"
        f"    apt-get install python3-venv      (or: apt-get install python{ver}-venv)"
    )


def create_venv() -> None:
    """Create .venv with pip, falling back to --without-pip plus get-pip.py."""
    if VENV.exists():
        shutil.rmtree(VENV)
    step(f"creating .venv ({sys.executable} -m venv)")
    made = run([sys.executable, "-m", "venv", VENV], quiet=True, show_failure=False) == 0
    if made and venv_works():
        return
    step("that failed (no ensurepip: Debian without python3-venv?); trying --without-pip")
    if VENV.exists():
        shutil.rmtree(VENV)
    if run([sys.executable, "-m", "venv", "--without-pip", VENV], quiet=True) != 0:
        raise SetupError(f"cannot create a virtual environment; {apt_hint()}")
    get_pip = VENV / "get-pip.py"
    step(f"downloading {GET_PIP_URL}")
    try:
        with urllib.request.urlopen(GET_PIP_URL, timeout=60) as resp:
            get_pip.write_bytes(resp.read())
    except (OSError, ValueError) as e:
        shutil.rmtree(VENV, ignore_errors=True)
        raise SetupError(f"cannot download get-pip.py ({e}); {apt_hint()}") from e
    step("installing pip into .venv (get-pip.py)")
    if run([venv_python(), get_pip, "--quiet"], quiet=True) != 0 or not venv_works():
        shutil.rmtree(VENV, ignore_errors=True)
        raise SetupError(f"get-pip.py did not install pip; {apt_hint()}")
    get_pip.unlink(missing_ok=True)


def setup() -> None:
    """Make .venv exist, work, and hold the current editable install with test extras."""
    if sys.version_info < MIN_PYTHON:
        need = ".".join(map(str, MIN_PYTHON))
        raise SetupError(
            f"migtrace needs Python >= {need}; this is {sys.version.split()[0]} "
            f"({sys.executable}). Run this script with a newer python3 (e.g. python{need})."
        )
    key = stamp_key()
    fresh = venv_works()
    if fresh and STAMP.exists() and STAMP.read_text().strip() == key:
        step(".venv is up to date")
        return
    if not fresh:
        create_venv()
    step("installing migtrace into .venv: pip install -e '.[test]'")
    STAMP.unlink(missing_ok=True)
    t0 = time.monotonic()
    cmd: list[str | Path] = [venv_python(), "-m", "pip", "install", "--quiet", "-e", ".[test]"]
    if run(cmd) != 0:
        raise SetupError("pip install -e '.[test]' failed (see the messages above)")
    STAMP.write_text(key + "\n")
    step(f"installed in {time.monotonic() - t0:.0f} s")


def venv_env() -> dict[str, str]:
    """The environment with .venv activated."""
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(VENV)
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONHOME", None)
    return env


def venv_tool(cmd: list[str]) -> list[str]:
    """A command with its program taken from .venv/bin."""
    return [str(VENV / "bin" / cmd[0]), *cmd[1:]]


def demo() -> int:
    """Run every demo command; stop at the first failure."""
    env = venv_env()
    for cmd in DEMO_COMMANDS:
        step(" ".join(cmd))
        code = run(venv_tool(cmd), env=env)
        if code != 0:
            print(f"demo command failed with exit code {code}", file=sys.stderr)
            return code
    return 0


def pytest_workers() -> list[str]:
    """pytest-xdist options: one worker per core, at most four (each holds its samples in
    memory); a test module's tests stay on one worker so its samples load once. Arguments given
    to ``test`` come after these, so ``-n 0`` runs everything in one process."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(cores, 4)
    return ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else []


def test(pytest_args: list[str]) -> int:
    """Run ruff, mypy and pytest (all of them); non-zero if any failed."""
    env = venv_env()
    results: list[tuple[str, int]] = []
    for cmd in CHECK_COMMANDS:
        full = cmd + pytest_workers() + pytest_args if cmd[0] == "pytest" else cmd
        step(" ".join(full))
        results.append((" ".join(full), run(venv_tool(full), env=env)))
    failed = [(c, code) for c, code in results if code != 0]
    for c, code in results:
        print(f"    {'ok    ' if code == 0 else f'FAILED ({code})'}  {c}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        description="Set up .venv for migtrace and run its demo or its checks.",
        epilog="Arguments after 'test' that this script does not know are passed to pytest "
        "(use '--' to pass options that look like this script's own).",
    )
    parser.add_argument("command", choices=["setup", "demo", "test"])
    args, extra = parser.parse_known_args(argv)
    if extra and extra[0] == "--":
        extra = extra[1:]
    if extra and args.command != "test":
        parser.error(f"unexpected arguments for {args.command}: {' '.join(extra)}")
    try:
        setup()
    except SetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_SETUP
    if args.command == "demo":
        return demo()
    if args.command == "test":
        return test(extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
