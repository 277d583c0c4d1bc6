"""What every benchmark shares: the baseline, a fresh interpreter per run, a synthetic input."""

from __future__ import annotations

import atexit
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def time_wc(path: str, repeat: int) -> float:
    """Best of ``repeat`` runs of ``wc -l`` on ``path`` (the baseline every ratio divides by)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(["wc", "-l", path], check=True, capture_output=True)
        best = min(best, time.perf_counter() - t)
    return best


_BYTECODE = tempfile.mkdtemp(prefix="migtrace-bench-bytecode-")
atexit.register(shutil.rmtree, _BYTECODE, ignore_errors=True)


def child_env() -> dict[str, str]:
    """The environment measured children run in: their modules' bytecode is cached (in a
    temporary directory, even where PYTHONDONTWRITEBYTECODE is set), as an installed migtrace
    has it. Compiling every module again in each child would add a cost no user pays.

    numpy keeps its own default (transparent huge pages), as a notebook has it; the ``migtrace``
    command runs it on small pages (tracetool.cli.launch): NUMPY_MADVISE_HUGEPAGE=0 measures
    that."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = _BYTECODE
    return env


def run_child(code: str, *args: str) -> tuple[dict[str, float], int]:
    """Runs ``code`` in a fresh interpreter; returns the JSON it prints and the peak RSS (bytes).

    ``ru_maxrss`` of children is the largest child waited for so far; the measured child is by
    far the largest process a benchmark starts. The first child fills the bytecode cache
    (``child_env``): benchmarks keep the best of several runs.
    """
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True, env=child_env()
    )
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return json.loads(out.stdout), rss


@contextmanager
def trace_file(path: str | None, lines: int, name: str, mix: str = "bql") -> Iterator[str]:
    """``path`` itself, or a synthetic log trace of ``lines`` lines (``synth.py`` mix ``mix``)
    removed afterwards."""
    if path is not None:
        yield path
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from synth import generate

    tmpdir = tempfile.mkdtemp(prefix="migtrace-bench-")
    out = os.path.join(tmpdir, f"{name}-{lines}.trace")
    try:
        t = time.perf_counter()
        generate(out, lines, mix=mix)
        print(f"generated {out} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        yield out
    finally:
        Path(out).unlink(missing_ok=True)
        os.rmdir(tmpdir)
