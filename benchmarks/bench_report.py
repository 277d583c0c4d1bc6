"""What a user writes out of a large trace, as they run it, against ``wc -l`` on the same file.

In a fresh process each time: ``migtrace report FILE -o report.html`` (every analysis, the
figures drawn and embedded) and ``migtrace export FILE --to perfetto -o trace.json`` (every
span, BQL hold and wait as a Trace Event Format event), on a synthetic log trace of the
BQL-tracing mix (``benchmarks/synth.py``: hundreds of thousands of BQL holds) or on ``--file``.
For each, the best and the median of ``--repeat`` runs with their ratio to the best ``wc -l`` of
the same run, the size of what was written, and the peak RSS of its process against the file.

    python benchmarks/bench_report.py [--lines 5000000] [--file PATH] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import child_env, time_wc, trace_file  # noqa: E402

LAUNCHER = HERE.parent / "scripts" / "migtrace"


COMMANDS = {
    "report": ["report", "{trace}", "-o", "{out}.html"],
    "perfetto": ["export", "{trace}", "--to", "perfetto", "-o", "{out}.json"],
}


def run_command(argv: list[str]) -> tuple[float, int]:
    """Seconds for one ``migtrace`` command in a fresh process, and that process's peak RSS."""
    t = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, str(LAUNCHER), *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=child_env(),
    )
    _, status, usage = os.wait4(child.pid, 0)  # the rusage of this child alone
    elapsed = time.perf_counter() - t
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"migtrace {' '.join(argv)}: exit {child.returncode}")
    return elapsed, usage.ru_maxrss * 1024


def measure(path: str, repeat: int) -> dict[str, Any]:
    size = os.path.getsize(path)
    wc = time_wc(path, repeat)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="migtrace-bench-report-") as tmp:
        for what, template in COMMANDS.items():
            out = os.path.join(tmp, what)
            argv = [a.format(trace=path, out=out) for a in template]
            results = [run_command(argv) for _ in range(repeat)]
            times = [t for t, _ in results]
            runs[what] = {
                "best_s": round(min(times), 3),
                "median_s": round(statistics.median(times), 3),
                "written_bytes": os.path.getsize(argv[-1]),
                "peak_rss_bytes": max(rss for _, rss in results),
            }
    wc = min(wc, time_wc(path, repeat))
    for r in runs.values():
        r["ratio"] = round(r["best_s"] / wc, 1)
        r["rss_over_file"] = round(r["peak_rss_bytes"] / size, 3)
    return {"file_bytes": size, "wc_l_s": round(wc, 4), **runs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=5_000_000)
    ap.add_argument("--file", help="report on this trace instead of a generated one")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    a = ap.parse_args()
    with trace_file(a.file, a.lines, "synth-report") as path:
        r = measure(path, a.repeat)
    if a.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"file         {r['file_bytes'] / 1e6:.0f} MB; wc -l {r['wc_l_s']:.3f} s")
    for what in COMMANDS:
        m = r[what]
        print(
            f"{what:12s} {m['best_s']:.2f} s = {m['ratio']}x wc -l (best of the runs, median "
            f"{m['median_s']:.2f} s); wrote {m['written_bytes'] / 2**20:.1f} MiB; peak RSS "
            f"{m['peak_rss_bytes'] / 1e6:.0f} MB = {m['rss_over_file']}x file"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
