"""Comparing repeated runs: time against ``wc -l`` of every trace compared, and memory that
does not grow with the number of runs.

    python benchmarks/bench_compare_runs.py [--before RUN] [--after RUN] [--runs 6] [--repeat 2]

RUN is one run folder per side (default: the shipped mutex samples, QEMU 7.2 and the threaded
load). Both are decompressed into a temporary folder so that ``wc -l`` and migtrace read the
same bytes, then laid out as a build folder of ``--runs`` run folders each (copies of the one
run). ``migtrace compare`` runs in a fresh interpreter once with one run per side and once with
``--runs`` per side; the time is divided by ``wc -l`` over every trace file the comparison reads
(in the same benchmark run), and the peak RSS with ``--runs`` per side by the peak with one run
per side: bounded memory keeps that ratio near 1.
"""

from __future__ import annotations

import argparse
import gzip
import lzma
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import run_child

SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"
DEFAULT_BEFORE = SAMPLES / "qemu-7.2" / "e-precopy-mutex"
DEFAULT_AFTER = SAMPLES / "qemu-threadify" / "e-precopy-mutex" / "per-thread"
TARGET_RSS_GROWTH = 1.25

CHILD = """
import json, sys, time
from tracetool._check.repeats import compare_runs
t = time.perf_counter()
cmp = compare_runs([sys.argv[1]], [sys.argv[2]])
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "metrics": len(cmp.metrics),
                  "runs": len(cmp.before.runs) + len(cmp.after.runs)}))
"""


def plain_run(src: Path, dst: Path) -> list[Path]:
    """The run's files in ``dst``, traces decompressed; returns the trace files."""
    dst.mkdir(parents=True)
    traces = []
    for f in sorted(src.iterdir()):
        if not f.is_file():
            continue
        opener = {".xz": lzma.open, ".gz": gzip.open}.get(f.suffix)
        if opener is None:
            shutil.copy(f, dst / f.name)
            continue
        out = dst / f.name[: -len(f.suffix)]
        with opener(f, "rb") as a, open(out, "wb") as b:
            shutil.copyfileobj(a, b, 1 << 20)
        traces.append(out)
    return traces


def build_folder(run: Path, root: Path, runs: int) -> Path:
    """A build folder of ``runs`` run folders, each a link to the same run."""
    root.mkdir(parents=True)
    for k in range(1, runs + 1):
        (root / f"run-{k}").symlink_to(run, target_is_directory=True)
    return root


def time_wc(files: list[Path], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(["wc", "-l", *map(str, files)], check=True, capture_output=True)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, default=DEFAULT_BEFORE)
    ap.add_argument("--after", type=Path, default=DEFAULT_AFTER)
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="migtrace-bench-runs-"))
    try:
        b_traces = plain_run(args.before, tmp / "plain" / "before")
        a_traces = plain_run(args.after, tmp / "plain" / "after")
        one = [build_folder(tmp / "plain" / s, tmp / "one" / s, 1) for s in ("before", "after")]
        many = [build_folder(tmp / "plain" / s, tmp / "many" / s, args.runs) for s in ("before", "after")]
        wc_one = time_wc(b_traces + a_traces, args.repeat)
        results = {}
        for name, (b, a) in (("one", one), ("many", many)):
            best = None
            for _ in range(args.repeat):
                out, rss = run_child(CHILD, str(b), str(a))
                if best is None or out["seconds"] < best[0]["seconds"]:
                    best = (out, rss)
            assert best is not None
            results[name] = best
        (one_out, one_rss), (many_out, many_rss) = results["one"], results["many"]
        wc_many = wc_one * args.runs
        size = sum(f.stat().st_size for f in b_traces + a_traces)
        print(f"one run a side: {size / 1e6:.0f} MB of traces, {one_out['metrics']} metrics")
        print(f"wc -l, one run a side        {wc_one:.3f} s")
        print(
            f"compare, 1 + 1 runs          {one_out['seconds']:.2f} s = "
            f"{one_out['seconds'] / wc_one:.0f}x wc -l, "
            f"peak RSS {one_rss / 1e6:.0f} MB"
        )
        print(
            f"compare, {args.runs} + {args.runs} runs          {many_out['seconds']:.2f} s = "
            f"{many_out['seconds'] / wc_many:.0f}x wc -l, peak RSS {many_rss / 1e6:.0f} MB"
        )
        growth = many_rss / one_rss
        print(f"peak RSS {args.runs} runs / 1 run      {growth:.2f} (target <= {TARGET_RSS_GROWTH})")
        return 0 if growth <= TARGET_RSS_GROWTH else 1
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    raise SystemExit(main())
