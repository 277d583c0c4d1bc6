"""Timeline, phases and preempt analysis speed, as ratios to ``wc -l`` on the same file.

    python benchmarks/timeline.py [TRACE ...] [--lines 2000000] [--repeat 3]

Without TRACE a synthetic trace (benchmarks/synth.py: mutex noise, RAM pages, sections) of
``--lines`` lines is generated in a temporary directory. Compressed inputs are decompressed
first so that ``wc -l`` and migtrace read the same bytes. Each step runs ``--repeat`` times,
every time on a freshly loaded Trace (so no cached argument decoding or timeline helps), and
the best time is kept.
"""

from __future__ import annotations

import argparse
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tracetool
from benchmarks.synth import generate
from tracetool._analyses.phases import analyze_phases
from tracetool._analyses.preempt import analyze_preempt
from tracetool._timeline.builder import build_timeline


def plain_copy(path: str, tmp: str, index: int) -> str:
    if not path.endswith(".xz"):
        return path
    out = os.path.join(tmp, f"{index}-{os.path.basename(path)[:-3]}")
    with lzma.open(path) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return out


def measure(path: str, repeat: int) -> None:
    """Best of ``repeat`` runs of each step, every run on a freshly loaded Trace (no caches)."""
    steps: dict[str, list[float]] = {
        k: [] for k in ("wc -l", "load", "build_timeline", "analyze_phases", "analyze_preempt")
    }
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(["wc", "-l", path], check=True, capture_output=True)
        t1 = time.perf_counter()
        trace = tracetool.load(path)
        t2 = time.perf_counter()
        tl = build_timeline(trace)
        t3 = time.perf_counter()
        analyze_phases(trace)
        t4 = time.perf_counter()
        analyze_preempt(trace)
        t5 = time.perf_counter()
        for key, t in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            steps[key].append(t)
    wc = min(steps["wc -l"])
    n = len(trace)
    print(f"{os.path.basename(path)}: {n} events, {len(tl.spans)} spans, {len(tl.instants)} instants")
    for name, runs in steps.items():
        t = min(runs)
        ratio = "(baseline)" if name == "wc -l" else f"{t / wc:7.1f} x wc -l  {n / t / 1e6:6.2f} M events/s"
        print(f"  {name:16} {t * 1000:9.1f} ms  {ratio}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("traces", nargs="*")
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="migtrace-bench-") as tmp:
        paths = [plain_copy(p, tmp, i) for i, p in enumerate(a.traces)]
        if not paths:
            synth = os.path.join(tmp, "synth.trace")
            generate(synth, a.lines)
            paths = [synth]
        for p in paths:
            measure(p, a.repeat)


if __name__ == "__main__":
    main()
