"""Write QEMU simple-backend files (and SystemTap simpletrace files) from a log-backend trace.

Every event of the log trace becomes one record, in the log file's order, with the arguments
laid out as QEMU's simple backend lays them out: the event's argument list comes from the
catalog variant that decodes the line's text (or ``--events`` files), every non-string
argument is the C value widened to 64 bits, every string a u32 length and its bytes, NULL as
length 0. Arguments the format does not print cannot be recovered from the text and are
written as 0 / "".

The simple-backend clock is monotonic: timestamps are the log's minus ``--clock-offset`` plus a
sub-microsecond part, so ``tracetool._model.borrow`` has an offset to find. Options add what real files
contain: dropped-events records (``--drop ROW:COUNT``), a re-opened file (``--reopen-at ROW``),
big-endian byte order, a headerless SystemTap file (``--stap EVENTS``: event id = position in
that trace-events file), and ``--repeat N`` copies for scale.

    python benchmarks/make_simple.py LOG OUT [--events trace-events-all] [--big-endian]
        [--stap EVENTS] [--repeat N] [--drop ROW:COUNT] [--reopen-at ROW] [--pid PID]

``swap_byte_order`` turns a little-endian simple file into the big-endian file an s390x host
would have written, walking it with this module's own reader.

This is for tests and benchmarks; correctness of the reader is checked against real files.
"""

from __future__ import annotations

import argparse
import functools
import struct
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pandas as pd

from tracetool._events.catalog import Catalog
from tracetool._events.eventdefs import EventDef
from tracetool._model.trace import Trace

HEADER_ID = 0xFFFFFFFFFFFFFFFF
MAGIC = 0xF2B177CB0AA429B4
DROPPED_ID = 0xFFFFFFFFFFFFFFFE
DEFAULT_CLOCK_OFFSET = 1_795_000_000_000_000_000  # wall ns - monotonic ns of the fake boot
CHUNK_RECORDS = 1 << 18


@dataclass
class Records:
    """Simple-backend records to write: one row per event, payloads interned."""

    names: list[str]  # event names; name_code indexes this list
    name_code: np.ndarray  # int32
    ts: np.ndarray  # int64 ns
    pid: np.ndarray  # int64
    payload_code: np.ndarray  # int32 into payloads
    payloads: list[bytes]
    byteorder: str  # "little" or "big"
    undecoded: dict[str, int] = field(default_factory=dict)  # rows written with no arguments
    source_row: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.ts)


def _c_value(ev_arg_bits: int, signed: bool, printed: int) -> int:
    """The u64 QEMU writes for an integer argument whose printed value was ``printed``."""
    mask = (1 << ev_arg_bits) - 1
    v = printed & mask
    if signed and ev_arg_bits < 64 and v >> (ev_arg_bits - 1):
        v -= 1 << ev_arg_bits
    return v & 0xFFFFFFFFFFFFFFFF


@functools.cache
def _arg_specs(ev: EventDef) -> tuple[tuple[str, bool, int, bool], ...]:
    """(name, is string, bits, signed) of each argument, computed once per definition."""
    return tuple((a.name, a.is_string, 64 if a.is_pointer else a.bits, a.is_signed) for a in ev.args)


def encode_payload(ev: EventDef, values: dict[str, object], byteorder: str) -> bytes:
    """The argument bytes of one event from its decoded (printed) field values."""
    out = []
    fmt_u64 = "<Q" if byteorder == "little" else ">Q"
    fmt_u32 = "<I" if byteorder == "little" else ">I"
    for name, is_string, bits, signed in _arg_specs(ev):
        v = values.get(name)
        missing = v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
        if is_string:
            raw = b"" if missing else str(v).encode("utf-8", "surrogateescape")[:512]
            out.append(struct.pack(fmt_u32, len(raw)) + raw)
            continue
        if missing:
            number = 0
        elif isinstance(v, str):
            number = ord(v[0]) if v else 0
        else:
            number = int(v)  # type: ignore[call-overload]
        out.append(struct.pack(fmt_u64, _c_value(bits, signed, number)))
    return b"".join(out)


def records_from_trace(
    trace: Trace,
    *,
    byteorder: str = "little",
    pid: int | None = None,
    clock_offset: int = DEFAULT_CLOCK_OFFSET,
    seed: int = 1,
    time_order: bool = False,
) -> Records:
    """One record per event of ``trace``, arguments laid out per the catalog.

    Records follow the input files' order (file by file, line by line), or the trace's time
    order with ``time_order`` (for per-thread files, which a single simple file interleaves).
    Each distinct (event, text) is decoded and encoded once; ``source_row`` gives the trace
    row each record came from.
    """
    catalog = trace.catalog
    ev = trace.events
    order = (
        np.arange(len(ev))
        if time_order
        else np.lexsort((ev["line"].to_numpy(), ev["source"].cat.codes.to_numpy()))
    )
    names = [str(x) for x in ev["event"].cat.categories]
    name_code = ev["event"].cat.codes.to_numpy()[order].astype(np.int32)
    args = ev["args"].array
    arg_code = np.asarray(args.codes)[order].astype(np.int64)
    texts = [str(x) for x in args.categories]
    pair_key = name_code.astype(np.int64) << 32 | arg_code
    uniq, inverse = np.unique(pair_key, return_inverse=True)
    payloads: list[bytes] = []
    index: dict[bytes, int] = {}
    code_of_unique = np.zeros(len(uniq), dtype=np.int32)
    undecoded: dict[str, int] = {}
    uniq_name = (uniq >> 32).astype(np.int64)
    for nc in np.unique(uniq_name).tolist():
        us = np.flatnonzero(uniq_name == nc)
        name = names[nc]
        variants = catalog.variants(name)
        text_list = [texts[int(uniq[u] & 0xFFFFFFFF)] for u in us]
        dec = catalog.decode_text(name, text_list)
        frame = dec.frame.astype(object).where(dec.frame.notna(), None)
        for u, rec, var in zip(us.tolist(), frame.to_dict("records"), dec.variant.tolist(), strict=True):
            if var < 0:
                undecoded[name] = undecoded.get(name, 0) + 1
                body = b""
            else:
                body = encode_payload(variants[var], {str(k): v for k, v in rec.items()}, byteorder)
            key = name.encode() + b"\0" + body
            code = index.get(key)
            if code is None:
                code = index[key] = len(payloads)
                payloads.append(body)
            code_of_unique[u] = code
    payload_code = code_of_unique[np.asarray(inverse).ravel()]
    rng = np.random.default_rng(seed)
    ts = ev["ts_ns"].to_numpy()[order] - clock_offset + rng.integers(0, 1000, len(order))
    if pid is None:
        pids = ev["pid"].to_numpy(dtype=np.int64, na_value=0)[order]
        pids = np.where(pids > 0, pids, 4242)
    else:
        pids = np.full(len(order), pid, dtype=np.int64)
    return Records(
        names,
        name_code,
        ts.astype(np.int64),
        pids,
        payload_code,
        payloads,
        byteorder,
        undecoded,
        order.astype(np.int64),
    )


def perturb(
    rec: Records,
    *,
    swap_fraction: float = 0.0,
    delay_fraction: float = 0.0,
    delay_ns: int = 4_000_000,
    seed: int = 2,
) -> Records:
    """Records as a busy host writes them: some neighbours swapped, some timestamps late.

    QEMU reserves ring-buffer space after reading the clock, so two threads' records can land
    in the other order; a thread preempted between the log and the simple backend's clock reads
    stamps its simple record a scheduler tick later. Both are applied at random, seeded.
    """
    rng = np.random.default_rng(seed)
    n = len(rec)
    order = np.arange(n)
    if n > 1 and swap_fraction:
        at = np.unique(rng.integers(0, n - 1, int(n * swap_fraction)))
        at = at[np.r_[True, np.diff(at) > 1]]  # non-overlapping pairs
        order[at], order[at + 1] = order[at + 1], order[at].copy()
    ts = rec.ts.copy()
    if delay_fraction:
        late = rng.random(n) < delay_fraction
        ts[late] += delay_ns
    return Records(
        rec.names,
        rec.name_code[order],
        ts[order],
        rec.pid[order],
        rec.payload_code[order],
        rec.payloads,
        rec.byteorder,
        dict(rec.undecoded),
        rec.source_row[order],
    )


# ------------------------------------------------------------------------------ writing


def _header(byteorder: str) -> bytes:
    e = "<" if byteorder == "little" else ">"
    return struct.pack(e + "QQQ", HEADER_ID, MAGIC, 4)


def _mappings(names: Sequence[str], ids: Sequence[int], byteorder: str) -> bytes:
    e = "<" if byteorder == "little" else ">"
    return b"".join(
        struct.pack(e + "QQI", 0, i, len(n)) + n.encode() for i, n in zip(ids, names, strict=True)
    )


def _dropped(ts: int, pid: int, count: int, byteorder: str) -> bytes:
    e = "<" if byteorder == "little" else ">"
    return struct.pack(e + "QQQIIQ", 1, DROPPED_ID, ts & 0xFFFFFFFFFFFFFFFF, 32, pid, count)


def _record_bytes(rec: Records, ids: np.ndarray, rows: np.ndarray, ts_shift: int) -> bytes:
    """The records ``rows`` back to back, built with numpy (no Python loop per record)."""
    e = "<" if rec.byteorder == "little" else ">"
    plen_all = np.fromiter((len(p) for p in rec.payloads), dtype=np.int64, count=len(rec.payloads))
    pstart_all = np.zeros(len(rec.payloads) + 1, dtype=np.int64)
    np.cumsum(plen_all, out=pstart_all[1:])
    pdata = np.frombuffer(b"".join(rec.payloads) + b"\0", dtype=np.uint8)
    out = []
    for lo in range(0, len(rows), CHUNK_RECORDS):
        part = rows[lo : lo + CHUNK_RECORDS]
        pc_ = rec.payload_code[part]
        plen = plen_all[pc_]
        head = np.zeros(
            len(part),
            dtype=np.dtype(
                [("type", e + "u8"), ("id", e + "u8"), ("ts", e + "u8"), ("len", e + "u4"), ("pid", e + "u4")]
            ),
        )
        head["type"] = 1
        head["id"] = ids[rec.name_code[part]]
        head["ts"] = (rec.ts[part] + ts_shift).astype(np.uint64)
        head["len"] = 24 + plen
        head["pid"] = rec.pid[part].astype(np.uint32)
        size = 32 + plen
        start = np.zeros(len(part) + 1, dtype=np.int64)
        np.cumsum(size, out=start[1:])
        buf = np.empty(int(start[-1]), dtype=np.uint8)
        hb = head.view(np.uint8).reshape(len(part), 32)
        buf[(start[:-1, None] + np.arange(32)[None, :]).ravel()] = hb.ravel()
        total = int(plen.sum())
        if total:
            body_off = np.zeros(len(part) + 1, dtype=np.int64)
            np.cumsum(plen, out=body_off[1:])
            within = np.arange(total, dtype=np.int64) - np.repeat(body_off[:-1], plen)
            dst = np.repeat(start[:-1] + 32, plen) + within
            src = np.repeat(pstart_all[pc_], plen) + within
            buf[dst] = pdata[src]
        out.append(buf.tobytes())
    return b"".join(out)


@dataclass(frozen=True)
class WriteOptions:
    """What to add on top of the records."""

    version: int = 4
    headerless_order: Sequence[str] | None = None  # SystemTap: ids = positions in this list
    drops: Sequence[tuple[int, int]] = ()  # (first row, count): rows replaced by a dropped record
    reopen_at: Sequence[int] = ()  # rows before which header and mappings are written again
    repeat: int = 1
    repeat_gap_ns: int = 1_000_000_000


def _segments(n: int, opts: WriteOptions) -> Iterator[tuple[str, int, int]]:
    """("rows", start, stop), ("drop", row, count) and ("reopen", row, 0) in file order."""
    marks = sorted([(r, 1, "reopen", 0) for r in opts.reopen_at] + [(r, 0, "drop", c) for r, c in opts.drops])
    pos = 0
    for row, _, kind, count in marks:
        if row > pos:
            yield "rows", pos, row
        if kind == "drop":
            yield "drop", row, count
            pos = max(pos, row + count)
        else:
            yield "reopen", row, 0
            pos = max(pos, row)
    if pos < n:
        yield "rows", pos, n


def write_records(rec: Records, out: BinaryIO, opts: WriteOptions = WriteOptions()) -> int:
    """Writes the file; returns the number of event records written."""
    if opts.headerless_order is not None:
        position: dict[str, int] = {}
        for i, name in enumerate(opts.headerless_order):
            position.setdefault(name, i)
        missing = [n for n in rec.names if n not in position]
        if missing:
            raise ValueError(f"events not in the trace-events file: {', '.join(missing[:5])}")
        ids = np.array([position[n] for n in rec.names], dtype=np.uint64)
    else:
        ids = np.arange(len(rec.names), dtype=np.uint64) * np.uint64(7) + np.uint64(3)
    table = b""
    if opts.headerless_order is None:
        e = "<" if rec.byteorder == "little" else ">"
        table = struct.pack(e + "QQQ", HEADER_ID, MAGIC, opts.version) + _mappings(
            rec.names, ids.tolist(), rec.byteorder
        )
    written = 0
    span = int(rec.ts.max() - rec.ts.min()) if len(rec) else 0
    out.write(table)
    for r in range(opts.repeat):
        shift = r * (span + opts.repeat_gap_ns)
        for kind, a, b in _segments(len(rec), opts):
            if kind == "rows":
                out.write(_record_bytes(rec, ids, np.arange(a, b), shift))
                written += b - a
            elif kind == "drop":
                nxt = min(a + b, len(rec) - 1)
                out.write(_dropped(int(rec.ts[nxt]) + shift + 5_000_000, int(rec.pid[nxt]), b, rec.byteorder))
            elif opts.headerless_order is None:
                out.write(table)
    return written


# ------------------------------------------------------------------------------ byte order


def _walk(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(offset, record type, size) of every record of a little-endian simple file."""
    p = 0
    while p < len(data):
        (rtype,) = struct.unpack_from("<Q", data, p)
        if rtype == HEADER_ID:
            size = 24
        elif rtype == 0:
            size = 20 + struct.unpack_from("<I", data, p + 16)[0]
        elif rtype == 1:
            size = 8 + struct.unpack_from("<I", data, p + 24)[0]
        else:
            raise ValueError(f"offset {p}: unknown record type {rtype:#x}")
        yield p, rtype, size
        p += size


def _swap_args(ev: EventDef, body: bytes) -> bytes | None:
    """``body`` laid out by ``ev`` with every number byte-swapped, or None if it does not fit."""
    out = []
    p = 0
    for a in ev.args:
        if a.is_string:
            if p + 4 > len(body):
                return None
            (n,) = struct.unpack_from("<I", body, p)
            if p + 4 + n > len(body):
                return None
            out.append(struct.pack(">I", n) + body[p + 4 : p + 4 + n])
            p += 4 + n
        else:
            if p + 8 > len(body):
                return None
            (v,) = struct.unpack_from("<Q", body, p)
            bits = 64 if a.is_pointer else a.bits
            if bits < 64:
                lo, hi = (
                    ((-(1 << (bits - 1))) & 0xFFFFFFFFFFFFFFFF, 1 << (bits - 1))
                    if a.is_signed
                    else (None, 1 << bits)
                )
                if not (v < hi or (lo is not None and v >= lo)):
                    return None
            out.append(struct.pack(">Q", v))
            p += 8
    return b"".join(out) if p == len(body) else None


def swap_byte_order(data: bytes, catalog: Catalog) -> bytes:
    """A little-endian simple file rewritten in big-endian order (as an s390x host writes it).

    Payloads are swapped argument by argument with the first catalog variant that fits;
    a payload no variant fits raises ValueError.
    """
    names: dict[int, str] = {}
    out = []
    for p, rtype, size in _walk(data):
        if rtype == HEADER_ID:
            out.append(struct.pack(">QQQ", *struct.unpack_from("<QQQ", data, p)))
            names.clear()
        elif rtype == 0:
            _, eid, n = struct.unpack_from("<QQI", data, p)
            names[eid] = data[p + 20 : p + 20 + n].decode()
            out.append(struct.pack(">QQI", 0, eid, n) + data[p + 20 : p + 20 + n])
        else:
            _, eid, ts, length, pid = struct.unpack_from("<QQQII", data, p)
            body = data[p + 32 : p + size]
            if eid == DROPPED_ID:
                swapped: bytes | None = struct.pack(">Q", struct.unpack_from("<Q", body)[0])
            else:
                swapped = None
                for ev in catalog.variants(names[eid]):
                    swapped = _swap_args(ev, body)
                    if swapped is not None:
                        break
            if swapped is None:
                raise ValueError(f"offset {p}: no argument list of {names[eid]} fits")
            out.append(struct.pack(">QQQII", 1, eid, ts, length, pid) + swapped)
    return b"".join(out)


# ------------------------------------------------------------------------------ CLI


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log", help="log-backend trace (any era, compressed or not)")
    ap.add_argument("out")
    ap.add_argument("--events", action="append", default=[], help="trace-events-all for layouts")
    ap.add_argument("--threads", action="append", default=[])
    ap.add_argument("--big-endian", action="store_true")
    ap.add_argument("--stap", metavar="EVENTS", help="headerless SystemTap file; ids by EVENTS")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--drop", action="append", default=[], metavar="ROW:COUNT")
    ap.add_argument("--reopen-at", type=int, action="append", default=[])
    ap.add_argument("--pid", type=int)
    ap.add_argument("--clock-offset", type=int, default=DEFAULT_CLOCK_OFFSET)
    args = ap.parse_args(argv)

    import tracetool
    from tracetool._events.eventdefs import load_trace_events

    trace = tracetool.load(args.log, threads=args.threads, events=args.events)
    rec = records_from_trace(
        trace, byteorder="big" if args.big_endian else "little", pid=args.pid, clock_offset=args.clock_offset
    )
    order = [e.name for e in load_trace_events(args.stap)] if args.stap else None
    drops = [(int(a), int(b)) for a, b in (d.split(":") for d in args.drop)]
    opts = WriteOptions(headerless_order=order, drops=drops, reopen_at=args.reopen_at, repeat=args.repeat)
    with open(args.out, "wb") as f:
        n = write_records(rec, f, opts)
    for name, count in rec.undecoded.items():
        sys.stderr.write(
            f"make_simple: {count} distinct argument texts of {name} not decoded: written without arguments\n"
        )
    sys.stderr.write(f"make_simple: wrote {n} records to {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
