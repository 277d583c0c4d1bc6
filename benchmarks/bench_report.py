"""The whole HTML report of a large trace, as a user runs it, against ``wc -l`` on the same file.

``migtrace report FILE -o report.html`` in a fresh process each time (every analysis, the
figures drawn and embedded), on a synthetic log trace of the BQL-tracing mix
(``benchmarks/synth.py``: hundreds of thousands of BQL holds, which the figures draw) or on
``--file``. The best and the median of ``--repeat`` runs are printed with their ratio to the
best ``wc -l`` of the same run, and the peak RSS of the report's process against the file size.

    python benchmarks/bench_report.py [--lines 5000000] [--file PATH] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def run_report(path: str, out: str) -> tuple[float, int]:
    """Seconds for one ``migtrace report`` to HTML, and the peak RSS of the largest child so far."""
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, str(LAUNCHER), "report", path, "-o", out],
        check=True,
        capture_output=True,
        env=child_env(),
    )
    elapsed = time.perf_counter() - t
    return elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def measure(path: str, repeat: int) -> dict[str, Any]:
    size = os.path.getsize(path)
    wc = time_wc(path, repeat)
    times = []
    rss = 0
    with tempfile.TemporaryDirectory(prefix="migtrace-bench-report-") as tmp:
        out = os.path.join(tmp, "report.html")
        for _ in range(repeat):
            elapsed, rss = run_report(path, out)
            times.append(elapsed)
        html_bytes = os.path.getsize(out)
    wc = min(wc, time_wc(path, repeat))
    best = min(times)
    return {
        "file_bytes": size,
        "wc_l_s": round(wc, 4),
        "report_s": round(best, 3),
        "report_median_s": round(statistics.median(times), 3),
        "ratio": round(best / wc, 1),
        "html_bytes": html_bytes,
        "peak_rss_bytes": rss,
        "rss_over_file": round(rss / size, 3),
    }


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
    print(
        f"report       {r['report_s']:.2f} s = {r['ratio']}x wc -l (best of the runs, "
        f"median {r['report_median_s']:.2f} s); HTML {r['html_bytes'] / 1024:.0f} KiB"
    )
    print(f"peak RSS     {r['peak_rss_bytes'] / 1e6:.0f} MB = {r['rss_over_file']}x file")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
