"""The compiled line scanner alone, on one thread, against ``wc -l`` on the same file.

What the log reader's hot loop costs per line, without the trace model, the second lane or new
memory for the result (each block's rows are taken and dropped): the figure to watch when
``parsers/_scan.c`` changes. ``--against`` names another build of the scanner (a copy of
``parsers/_scan*.so`` made before a change); the two builds then scan in turns in this one
process, so both see the same machine.

    python benchmarks/bench_scan.py [--lines 5000000] [--mix bql|distinct-args]... [--file PATH]
                                    [--repeat 7] [--against OTHER.so] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import mmap
import os
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import time_wc, trace_file  # noqa: E402
from synth import MIXES  # noqa: E402

from parsers.io import CHUNK_BYTES  # noqa: E402


def load_build(path: str) -> ModuleType:
    """A build of ``parsers._scan`` from the shared library at ``path``."""
    spec = importlib.util.spec_from_file_location("parsers._scan", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a loadable build of parsers._scan")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scan_once(build: ModuleType, path: str) -> tuple[float, int]:
    """Seconds to scan ``path`` in the reader's blocks on one thread, and the rows found."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        whole = memoryview(mapped)
        scanner = build.Scanner()
        size, pos, rows = len(mapped), 0, 0
        t = time.perf_counter()
        while pos < size:
            stop = min(pos + CHUNK_BYTES, size)
            if stop < size:
                stop = mapped.rfind(b"\n", pos, stop) + 1 or size
            with whole[pos:stop] as block:
                rows += scanner.scan(block, -1, stop == size)
            scanner.take_rows()
            pos = stop
        elapsed = time.perf_counter() - t
        whole.release()
    return elapsed, rows


def measure(path: str, builds: dict[str, ModuleType], repeat: int) -> dict[str, Any]:
    size = os.path.getsize(path)
    wc = time_wc(path, repeat)
    times: dict[str, list[float]] = {name: [] for name in builds}
    rows = 0
    for _ in range(repeat):
        for name, build in builds.items():
            elapsed, rows = scan_once(build, path)
            times[name].append(elapsed)
    wc = min(wc, time_wc(path, repeat))
    out: dict[str, Any] = {"file": os.path.basename(path), "bytes": size, "rows": rows}
    out["wc_l_s"] = round(wc, 4)
    for name, ts in times.items():
        best = min(ts)
        out[name] = {
            "best_s": round(best, 3),
            "median_s": round(statistics.median(ts), 3),
            "mb_per_s": round(size / best / 1e6),
            "ratio": round(best / wc, 2),
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=5_000_000)
    ap.add_argument("--mix", action="append", choices=MIXES, help="synthetic mix (repeatable; default: all)")
    ap.add_argument("--file", help="scan this trace instead of generating one")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--against", help="another build of parsers/_scan*.so to scan in turns with this one")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args()
    import parsers._scan as current

    builds = {"this build": current}
    if a.against:
        builds["--against"] = load_build(a.against)
    results = []
    for mix in [None] if a.file else (a.mix or list(MIXES)):
        with trace_file(a.file, a.lines, f"synth-{mix}", mix or "bql") as path:
            results.append({"mix": mix or "file", **measure(path, builds, a.repeat)})
    if a.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(f"[{r['mix']}] {r['bytes'] / 1e6:.0f} MB, {r['rows']:,} lines; wc -l {r['wc_l_s']:.3f} s")
        for name in builds:
            m = r[name]
            print(
                f"  {name:11s} best {m['best_s']:.3f} s ({m['mb_per_s']} MB/s, {m['ratio']}x wc -l), "
                f"median {m['median_s']:.3f} s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
