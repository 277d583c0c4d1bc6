"""Benchmark of the simple-backend reader against baselines measured in the same run.

The input is a large simple-backend file with a BQL-tracing mix (mostly ``qemu_mutex_*``
records with a file-name string, ``ram_load_loop`` with unique addresses, section events):
``benchmarks/synth.py`` writes a log trace, ``benchmarks/make_simple.py`` turns it into simple
records and repeats it (with shifted timestamps) up to ``--records``. Generation runs in a
child process so its memory does not count.

Measured, all in this process, on the same file:
- ``read``: reading the file's bytes in 8 MiB blocks, nothing else (the floor);
- ``python-walk``: a plain Python ``struct`` loop over the records (header fields of each record,
  nothing kept) on the first ``--baseline-records`` records: an upper bound for QEMU's
  ``scripts/simpletrace.py``, which does more per record (about 80 k records/s reported);
- ``migtrace``: ``parsers.simple.read_simple_file`` (compiled walk) on the whole file, giving a
  Segment with every column and the interned payload table;
- ``migtrace-python``: the same reader with the pure-Python walk, on a prefix copy;
- ``load``: ``tracetool.load`` (reader + time sort + thread table), for reference.
Ratios are records/s relative to ``python-walk``; peak RSS is the process's maximum.

    python benchmarks/bench_simple.py [--records 20000000] [--file PATH] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(path: str, records: int, source_lines: int, seed: int) -> None:
    """Writes the benchmark file in a child process (synth log -> simple records)."""
    code = f"""
import sys
sys.path.insert(0, {HERE!r})
import math, os, tempfile
import synth, make_simple
import tracetool
tmp = tempfile.mkdtemp()
log = os.path.join(tmp, "synth.trace")
synth.generate(log, {source_lines}, era="iso", seed={seed})
trace = tracetool.load(log)
rec = make_simple.records_from_trace(trace, pid=4242)
repeat = max(1, math.ceil({records} / len(rec)))
with open({path!r}, "wb") as f:
    n = make_simple.write_records(rec, f, make_simple.WriteOptions(repeat=repeat))
os.unlink(log)
os.rmdir(tmp)
print(n)
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def bench_read(path: str) -> dict[str, float]:
    """Seconds to read the file's bytes, nothing else."""
    buf = bytearray(8 << 20)
    t0 = time.perf_counter()
    total = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            total += n
    return {"seconds": time.perf_counter() - t0, "bytes": total}


def bench_python_walk(path: str, limit: int) -> dict[str, float]:
    """A plain struct-based walk over the first ``limit`` records (fields unpacked, not kept)."""
    with open(path, "rb") as f:
        data = f.read(min(os.path.getsize(path), limit * 200 + (1 << 20)))
    t0 = time.perf_counter()
    p = 0
    n = 0
    unpack_type = struct.Struct("<Q").unpack_from
    unpack_event = struct.Struct("<QQII").unpack_from
    unpack_map = struct.Struct("<QI").unpack_from
    end = len(data)
    while p + 32 <= end and n < limit:
        (rtype,) = unpack_type(data, p)
        if rtype == 1:
            _eid, _ts, length, _pid = unpack_event(data, p + 8)
            if p + 8 + length > end:
                break
            p += 8 + length
            n += 1
        elif rtype == 0:
            _eid, nlen = unpack_map(data, p + 8)
            p += 20 + nlen
        else:
            p += 24
    return {"seconds": time.perf_counter() - t0, "records": n}


def _context() -> Any:
    from parsers.registry import ReadContext
    from tracetool._events.catalog import Catalog

    cat = Catalog.builtin()
    return ReadContext(
        is_known_event=cat.is_known,
        arg_types=lambda name: [[a.ctype for a in v.args] for v in cat.variants(name)],
        options={"catalog": cat},
    )


def bench_reader(path: str, engine: str) -> dict[str, float]:
    """The simple reader on ``path`` with the given walk engine."""
    from parsers.simple import read_simple_file

    ctx = _context()
    ctx.options["simple_engine"] = engine
    t0 = time.perf_counter()
    seg = read_simple_file(path, ctx)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "records": seg.events,
        "distinct_payloads": len(seg.args),
        "warnings": len(seg.warnings),
    }


def prefix_copy(path: str, records: int, out: str) -> None:
    """The header, mappings and first ``records`` event records of ``path``, as a new file."""
    with open(path, "rb") as f:
        data = f.read(records * 200 + (1 << 20))
    p = n = 0
    while p + 32 <= len(data) and n < records:
        (rtype,) = struct.unpack_from("<Q", data, p)
        if rtype == 1:
            p += 8 + struct.unpack_from("<I", data, p + 24)[0]
            n += 1
        elif rtype == 0:
            p += 20 + struct.unpack_from("<I", data, p + 16)[0]
        else:
            p += 24
    with open(out, "wb") as f:
        f.write(data[:p])


def bench_load(path: str) -> dict[str, float]:
    import tracetool

    t0 = time.perf_counter()
    trace = tracetool.load(path)
    return {"seconds": time.perf_counter() - t0, "records": len(trace)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=20_000_000)
    ap.add_argument("--source-lines", type=int, default=2_000_000)
    ap.add_argument("--baseline-records", type=int, default=2_000_000)
    ap.add_argument("--file", help="use (or create) this simple file instead of a temporary one")
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    ap.add_argument("--no-load", action="store_true", help="skip the full tracetool.load")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    sys.path.insert(0, os.path.dirname(HERE))
    from parsers.simple_walk import walker_engine

    tmpdir = tempfile.mkdtemp(prefix="bench-simple-")
    path = args.file or os.path.join(tmpdir, "bench.simple")
    if not os.path.exists(path):
        t0 = time.perf_counter()
        generate(path, args.records, args.source_lines, args.seed)
        sys.stderr.write(f"generated {path} in {time.perf_counter() - t0:.1f} s\n")
    size = os.path.getsize(path)
    rss0 = _rss_mb()
    results: dict[str, Any] = {"file": path, "bytes": size, "engine": walker_engine()}
    results["read"] = bench_read(path)
    results["python-walk"] = bench_python_walk(path, args.baseline_records)
    results["migtrace"] = bench_reader(path, "compiled" if walker_engine() == "compiled" else "python")
    results["rss_after_reader_mb"] = _rss_mb()
    prefix = os.path.join(tmpdir, "prefix.simple")
    prefix_copy(path, args.baseline_records, prefix)
    results["migtrace-python"] = bench_reader(prefix, "python")
    os.unlink(prefix)
    if not args.no_load:
        results["load"] = bench_load(path)
    results["rss_start_mb"] = rss0
    results["rss_peak_mb"] = _rss_mb()

    base = results["python-walk"]["records"] / results["python-walk"]["seconds"]
    rows = []
    for key in ("python-walk", "migtrace", "migtrace-python", "load"):
        if key not in results:
            continue
        r = results[key]
        rate = r["records"] / r["seconds"]
        r["records_per_s"] = rate
        r["ratio_vs_python_walk"] = rate / base
        rows.append((key, r["records"], r["seconds"], rate, rate / base))
    read_s = results["read"]["seconds"]
    results["read"]["mb_per_s"] = size / read_s / 1e6
    results["migtrace"]["ratio_vs_read_time"] = results["migtrace"]["seconds"] / read_s
    if not args.file and not args.keep:
        os.unlink(path)
        os.rmdir(tmpdir)
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
        return 0
    print(
        f"file: {size / 1e6:.0f} MB, {results['migtrace']['records']:,} records, "
        f"{results['migtrace']['distinct_payloads']:,} distinct payloads; "
        f"walk engine: {results['engine']}"
    )
    print(f"read bytes only: {read_s:.2f} s ({results['read']['mb_per_s']:.0f} MB/s)")
    print(f"{'what':<16}{'records':>13}{'seconds':>10}{'records/s':>14}{'x python-walk':>15}")
    for key, n, s, rate, ratio in rows:
        print(f"{key:<16}{n:>13,}{s:>10.2f}{rate:>14,.0f}{ratio:>15.1f}")
    print(f"migtrace reader time / read time: {results['migtrace']['ratio_vs_read_time']:.2f}")
    print(
        f"peak RSS: {results['rss_after_reader_mb']:.0f} MB after the reader "
        f"(file {size / 1e6:.0f} MB; started at {rss0:.0f} MB), "
        f"{results['rss_peak_mb']:.0f} MB after load"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
