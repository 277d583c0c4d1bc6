"""Reading speed of the ftrace and LTTng text readers on one and on two cores, vs ``wc -l``.

The inputs are the real captures in sample_traces/ (tracefs ftrace text with TGIDs and task
events, babeltrace2 text of LTTng-UST events), repeated with their timestamps shifted until
``--lines`` lines, written to a temporary plain file. For each, in the same run: ``wc -l`` on
the file (best of N), then in a fresh child process each time ``tracetool.load(file)`` plus the
``events`` DataFrame with ``MIGTRACE_SCAN_THREADS=1`` and with ``=2`` (best of N each).

    python benchmarks/bench_text.py [--lines 3000000] [--repeat 3] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from common import run_child, time_wc  # noqa: E402

SOURCES = {
    "ftrace": REPO / "sample_traces/qemu-threadify-ftrace/a-precopy-mutex/ftrace.txt.xz",
    "lttng": REPO / "sample_traces/qemu-threadify-lttng/a-precopy-mutex/lttng-babeltrace2.txt.xz",
}

_CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
import tracetool
t1 = time.perf_counter()
trace = tracetool.load(sys.argv[1])
events = trace.events
t2 = time.perf_counter()
print(json.dumps({"load_s": t2 - t1, "events": len(events),
                  "lines": int(trace.inputs["lines"].sum())}))
"""

_FTRACE_TIME = re.compile(rb"(\] [^ ]* +)(\d+)\.(\d{6}):")
_LTTNG_TIME = re.compile(rb"^\[(\d\d):(\d\d):(\d\d)\.(\d{9})\]")


def _shift_ftrace(line: bytes, shift_ns: int) -> bytes:
    def repl(m: re.Match[bytes]) -> bytes:
        us = int(m.group(2)) * 1_000_000 + int(m.group(3)) + shift_ns // 1000
        return m.group(1) + f"{us // 1_000_000}.{us % 1_000_000:06d}:".encode()

    return _FTRACE_TIME.sub(repl, line, count=1)


def _shift_lttng(line: bytes, shift_ns: int) -> bytes:
    def repl(m: re.Match[bytes]) -> bytes:
        h, mi, s, ns = (int(x) for x in m.groups())
        t = ((h * 60 + mi) * 60 + s) * 10**9 + ns + shift_ns
        t %= 86_400 * 10**9
        return (
            f"[{t // 3_600_000_000_000:02d}:{t // 60_000_000_000 % 60:02d}:"
            f"{t // 10**9 % 60:02d}.{t % 10**9:09d}]"
        ).encode()

    return _LTTNG_TIME.sub(repl, line, count=1)


def _lines(source: Path) -> list[bytes]:
    with lzma.open(source) as f:
        return f.read().split(b"\n")[:-1]


def _repeated(
    lines: list[bytes], total: int, shift: Callable[[bytes, int], bytes], keep_header: bool
) -> Iterator[bytes]:
    """``lines`` over and over (headers once), each copy 20 s later, ``total`` lines in all."""
    body = [ln for ln in lines if not ln.startswith(b"#")] if keep_header else lines
    head = [ln for ln in lines if ln.startswith(b"#")] if keep_header else []
    yield from head
    n, copy = len(head), 0
    while n < total:
        for ln in body[: total - n]:
            yield shift(ln, copy * 20_000_000_000) if copy else ln
        n += min(len(body), total - n)
        copy += 1


def generate(kind: str, path: str, total: int) -> None:
    """Writes ``total`` lines of ``kind`` (``ftrace`` or ``lttng``) text to ``path``."""
    lines = _lines(SOURCES[kind])
    shift = _shift_ftrace if kind == "ftrace" else _shift_lttng
    with open(path, "wb") as out:
        buf: list[bytes] = []
        for ln in _repeated(lines, total, shift, keep_header=kind == "ftrace"):
            buf.append(ln)
            if len(buf) >= 100_000:
                out.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            out.write(b"\n".join(buf) + b"\n")


def measure(path: str, repeat: int) -> dict[str, Any]:
    """wc -l, and load + events with one and with two scan threads (fresh child each run)."""
    wc = time_wc(path, repeat)
    result: dict[str, Any] = {"file_bytes": os.path.getsize(path)}
    for threads in ("1", "2"):
        os.environ["MIGTRACE_SCAN_THREADS"] = threads
        runs = [run_child(_CHILD, path)[0] for _ in range(repeat)]
        best = min(runs, key=lambda r: r["load_s"])
        result[f"threads_{threads}"] = best
    os.environ.pop("MIGTRACE_SCAN_THREADS", None)
    wc = min(wc, time_wc(path, repeat))  # the machine is shared: take the baseline twice
    result["wc_l_s"] = wc
    result["lines"] = result["threads_1"]["lines"]
    for threads in ("1", "2"):
        result[f"ratio_threads_{threads}"] = round(result[f"threads_{threads}"]["load_s"] / wc, 2)
    result["speedup_2_over_1"] = round(result["threads_1"]["load_s"] / result["threads_2"]["load_s"], 2)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=3_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", help="write the generated files to this directory and keep them")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tmp = a.keep or tempfile.mkdtemp(prefix="migtrace-bench-text-")
    os.makedirs(tmp, exist_ok=True)
    results = {}
    try:
        for kind in SOURCES:
            path = os.path.join(tmp, f"{kind}-{a.lines}.txt")
            if not os.path.exists(path):
                generate(kind, path, a.lines)
            results[kind] = measure(path, a.repeat)
            if not a.keep:
                os.unlink(path)
    finally:
        if not a.keep:
            os.rmdir(tmp)
    if a.json:
        print(json.dumps(results, indent=2))
        return 0
    for kind, r in results.items():
        print(f"[{kind}] {r['file_bytes'] / 1e6:.0f} MB, {r['lines']:,} lines; wc -l {r['wc_l_s']:.3f} s")
        for threads in ("1", "2"):
            t = r[f"threads_{threads}"]
            print(
                f"  {threads} scan thread(s): load + events {t['load_s']:.2f} s = "
                f"{r[f'ratio_threads_{threads}']}x wc -l"
            )
        print(f"  two threads are {r['speedup_2_over_1']}x as fast as one")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
