"""How long ``migtrace`` takes to answer beyond the interpreter's own start-up.

Each command runs in a fresh interpreter ``--repeat`` times, interleaved with the baseline
(``python -c pass``) so that a busy moment hits both; the median of each is reported, and the
difference is what migtrace itself costs (imports, reading, rendering). The commands run with
their bytecode compiled (into a temporary cache, even where PYTHONDONTWRITEBYTECODE is set), as
an installed migtrace has it: compiling every module again on each run would add 0.1 s that no
user pays.

    python benchmarks/bench_startup.py [--repeat 9] [SAMPLE]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import child_env

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = REPO / "scripts" / "migtrace"
DEFAULT_SAMPLE = REPO / "sample_traces" / "qemu-7.2" / "a-precopy-plain" / "dst.trace.xz"
TARGET_S = 0.5


def _seconds(argv: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sample", nargs="?", default=str(DEFAULT_SAMPLE), help="a small trace")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "migtrace --help": [sys.executable, str(LAUNCHER), "--help"],
        "migtrace --version": [sys.executable, str(LAUNCHER), "--version"],
        f"migtrace summary {Path(args.sample).name}": [sys.executable, str(LAUNCHER), "summary", args.sample],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    env = child_env()
    for argv in commands.values():  # warm the page cache and the bytecode
        _seconds(argv, env)
    for _ in range(args.repeat):
        for name, argv in commands.items():
            times[name].append(_seconds(argv, env))
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<40} {'median':>8} {'beyond python':>14} {'target':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        extra = median - base
        verdict = "" if name.startswith("python") else ("ok" if extra <= TARGET_S else "missed")
        print(f"{name:<40} {median:>7.3f}s {extra:>13.3f}s {verdict:>8}")


if __name__ == "__main__":
    main()
