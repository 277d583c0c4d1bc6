"""Scanning text traces on several cores: blocks of lines go round-robin to scanner lanes.

Each lane is one compiled Scanner (which releases the GIL while it scans) on its own thread.
Blocks are read into a small ring of reused buffers, so reading and decompressing overlap with
scanning and no memory is allocated per block. A lane copies each block's rows straight into
the file's result columns, in file order, and keeps its own row memory for the next block, so
every row is written once where it stays. At the end the other lanes' interned tables are
absorbed into the first lane's and their codes remapped, so every table stays free of
duplicates and the result holds what one scanner reading the whole input would give. Every
grammar of the scanner (``scan`` for log lines, ``scan_ftrace``, ``scan_lttng``) runs this way.
"""

from __future__ import annotations

import io
import mmap
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa

from parsers.io import CHUNK_BYTES, InputError, open_input
from parsers.registry import Progress
from parsers.segment import StringTable

KIND_OTHER = 1
ROW_DTYPES: dict[str, type] = {
    "kind": np.uint8,
    "era": np.uint8,
    "flags": np.uint8,
    "ts": np.int64,
    "tid": np.int32,
    "tname": np.int32,
    "name": np.int32,
    "args": np.int32,
}
EXT_ROW_DTYPES: dict[str, type] = {**ROW_DTYPES, "pid": np.int32, "cpu": np.int32}
"""The ftrace and LTTng grammars also fill a pid and a CPU column."""
TABLES = ("names", "args", "threads", "others")
PER_BODY_ARGS = ("scan_lttng",)
"""Grammars whose argument ids are (event, text) pairs: their tables are joined, not merged."""


@dataclass
class ScannedFile:
    """Row columns of one file (one row per physical line) and a read error, if any."""

    cols: dict[str, np.ndarray]
    read_error: str | None


@dataclass
class ScanResult:
    """Every file's rows plus the merged interned tables their codes index."""

    files: list[ScannedFile]
    tables: dict[str, StringTable]


def default_lanes() -> int:
    """Two lanes where two cores are free to use, else one."""
    env = os.environ.get("MIGTRACE_SCAN_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return 2 if cores >= 2 else 1


def _as_table(exported: tuple[int, object, object]) -> StringTable:
    count, offsets, data = exported
    arr = pa.Array.from_buffers(pa.large_string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return StringTable(arr)


def _table(scanner: object, which: str) -> StringTable:
    return _as_table(scanner.table(which))  # type: ignore[attr-defined]


def _row_dtypes(method: str) -> dict[str, type]:
    return ROW_DTYPES if method == "scan" else EXT_ROW_DTYPES


class _RowSink:
    """One file's row columns, filled block after block in file order by the lanes.

    The columns are allocated once for the rows the file is expected to hold (estimated from
    its size and the first block); pages past the last row are never touched, so the margin
    costs address space, not memory. Which rows came from which lane is kept for the remap.
    """

    COMPRESSED_RATIO: ClassVar[dict[str, int]] = {"gzip": 12, "zstd": 25, "bz2": 30, "xz": 40}
    """Expected bytes of text per byte of a compressed file, by compression (QEMU trace text
    at the levels people use). Guessing high costs address space only; guessing low costs a
    copy of every column when they grow."""

    def __init__(self, dtypes: dict[str, type]) -> None:
        self.dtypes = dtypes
        self.cols: dict[str, np.ndarray] = {k: np.empty(0, dtype=dt) for k, dt in dtypes.items()}
        self.rows = 0
        self.blocks = 0  # handed to the lanes so far
        self.expected_bytes: int | None = None
        self.lane_rows: list[tuple[int, int, int]] = []  # (lane, first row, end row), lanes >= 1

    def expect(self, size: int | None, compression: str) -> None:
        """The size of the input on disk, when known, and its compression ("none", "xz"...)."""
        ratio = 1 if compression == "none" else self.COMPRESSED_RATIO.get(compression, 10)
        self.expected_bytes = None if size is None else size * ratio

    def reserve(self, rows: int, block_bytes: int) -> int:
        """Room for ``rows`` more rows; returns the row where they go."""
        at = self.rows
        cap = len(self.cols["kind"])
        if at + rows > cap:
            guess = 0
            if self.expected_bytes and block_bytes and rows:
                guess = int(self.expected_bytes * rows / block_bytes * 1.25) + 4096
            self._grow(max(guess, 2 * cap, at + rows))
        self.rows = at + rows
        return at

    def _grow(self, cap: int) -> None:
        for k, old in self.cols.items():
            new = np.empty(cap, dtype=old.dtype)
            new[: self.rows] = old[: self.rows]
            self.cols[k] = new

    def result(self) -> dict[str, np.ndarray]:
        return {k: v[: self.rows] for k, v in self.cols.items()}


class _Lane:
    def __init__(self, make_scanner: Callable[[], object], method: str, number: int) -> None:
        self.scanner = make_scanner()
        self.method = method
        self.number = number
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="migtrace-scan")

    def submit(
        self, block: memoryview, default_tid: int, final: bool, before: Future[None] | None, sink: _RowSink
    ) -> Future[None]:
        return self.pool.submit(self._scan, block, default_tid, final, before, sink)

    def _scan(
        self, block: memoryview, default_tid: int, final: bool, before: Future[None] | None, sink: _RowSink
    ) -> None:
        if self.method == "scan":
            rows = self.scanner.scan(block, default_tid, final)  # type: ignore[attr-defined]
        else:
            rows = getattr(self.scanner, self.method)(block, final)
        if before is not None:
            before.result()  # the rows of the blocks before this one are in place
        at = sink.reserve(rows, len(block))
        copied = self.scanner.copy_rows(sink.cols, at)  # type: ignore[attr-defined]
        if copied != rows:
            raise RuntimeError(f"scanner returned {copied} rows for a block of {rows}")
        if self.number and rows:
            sink.lane_rows.append((self.number, at, at + rows))


def _read_blocks(
    path: str,
    ring: list[bytearray],
    pending: list[Future[object] | None],
    on_block: Callable[[int, memoryview, bool], Future[object]],
    progress: Progress | None = None,
    on_open: Callable[[int | None, str], None] | None = None,
) -> str | None:
    """Reads ``path`` into the ring of buffers, handing each block of whole lines to ``on_block``.

    A buffer is reused only after the scan of its previous block finished. Returns a read error
    (corrupt or truncated compressed data) after the blocks before it were handed over.
    """
    opened = open_input(path)
    stream = opened.stream
    if on_open is not None:
        on_open(opened.size, opened.compression)
    if progress is not None:
        progress.start(path, opened.size)
    if opened.compression == "none" and opened.size and path != "-":
        try:
            mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError, io.UnsupportedOperation):
            mapped = None
        if mapped is not None:
            stream.close()
            _map_blocks(mapped, on_block, progress, len(pending))
            return None
    lines = 0
    slot = 0
    carry = b""
    error = None
    try:
        while True:
            fut = pending[slot]
            if fut is not None:
                fut.result()
                pending[slot] = None
            buf = ring[slot]
            need = len(carry) + CHUNK_BYTES
            if len(buf) < need:  # a new buffer: growing one would build and copy the zeros
                buf = ring[slot] = bytearray(need)
            buf[: len(carry)] = carry
            with memoryview(buf) as view:
                try:
                    n = stream.readinto(view[len(carry) : len(carry) + CHUNK_BYTES])  # type: ignore[attr-defined]
                except (InputError, OSError, EOFError, ValueError) as exc:
                    error = f"{path}: corrupt or truncated compressed data: " + str(exc).removeprefix(
                        "corrupt or truncated compressed data: "
                    )
                    n = 0
            end = len(carry) + (n or 0)
            if not n:
                if end:
                    pending[slot] = on_block(slot, memoryview(buf)[:end], True)
                return error
            cut = buf.rfind(b"\n", len(carry), end)
            if cut < 0:
                carry = bytes(buf[:end])
                continue
            carry = bytes(buf[cut + 1 : end])
            if progress is not None:
                lines += buf.count(b"\n", 0, cut + 1)
                progress.advance(opened.consumed(), lines)
            pending[slot] = on_block(slot, memoryview(buf)[: cut + 1], False)
            slot = (slot + 1) % len(ring)
    finally:
        stream.close()


def _map_blocks(
    mapped: mmap.mmap,
    on_block: Callable[[int, memoryview, bool], Future[object]],
    progress: Progress | None,
    in_flight: int,
) -> None:
    """Hands a plain file's blocks to the scanners straight from the page cache (no copy).

    At most ``in_flight`` blocks are scanned at once; the pages of a scanned block are dropped
    from this process right away, so resident memory stays near the size of the result.
    """
    if hasattr(mapped, "madvise"):
        mapped.madvise(mmap.MADV_SEQUENTIAL)
    size = len(mapped)
    whole = memoryview(mapped)
    queue: list[tuple[Future[object], memoryview, int, int]] = []

    def retire() -> None:
        fut, view, lo, hi = queue.pop(0)
        try:
            fut.result()
        finally:
            view.release()
            page_lo = lo - lo % mmap.PAGESIZE
            if hasattr(mapped, "madvise") and hi > page_lo:
                mapped.madvise(mmap.MADV_DONTNEED, page_lo, hi - page_lo)

    try:
        pos = 0
        while pos < size:
            stop = min(pos + CHUNK_BYTES, size)
            if stop < size:
                cut = mapped.rfind(b"\n", pos, stop)
                if cut < 0:  # a line longer than a block: take it whole
                    cut = mapped.find(b"\n", stop)
                stop = size if cut < 0 else cut + 1
            if len(queue) >= in_flight:
                retire()
            view = whole[pos:stop]
            final = stop == size and mapped[size - 1] != 0x0A
            queue.append((on_block(0, view, final), view, pos, stop))
            if progress is not None:
                progress.advance(stop, 0)
            pos = stop
        while queue:
            retire()
    finally:
        for fut, view, _, _ in queue:
            fut.exception()  # wait: a view must not be released while a scan reads it
            view.release()
        whole.release()
        mapped.close()


def scan_files(
    paths: Sequence[tuple[str, int]],
    make_scanner: Callable[[], object],
    lanes: int,
    progress: Progress | None = None,
    method: str = "scan",
) -> ScanResult:
    """Scans ``(path, default_tid)`` inputs with ``lanes`` scanners running ``method`` (``scan``,
    ``scan_ftrace``, ``scan_lttng``; only ``scan`` uses the default tid); one ScannedFile per
    path."""
    workers = [_Lane(make_scanner, method, i) for i in range(max(1, lanes))]
    shared_args = share_args_table([lane.scanner for lane in workers], method)
    ring = [bytearray() for _ in range(2 * len(workers) + 1)]
    per_file: list[tuple[_RowSink, str | None]] = []
    try:
        for path, default_tid in paths:
            sink = _RowSink(_row_dtypes(method))
            last: list[Future[None]] = []
            pending: list[Future[object] | None] = [None] * len(ring)

            def on_block(
                slot: int,
                block: memoryview,
                final: bool,
                _tid: int = default_tid,
                _sink: _RowSink = sink,
                _last: list[Future[None]] = last,
            ) -> Future[object]:
                lane = workers[_sink.blocks % len(workers)]
                _sink.blocks += 1
                fut = lane.submit(block, _tid, final, _last[0] if _last else None, _sink)
                _last[:] = [fut]
                return fut  # type: ignore[return-value]

            error = _read_blocks(path, ring, pending, on_block, progress, sink.expect)
            if last:
                last[0].result()
            per_file.append((sink, error))
        tables, remaps = _merge_lanes([lane.scanner for lane in workers], method, shared_args)
    finally:
        for lane in workers:
            lane.pool.shutdown(wait=True)
    files = []
    for sink, error in per_file:
        cols = sink.result()
        if remaps:
            for lane_no, lo, hi in sink.lane_rows:
                _remap_block(cols, slice(lo, hi), remaps[lane_no - 1])
        files.append(ScannedFile(cols, error))
    return ScanResult(files, tables)


def _remap_block(cols: dict[str, np.ndarray], sl: slice, r: _Remap) -> None:
    """Maps one block's lane-local codes onto the merged tables, in place. Each map ends with
    -1, so a missing code (-1) stays -1 without a mask."""
    name, tname, args = cols["name"][sl], cols["tname"][sl], cols["args"][sl]
    name[:] = r.names[name]
    tname[:] = r.threads[tname]
    other = cols["kind"][sl] == KIND_OTHER
    if r.texts is None:  # args ids are the shared table's already; other-line codes are not
        if other.any():
            args[other] = r.others[args[other]]
        return
    # Other lines' codes index the other-line table, which follows the args table in r.texts.
    args[:] = r.texts[np.where(other, args + np.int32(r.n_args), args)]


@dataclass
class _Remap:
    names: np.ndarray  # lane code -> merged code, then -1
    threads: np.ndarray
    others: np.ndarray
    texts: np.ndarray | None  # args codes, then other-line codes (shifted by n_args), then -1;
    # None when the lanes shared one args table
    n_args: int


def _with_missing(codes: np.ndarray) -> np.ndarray:
    return np.append(codes.astype(np.int32, copy=False), np.int32(-1))


def share_args_table(scanners: list[object], method: str) -> bool:
    """Lets every scanner intern argument texts into the first one's table, when the grammar
    numbers argument texts (not (event, text) pairs) and the scanners can; rows are settled
    one block at a time (``_Lane._scan``), so the table is never written twice at once."""
    if method in PER_BODY_ARGS or len(scanners) < 2 or not all(hasattr(s, "share_args") for s in scanners):
        return False
    for sc in scanners[1:]:
        sc.share_args(scanners[0])  # type: ignore[attr-defined]
    return True


def _merge_lanes(
    scanners: list[object], method: str, shared_args: bool = False
) -> tuple[dict[str, StringTable], list[_Remap]]:
    """The first scanner absorbs the tables of the others (codes remapped); argument tables of
    (event, text) pair ids are joined instead, and a shared one is taken as it is. Tables of
    distinct texts are flagged unique."""
    first, rest = scanners[0], scanners[1:]
    joined = method in PER_BODY_ARGS
    maps: list[dict[str, np.ndarray]] = []
    joined_args: list[StringTable] = []
    for sc in rest:
        lane: dict[str, np.ndarray] = {}
        for w in TABLES:
            if w == "args" and shared_args:
                continue
            table = sc.table(w)  # type: ignore[attr-defined]
            if w == "args" and joined:
                joined_args.append(_as_table(table))
                continue
            lane[w] = np.frombuffer(first.absorb(w, *table), dtype=np.int32)  # type: ignore[attr-defined]
        maps.append(lane)
    tables = {w: _table(first, w) for w in TABLES}
    if joined:
        start = len(tables["args"])
        for lane, t in zip(maps, joined_args, strict=True):
            lane["args"] = np.arange(start, start + len(t), dtype=np.int32)
            start += len(t)
        if joined_args:
            tables["args"] = StringTable(
                pa.concat_arrays([tables["args"].values, *(t.values for t in joined_args)])
            )
    else:
        tables["args"].unique = True
    return tables, [
        _Remap(
            _with_missing(m["names"]),
            _with_missing(m["threads"]),
            _with_missing(m["others"]),
            None if shared_args else _with_missing(np.concatenate([m["args"], m["others"]])),
            0 if shared_args else len(m["args"]),
        )
        for m in maps
    ]
