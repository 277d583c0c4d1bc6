"""Batch scale-out: how the time of measuring many runs goes from 1 to 2 workers.

Lays out ``--runs`` run folders (default 100) in a temporary folder as symlinks to the real
run folders of sample_traces/ and /work/shared/traces/repeats/ (when present), taken in turn,
then for each scheduler measures them all with ``tracetool.measure_runs`` with 1 worker and
with 2 workers, in this one run. The figure is the ratio t1/t2 per scheduler (2.0 would be
perfect scaling; a 2-core machine shared with other work gives less), plus each time per run.

    python benchmarks/bench_batch.py [--runs 100] [--schedulers processes,local]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

REPEATS = Path("/work/shared/traces/repeats")


def source_runs() -> list[Path]:
    """The real run folders to repeat: every scenario of sample_traces/ and the repeated runs."""
    from tracetool._model.runfolder import runs_in

    found: list[Path] = []
    for group in sorted((REPO / "sample_traces").iterdir()):
        if group.is_dir():
            found += [Path(r.path) for s in sorted(group.iterdir()) if s.is_dir() for r in runs_in(str(s))]
    if REPEATS.is_dir():
        for build in sorted(REPEATS.iterdir()):
            if build.is_dir():
                found += [Path(r.path) for r in runs_in(str(build))]
    return found


def lay_out(folder: Path, sources: list[Path], n: int) -> list[str]:
    """``n`` symlinks run-0001.. to the sources in turn."""
    runs = []
    for i in range(n):
        link = folder / f"run-{i + 1:04d}"
        link.symlink_to(sources[i % len(sources)], target_is_directory=True)
        runs.append(str(link))
    return runs


def main() -> int:
    """Runs the benchmark and prints one JSON line per scheduler, then a summary table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--schedulers", default="processes,local")
    args = parser.parse_args()
    import tracetool

    sources = source_runs()
    print(f"{len(sources)} real run folders, repeated to {args.runs} runs", file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory(prefix="migtrace-bench-batch-") as tmp:
        runs = lay_out(Path(tmp), sources, args.runs)
        for scheduler in args.schedulers.split(","):
            times = {}
            for workers in (1, 2):
                t = time.perf_counter()
                result = tracetool.measure_runs(runs, scheduler=scheduler, workers=workers)
                times[workers] = time.perf_counter() - t
                failed = len(result.failed)
                print(
                    f"{scheduler}: {workers} worker(s): {times[workers]:.1f} s, {result.measured} measured, "
                    f"{failed} failed, {len(result.table)} rows",
                    file=sys.stderr,
                )
            row = {
                "scheduler": scheduler,
                "runs": args.runs,
                "t1_s": round(times[1], 1),
                "t2_s": round(times[2], 1),
                "ratio_t1_t2": round(times[1] / times[2], 2),
                "s_per_run_1": round(times[1] / args.runs, 2),
                "cpus": os.cpu_count(),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    print("| scheduler | runs | 1 worker | 2 workers | t1/t2 |")
    print("|---|--:|--:|--:|--:|")
    for r in results:
        print(f"| {r['scheduler']} | {r['runs']} | {r['t1_s']} s | {r['t2_s']} s | {r['ratio_t1_t2']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
