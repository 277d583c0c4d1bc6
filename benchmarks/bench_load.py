"""Loading speed and memory: ``tracetool.load`` + the ``events`` DataFrame vs ``wc -l``.

Generates (or reuses) large synthetic log-backend traces (benchmarks/synth.py), one per mix:
``bql`` (the event mix of a BQL-tracing run, argument texts repeat) and ``distinct-args`` (the
same mutex traffic with one line in eight carrying an argument text no other line has, as
RAM-load and page-request traces do). For each, in the same run, it times ``wc -l`` on the file
(best of N) and, in a fresh child process each time, ``tracetool.load(file)`` followed by
materialising ``trace.events`` (best of N). Peak RSS is the child's maximum resident set size.

Targets: load time <= 17x the ``wc -l`` time, peak RSS <= 1.5x the file size, for every mix.

    python benchmarks/bench_load.py [--lines 5000000] [--mix bql --mix distinct-args]
        [--file PATH] [--repeat 3] [--engine compiled|python] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import run_child, time_wc, trace_file  # noqa: E402
from synth import MIXES  # noqa: E402

TARGET_RATIO = 17
TARGET_RSS = 1.5

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
    ap.add_argument("--lines", type=int, default=5_000_000)
    ap.add_argument(
        "--mix",
        action="append",
        choices=MIXES,
        help="synthetic mix to measure (repeatable; default: every mix)",
    )
    ap.add_argument("--file", help="use this trace instead of generating one")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--engine", choices=["compiled", "python"], default=None)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    a = ap.parse_args()

    results = []
    for mix in [None] if a.file else (a.mix or list(MIXES)):
        with trace_file(a.file, a.lines, f"synth-{mix}", mix or "bql") as path:
            results.append(_measure(path, mix or os.path.basename(path), a.repeat, a.engine))
    if a.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            _print(r)
    return 0 if all(r["ok"] for r in results) else 1


def _measure(path: str, label: str, repeat: int, engine: str | None) -> dict[str, Any]:
    size = os.path.getsize(path)
    wc = time_wc(path, repeat)
    best: dict[str, float] | None = None
    rss = 0
    times = []
    for _ in range(repeat):
        res, child_rss = run_load(path, engine)
        rss = max(rss, child_rss)
        times.append(res["load_s"])
        if best is None or res["load_s"] < best["load_s"]:
            best = res
    assert best is not None
    wc = min(wc, time_wc(path, repeat))  # the machine is shared: take the baseline twice
    result: dict[str, Any] = {
        "mix": label,
        "file_bytes": size,
        "lines": best["lines"],
        "events": best["events"],
        "wc_l_s": round(wc, 4),
        "load_s": round(best["load_s"], 3),
        "load_median_s": round(statistics.median(times), 3),
        "import_s": round(best["import_s"], 3),
        "ratio_vs_wc_l": round(best["load_s"] / wc, 2),
        "lines_per_s": round(best["lines"] / best["load_s"]),
        "peak_rss_bytes": rss,
        "rss_over_file": round(rss / size, 3),
        "targets": {"ratio_vs_wc_l": TARGET_RATIO, "rss_over_file": TARGET_RSS},
    }
    result["ok"] = result["ratio_vs_wc_l"] <= TARGET_RATIO and result["rss_over_file"] <= TARGET_RSS
    return result


def _print(r: dict[str, Any]) -> None:
    print(f"[{r['mix']}]")
    print(f"  file            {r['file_bytes'] / 1e6:.0f} MB, {r['lines']:,} lines")
    print(f"  wc -l           {r['wc_l_s']:.3f} s")
    print(
        f"  load + events   {r['load_s']:.3f} s  ({r['lines_per_s']:,} lines/s; best of the runs, "
        f"median {r['load_median_s']:.3f} s)"
    )
    print(f"  ratio           {r['ratio_vs_wc_l']}x wc -l   (target <= {TARGET_RATIO}x)")
    print(
        f"  peak RSS        {r['peak_rss_bytes'] / 1e6:.0f} MB = {r['rss_over_file']}x file "
        f"(target <= {TARGET_RSS}x)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
