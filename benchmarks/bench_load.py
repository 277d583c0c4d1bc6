"""Loading speed and memory: ``tracetool.load`` + the ``events`` DataFrame vs ``wc -l``.

Generates (or reuses) a large synthetic log-backend trace with the event mix of a BQL-tracing
run (benchmarks/synth.py), then in the same run times ``wc -l`` on it (best of N) and, in a
fresh child process each time, ``tracetool.load(file)`` followed by materialising
``trace.events`` (best of N). Peak RSS is the child's maximum resident set size.

Targets: load time <= 17x the ``wc -l`` time, peak RSS <= 1.5x the file size.

    python benchmarks/bench_load.py [--lines 10000000] [--file PATH] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import run_child, time_wc, trace_file  # noqa: E402

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import tracetool
t1 = time.perf_counter()
trace = tracetool.load(sys.argv[1], engine=sys.argv[2] if len(sys.argv) > 2 else None)
events = trace.events
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "events": len(events),
                  "lines": int(trace.inputs["lines"].sum())}))
"""


def run_load(path: str, engine: str | None) -> tuple[dict[str, float], int]:
    """Loads in a fresh interpreter; returns its timings and its peak RSS in bytes."""
    return run_child(_CHILD, path, *([engine] if engine else []))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=10_000_000)
    ap.add_argument("--file", help="use this trace instead of generating one")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--engine", choices=["compiled", "python"], default=None)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    a = ap.parse_args()

    with trace_file(a.file, a.lines, "synth") as path:
        return _measure(path, a.repeat, a.engine, a.json)


def _measure(path: str, repeat: int, engine: str | None, as_json: bool) -> int:
    size = os.path.getsize(path)
    wc = time_wc(path, repeat)
    best: dict[str, float] | None = None
    rss = 0
    for _ in range(repeat):
        res, rss = run_load(path, engine)
        if best is None or res["load_s"] < best["load_s"]:
            best = res
    assert best is not None
    wc = min(wc, time_wc(path, repeat))  # the machine is shared: take the baseline twice
    result = {
        "file_bytes": size,
        "lines": best["lines"],
        "events": best["events"],
        "wc_l_s": round(wc, 4),
        "load_s": round(best["load_s"], 3),
        "import_s": round(best["import_s"], 3),
        "ratio_vs_wc_l": round(best["load_s"] / wc, 2),
        "lines_per_s": round(best["lines"] / best["load_s"]),
        "peak_rss_bytes": rss,
        "rss_over_file": round(rss / size, 3),
        "targets": {"ratio_vs_wc_l": 17, "rss_over_file": 1.5},
    }
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(f"file            {size / 1e6:.0f} MB, {result['lines']:,} lines")
        print(f"wc -l           {wc:.3f} s")
        print(f"load + events   {best['load_s']:.3f} s  ({result['lines_per_s']:,} lines/s)")
        print(f"ratio           {result['ratio_vs_wc_l']}x wc -l   (target <= 17x)")
        print(f"peak RSS        {rss / 1e6:.0f} MB = {result['rss_over_file']}x file (target <= 1.5x)")
    ok = result["ratio_vs_wc_l"] <= 17 and result["rss_over_file"] <= 1.5
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
