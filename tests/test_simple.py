"""The simple-backend reader on real QEMU files, their log twins, and files derived from them.

The threadify samples were recorded by one QEMU built with ``log,simple``: ``dst.simple.xz`` and
``dst.trace.xz`` hold the same run. Checks compare the reader with a plain ``struct`` walk
written here, and with the log backend's text of the same events.
"""

from __future__ import annotations

import json
import lzma
import os
import random
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tracetool
from benchmarks import make_simple
from parsers import registry
from parsers.registry import ReadContext
from parsers.segment import Segment
from parsers.simple import read_simple_file
from parsers.simple_walk import walker_engine
from tests.conftest import run_cli, sample
from tracetool._analyses.summary import summarize
from tracetool._events.catalog import Catalog
from tracetool._events.decode import decoder_for
from tracetool._events.decode_simple import render_payloads
from tracetool._events.eventdefs import parse_trace_events
from tracetool._events.simple_payloads import Payloads, layout_for
from tracetool.errors import InputError

PAIRS = {
    "d-dst": (
        "qemu-threadify/d-postcopy-preempt/dst.simple.xz",
        "qemu-threadify/d-postcopy-preempt/dst.trace.xz",
    ),
    "e-dst": ("qemu-threadify/e-precopy-mutex/dst.simple.xz", "qemu-threadify/e-precopy-mutex/dst.trace.xz"),
    "e-src": ("qemu-threadify/e-precopy-mutex/src.simple.xz", "qemu-threadify/e-precopy-mutex/src.trace.xz"),
}
DROPPED_ID = 0xFFFFFFFFFFFFFFFE


# ------------------------------------------------------------------------------ plain walk


@dataclass
class Plain:
    """What a plain struct walk finds in a little-endian simple file."""

    data: bytes
    table_end: int  # offset where the first event record starts
    offsets: list[int]  # event records
    names: list[str]
    ts: list[int]
    pids: list[int]
    payloads: list[bytes]
    drops: list[tuple[int, int]]  # (offset, count)


def plain_walk(data: bytes) -> Plain:
    ids: dict[int, str] = {}
    out = Plain(data, 0, [], [], [], [], [], [])
    p = 0
    while p < len(data):
        (rtype,) = struct.unpack_from("<Q", data, p)
        if rtype == 0xFFFFFFFFFFFFFFFF:
            assert struct.unpack_from("<QQ", data, p + 8) == (0xF2B177CB0AA429B4, 4)
            ids = {}
            p += 24
        elif rtype == 0:
            eid, n = struct.unpack_from("<QI", data, p + 8)
            ids[eid] = data[p + 20 : p + 20 + n].decode()
            p += 20 + n
        else:
            assert rtype == 1
            if not out.table_end:
                out.table_end = p
            eid, ts, length, pid = struct.unpack_from("<QQII", data, p + 8)
            if eid == DROPPED_ID:
                out.drops.append((p, struct.unpack_from("<Q", data, p + 32)[0]))
            else:
                out.offsets.append(p)
                out.names.append(ids[eid])
                out.ts.append(ts)
                out.pids.append(pid)
                out.payloads.append(data[p + 32 : p + 8 + length])
            p += 8 + length
    return out


_PLAIN: dict[str, Plain] = {}


def plain(rel: str) -> Plain:
    if rel not in _PLAIN:
        with lzma.open(sample(*rel.split("/"))) as f:
            _PLAIN[rel] = plain_walk(f.read())
    return _PLAIN[rel]


_LOADED: dict[str, tracetool.Trace] = {}


def loaded(rel: str) -> tracetool.Trace:
    if rel not in _LOADED:
        _LOADED[rel] = tracetool.load(sample(*rel.split("/")))
    return _LOADED[rel]


def context(catalog: Catalog | None = None, engine: str | None = None) -> ReadContext:
    cat = catalog or Catalog.builtin()
    ctx = ReadContext(
        is_known_event=cat.is_known,
        arg_types=lambda n: [[a.ctype for a in v.args] for v in cat.variants(n)],
        options={"catalog": cat},
    )
    if engine:
        ctx.options["simple_engine"] = engine
    return ctx


def write(tmp_path: Path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


_TEXTS: dict[int, Counter[tuple[str, str]]] = {}


def texts(trace: tracetool.Trace) -> Counter[tuple[str, str]]:
    """(event, argument text) multiset of a trace."""
    if id(trace) not in _TEXTS:
        ev = trace.events
        _TEXTS[id(trace)] = Counter(zip(ev["event"].astype(str), ev["args"].astype(str), strict=True))
    return Counter(_TEXTS[id(trace)])


# ------------------------------------------------------------------------------ real files


def test_detected_as_simple_and_stap_never_detected() -> None:
    path = sample("qemu-threadify", "e-precopy-mutex", "dst.simple.xz")
    assert registry.detect(path).name == "simple"
    with lzma.open(path) as f:
        head = f.read(65536)
    assert registry.get("simpletrace-stap").sniff(head) == 0


@pytest.mark.parametrize("rel", [p[0] for p in PAIRS.values()])
def test_columns_match_a_plain_walk(rel: str) -> None:
    ref = plain(rel)
    seg = read_simple_file(sample(*rel.split("/")), context())
    seg.check()
    assert seg.format == "simple" and seg.clock == "monotonic" and seg.line_unit == "offset"
    assert seg.line.tolist() == ref.offsets
    assert seg.ts.tolist() == ref.ts
    names = seg.names.to_list()
    assert [names[c] for c in seg.name_code.tolist()] == ref.names
    values = seg.args.values.to_pylist()
    payloads = [values[c].split(b"\x00", 1) for c in seg.args_code.tolist()]
    assert [p[1] for p in payloads] == ref.payloads
    assert [p[0].decode() for p in payloads] == ref.names
    assert (seg.tid == -1).all()
    # Records written before the backend knew its pid carry 0 and count as the file's process.
    real_pids = {p for p in ref.pids if p}
    assert len(real_pids) == 1
    assert set(seg.pid.tolist()) == real_pids
    zero = sum(1 for p in ref.pids if p == 0)
    assert zero > 0
    assert any(f"{zero} record(s)" in w.message and "pid 0" in w.message for w in seg.warnings)
    assert seg.dropped_events == ref.drops
    assert len(set(values)) == len(values)


def _segments_equal(a: Segment, b: Segment) -> None:
    for col in ("ts", "tid", "pid", "name_code", "args_code", "line", "flags"):
        assert np.array_equal(getattr(a, col), getattr(b, col)), col
    assert a.names.to_list() == b.names.to_list()
    assert a.args.values.equals(b.args.values)
    assert [str(w) for w in a.warnings] == [str(w) for w in b.warnings]
    assert (a.dropped_events, a.details, a.lines, a.variant) == (
        b.dropped_events,
        b.details,
        b.lines,
        b.variant,
    )


def test_compiled_and_python_walks_agree() -> None:
    assert walker_engine() == "compiled", "the C walker was not built (pip install -e .)"
    path = sample(*PAIRS["d-dst"][0].split("/"))  # has pid-0 and dropped-events records
    _segments_equal(
        read_simple_file(path, context(engine="compiled")), read_simple_file(path, context(engine="python"))
    )


def test_dropped_events_are_reported_everywhere() -> None:
    rel = PAIRS["d-dst"][0]
    ref = plain(rel)
    assert ref.drops, "the d-postcopy-preempt sample has a dropped-events record"
    trace = loaded(rel)
    assert trace.dropped[["position", "count"]].values.tolist() == [list(d) for d in ref.drops]
    summary = summarize(trace).to_json()
    assert summary["inputs"][0]["dropped_events"] == sum(c for _, c in ref.drops)
    assert summary["totals"]["dropped_events"] == sum(c for _, c in ref.drops)
    first = ref.drops[0][0]
    assert any(w.line == first and "lost" in w.message for w in trace.warnings)


# ------------------------------------------------------------------------------ log twins


def _log_only_runs(simple: tracetool.Trace, log: tracetool.Trace) -> list[list[int]]:
    """Runs (in log file order) of log events that the simple file does not have."""
    left = texts(simple)
    ev = log.events.sort_values("line")
    only = []
    for pos, key in enumerate(zip(ev["event"].astype(str), ev["args"].astype(str), strict=True)):
        if left[key] > 0:
            left[key] -= 1
        else:
            only.append(pos)
    runs: list[list[int]] = []
    for pos in only:
        if runs and runs[-1][-1] == pos - 1:
            runs[-1].append(pos)
        else:
            runs.append([pos])
    return runs


# The log text of this event is ambiguous ("%s/%s" with names containing "/"): the text decoder
# splits it at another slash than QEMU had. Only the joined text can be compared.
AMBIGUOUS_TEXT = {"vmstate_subsection_save_loop": ("name", "sub")}


def _field_rows(trace: tracetool.Trace, name: str, skip: set[int]) -> pd.DataFrame:
    """Typed fields of ``name`` minus the ``skip`` rows, in a canonical (sorted) row order."""
    f = trace.fields(name)
    f = f[~f.index.isin(list(skip))]
    assert bool(f["decoded"].all()), f"{name}: undecoded arguments"
    if name in AMBIGUOUS_TEXT:
        a, b = AMBIGUOUS_TEXT[name]
        f = pd.DataFrame({"joined": f[a].astype(str) + "/" + f[b].astype(str)})
    return f.sort_values(list(f.columns), na_position="first").reset_index(drop=True)


@pytest.mark.parametrize("scenario", sorted(PAIRS))
def test_same_events_as_the_log_twin(scenario: str) -> None:
    srel, lrel = PAIRS[scenario]
    simple, log = loaded(srel), loaded(lrel)
    ref = plain(srel)
    dropped = sum(c for _, c in ref.drops)

    # Events only in the simple file: written before the log file was open; QEMU wrote them
    # before its simple backend knew the pid, so they carry pid 0.
    early_offsets = {o for o, p in zip(ref.offsets, ref.pids, strict=True) if p == 0}
    ev = simple.events
    early_rows = np.flatnonzero(ev["line"].isin(list(early_offsets)).to_numpy()).tolist()
    early_keys = [(str(ev["event"].iloc[r]), str(ev["args"].iloc[r])) for r in early_rows]
    simple_only = texts(simple) - texts(log)
    assert not simple_only - Counter(early_keys)
    left = Counter(simple_only)
    simple_only_rows = set()
    for r, key in zip(early_rows, early_keys, strict=True):
        if left[key] > 0:
            left[key] -= 1
            simple_only_rows.add(r)

    # Events only in the log: the ones the simple file reports as dropped (one run of log lines
    # per dropped-events record, of exactly its count), and the last lines of the log, written
    # after the simple backend's final flush at exit.
    runs = _log_only_runs(simple, log)
    tail = [r for r in runs if r[-1] == len(log) - 1]
    inner = [r for r in runs if r[-1] != len(log) - 1]
    assert sorted(len(r) for r in inner) == sorted(c for _, c in ref.drops)
    assert sum(len(r) for r in inner) == dropped
    assert sum(len(r) for r in tail) <= 3
    log_by_line = log.events.sort_values("line")
    log_only_rows = {int(log_by_line.index[p]) for r in runs for p in r}
    if scenario == "d-dst":
        names = {str(log_by_line["event"].iloc[p]) for r in inner for p in r}
        assert names == {"ram_load_loop"}

    # Typed fields: the same multiset per event, outside the rows accounted for above.
    names = set(simple.event_names) | set(log.event_names)
    for name in sorted(names):
        s_rows = set(simple.rows(name).tolist()) & simple_only_rows
        l_rows = set(log.rows(name).tolist()) & log_only_rows
        if simple.code_of(name) is None or log.code_of(name) is None:
            # present on one side only: every row of it must be accounted for above
            assert len(s_rows) == len(simple.rows(name)) and len(l_rows) == len(log.rows(name))
            continue
        pd.testing.assert_frame_equal(
            _field_rows(simple, name, s_rows), _field_rows(log, name, l_rows), obj=name
        )


def test_variant_chosen_by_payload_shape() -> None:
    # loadvm_process_command has two catalog variants; (uint16_t, uint16_t) is listed first,
    # but the 10.1 build passes the command name as a string: a "PING" payload is as long as
    # two u64 and fits only through the range check.
    simple = loaded(PAIRS["d-dst"][0])
    f = simple.fields("loadvm_process_command")
    assert f["decoded"].all() and f["com"].isna().all()
    assert "PING" in set(f["s"])
    with lzma.open(sample(*PAIRS["d-dst"][1].split("/"))) as fh:
        lines = [ln.decode() for ln in fh if b" loadvm_process_command " in ln]
    expected = Counter(ln.split(" com=")[1].split(" len=")[0] for ln in lines)
    assert Counter(f["s"]) == expected


# ------------------------------------------------------------------------------ rendering


def test_printed_field_layout_matches_the_text_decoder() -> None:
    cat = Catalog.builtin()
    for ev in cat.definitions():
        assert layout_for(ev).fields == decoder_for(ev).fields, ev.name


RENDER_CASES = [
    ('a(int x, unsigned y, unsigned y2, int x2, uint64_t z) "%08x|%-5d|%5u|%#x|%llx"', None),
    ('b(const char *s, int n, void *p, void *q) "%s:%d %p %p"', None),
    (
        "c(uint8_t a, int16_t b, char c, const char *s, const char *s2, const char *s3) "
        '"%hhu %hd %c [%.3s] [%6s] [%-6s]"',
        None,
    ),
    ('d(int a, int a2, int a3, unsigned b, unsigned b2, int64_t c) "%o %+d % d %.4x %8.3x %lld"', None),
]


def test_rendering_matches_printf_semantics() -> None:
    rng = random.Random(5)
    cat_lines = [c[0] for c in RENDER_CASES]
    defs = parse_trace_events("\n".join(cat_lines) + "\n")
    catalog = Catalog([], defs)
    for ev in defs:
        payloads, expected = [], []
        for _ in range(200):
            raw: list[bytes] = []
            vals: dict[str, object] = {}
            for a in ev.args:
                if a.is_string:
                    s = "".join(rng.choice("ab/ c:") for _ in range(rng.randint(0, 9)))
                    raw.append(struct.pack("<I", len(s)) + s.encode())
                    vals[a.name] = s
                    continue
                bits = 64 if a.is_pointer else a.bits
                if a.is_signed:
                    v = rng.randint(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
                else:
                    v = rng.choice([0, 1, rng.randint(0, (1 << bits) - 1)])
                vals[a.name] = v
                raw.append(struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF))
            payloads.append(ev.name.encode() + b"\x00" + b"".join(raw))
            expected.append(_expected_text(ev.name, vals))
        import pyarrow as pa

        got = render_payloads(
            catalog, ev.name, Payloads.from_values(pa.array(payloads, pa.large_binary()), False)
        )
        assert got.to_pylist() == expected, ev.name


def _expected_text(name: str, v: dict[str, object]) -> str:
    """What glibc printf prints, written with Python's % and C's conversion rules by hand."""

    def u32(x: object) -> int:
        return int(x) & 0xFFFFFFFF  # type: ignore[call-overload]

    def s32(x: object) -> int:
        y = u32(x)
        return y - (1 << 32) if y >> 31 else y

    def ptr(x: object) -> str:
        return "(nil)" if x == 0 else f"0x{x:x}"

    if name == "a":
        x2 = u32(v["x2"])
        hx = f"{x2:#x}" if x2 else "0"  # C's '#' adds no 0x to a zero
        return f"{u32(v['x']):08x}|{s32(v['y']):<5d}|{u32(v['y2']):5d}|{hx}|{v['z']:x}"
    if name == "b":
        return f"{v['s']}:{s32(v['n'])} {ptr(v['p'])} {ptr(v['q'])}"
    if name == "c":
        c = int(v["c"]) & 0xFF  # type: ignore[call-overload]
        ch = chr(c) if c < 0x80 else "\ufffd"  # a lone byte >= 0x80 is no UTF-8
        return (
            f"{int(v['a']) & 0xFF} {v['b']} {ch} [{str(v['s'])[:3]}] [{v['s2']:>6}] "  # type: ignore[call-overload]
            f"[{v['s3']:<6}]"
        )
    a2, a3 = s32(v["a2"]), s32(v["a3"])
    b2 = f"{u32(v['b2']):03x}"
    return f"{u32(v['a']):o} {a2:+d} {a3: d} {u32(v['b']):04x} {b2:>8} {v['c']}"


# ------------------------------------------------------------------------------ derived files


def _real_bytes(rel: str = PAIRS["e-dst"][0]) -> bytes:
    return plain(rel).data


def test_big_endian_file_reads_the_same(tmp_path: Path) -> None:
    # The first 80,000 records of a real file (they include its dropped-events record),
    # rewritten as a big-endian host writes them.
    ref = plain(PAIRS["d-dst"][0])
    end = ref.offsets[80_000]
    assert any(at < end for at, _ in ref.drops)
    little = ref.data[:end]
    big = make_simple.swap_byte_order(little, Catalog.builtin())
    assert big[8:16] == struct.pack(">Q", 0xF2B177CB0AA429B4) and len(big) == len(little)
    be = tracetool.load(write(tmp_path, "be.simple", big))
    le = tracetool.load(write(tmp_path, "le.simple", little))
    (inp,) = summarize(be).to_json()["inputs"]
    assert "big-endian" in inp["variant"]
    assert inp["dropped_events"] == sum(c for at, c in ref.drops if at < end)
    assert be._c.args_tables[0].encoding == "simple-be"
    assert np.array_equal(be.ts, le.ts) and np.array_equal(be.line, le.line)
    assert np.array_equal(be._c.pid, le._c.pid)
    assert texts(be) == texts(le)
    for name in le.event_names:
        pd.testing.assert_frame_equal(be.fields(name), le.fields(name))


def test_version_3_is_rejected_naming_the_version(tmp_path: Path) -> None:
    data = bytearray(_real_bytes())
    data[16:24] = struct.pack("<Q", 3)
    path = write(tmp_path, "v3.simple", bytes(data))
    with pytest.raises(InputError, match=r"v3\.simple@16: simple trace format version 3 is not"):
        tracetool.load(path)
    r = run_cli("summary", path)
    assert r.returncode == 2 and "version 3" in r.stderr and "Traceback" not in r.stderr


def test_truncated_last_record_keeps_the_rest(tmp_path: Path) -> None:
    ref = plain(PAIRS["e-dst"][0])
    last = ref.offsets[-1]
    path = write(tmp_path, "cut.simple", ref.data[: last + 30])
    trace = tracetool.load(path)
    assert len(trace) == len(ref.offsets) - 1
    assert [str(w) for w in trace.warnings if "incomplete" in w.message] == [
        f"{path}@{last}: last record is incomplete (30 bytes; the file was cut while QEMU was "
        "writing it?); the records before it were kept"
    ]
    r = run_cli("summary", path, "-f", "json")
    assert r.returncode == 0, r.stderr
    assert any(
        f"@{last}: last record is incomplete" in w for w in json.loads(r.stdout)["inputs"][0]["warnings"]
    )


def test_garbage_is_an_error_with_the_byte_offset(tmp_path: Path) -> None:
    ref = plain(PAIRS["e-dst"][0])
    at = ref.offsets[1000]
    data = bytearray(ref.data)
    data[at : at + 8] = b"GARBAGE!"
    path = write(tmp_path, "bad.simple", bytes(data))
    with pytest.raises(InputError, match=rf"bad\.simple@{at}: unknown record type"):
        tracetool.load(path)
    for engine in ("compiled", "python"):
        with pytest.raises(InputError, match=rf"@{at}: unknown record type"):
            read_simple_file(path, context(engine=engine))
    r = run_cli("summary", path)
    assert r.returncode == 2 and f"@{at}:" in r.stderr and "Traceback" not in r.stderr
    text = write(tmp_path, "notes.txt", b"hello, this is no trace\n" * 10)
    r = run_cli("summary", "--input-format", "simple", text)
    assert r.returncode == 2 and "not a simple-backend trace" in r.stderr


def test_length_field_garbage_is_caught(tmp_path: Path) -> None:
    ref = plain(PAIRS["e-dst"][0])
    at = ref.offsets[500]
    data = bytearray(ref.data)
    data[at + 24 : at + 28] = struct.pack("<I", 7)
    path = write(tmp_path, "len.simple", bytes(data))
    with pytest.raises(InputError, match=rf"@{at}: event record length 7 is impossible"):
        tracetool.load(path)


def reopened_bytes(ref: Plain) -> tuple[bytes, int]:
    """``ref`` with a second header and mapping table in the middle; (data, its offset).

    The second table gives every name another name's id (ids reversed): records after it
    must be read with it, or their names would be wrong.
    """
    data = ref.data
    cut = ref.offsets[len(ref.offsets) // 2]
    table = data[: ref.table_end]
    ids = []
    p = 24
    while p < len(table):
        _, eid, n = struct.unpack_from("<QQI", table, p)
        ids.append((eid, table[p + 20 : p + 20 + n]))
        p += 20 + n
    new_id = {eid: other for (eid, _), (other, _) in zip(ids, reversed(ids), strict=True)}
    table2 = table[:24] + b"".join(struct.pack("<QQI", 0, new_id[e], len(nm)) + nm for e, nm in ids)
    rest = bytearray(data[cut:])
    p = 0
    while p < len(rest):
        _, eid, _, length, _ = struct.unpack_from("<QQQII", rest, p)
        if eid != DROPPED_ID:
            struct.pack_into("<Q", rest, p + 8, new_id[eid])
        p += 8 + length
    return data[:cut] + table2 + bytes(rest), cut


def unknown_bytes(ref: Plain, old: bytes, new: bytes) -> bytes:
    """``ref`` with the mapping name ``old`` renamed ``new`` (same length)."""
    assert len(old) == len(new)
    end = ref.table_end
    return (
        ref.data[:end].replace(struct.pack("<I", len(old)) + old, struct.pack("<I", len(new)) + new)
        + ref.data[end:]
    )


def test_reopened_file_follows_the_new_mapping(tmp_path: Path) -> None:
    ref = plain(PAIRS["e-dst"][0])
    data, cut = reopened_bytes(ref)
    trace = tracetool.load(write(tmp_path, "reopen.simple", data))
    assert texts(trace) == texts(loaded(PAIRS["e-dst"][0]))
    assert any(w.line == cut and "re-opened" in w.message for w in trace.warnings)
    assert trace.inputs["events"].iloc[0] == len(ref.offsets)


def test_walks_agree_on_derived_files(tmp_path: Path) -> None:
    ref = plain(PAIRS["d-dst"][0])
    end = ref.offsets[30_000]
    files = {
        "reopen": reopened_bytes(ref)[0],
        "unknown": unknown_bytes(ref, b"ram_load_loop", b"ram_load_lopp"),
        "cut": ref.data[: ref.offsets[-1] + 40],
        "big": make_simple.swap_byte_order(ref.data[:end], Catalog.builtin()),
    }
    for name, data in files.items():
        path = write(tmp_path, f"{name}.simple", data)
        _segments_equal(
            read_simple_file(path, context(engine="compiled")),
            read_simple_file(path, context(engine="python")),
        )


def test_unknown_event_is_kept_with_raw_bytes(tmp_path: Path) -> None:
    ref = plain(PAIRS["e-dst"][0])
    path = write(tmp_path, "unknown.simple", unknown_bytes(ref, b"ram_load_loop", b"ram_load_lopp"))
    trace = tracetool.load(path)
    expected_rows = ref.names.count("ram_load_loop")
    assert trace.event_counts()["ram_load_lopp"] == expected_rows
    assert len(trace) == len(ref.offsets)
    (w,) = [w for w in trace.warnings if "no known argument list" in w.message]
    assert f"{expected_rows} record(s)" in w.message and "ram_load_lopp" in w.message
    assert w.line == ref.offsets[ref.names.index("ram_load_loop")]
    ev = trace.events
    rows = ev[ev["event"] == "ram_load_lopp"]
    want = Counter(
        f"<raw {p.hex()}>" for p, n in zip(ref.payloads, ref.names, strict=True) if n == "ram_load_loop"
    )
    assert Counter(rows["args"].astype(str)) == want
    assert not trace.fields("ram_load_lopp")["decoded"].any()


# ------------------------------------------------------------------------------ CLI


def test_summary_of_a_simple_file() -> None:
    path = sample(*PAIRS["d-dst"][0].split("/"))
    r = run_cli("summary", path, "-f", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    (inp,) = data["inputs"]
    assert (inp["format"], inp["clock"]) == ("simple", "monotonic")
    assert "pid only" in inp["variant"] and "no thread ids" in inp["variant"]
    assert inp["dropped_events"] == sum(c for _, c in plain(PAIRS["d-dst"][0]).drops)
    assert all(t["tid"] is None for t in data["threads"])
    text = run_cli("summary", path)
    assert text.returncode == 0
    assert "monotonic" in text.stdout and "pid only (no thread ids)" in text.stdout
    assert "62" in text.stdout and "trace buffer overflowed" in text.stdout


# ------------------------------------------------------------------------------ SystemTap


def _trace_events_file(tmp_path: Path, log: tracetool.Trace) -> tuple[str, list[str]]:
    """A trace-events file with the trace's events among unrelated ones, some disabled."""
    cat = Catalog.builtin()
    rng = random.Random(3)
    ev = log.events
    order = sorted(set(ev["event"].astype(str))) + [f"filler_event_{i}" for i in range(40)]
    rng.shuffle(order)
    lines = []
    for name in order:
        if name.startswith("filler"):
            lines.append(("disable " if rng.random() < 0.5 else "") + f'{name}(int x) "x=%d"')
        else:
            # the definition the QEMU build had: the catalog variant that decodes its lines
            dec = cat.decode_text(name, ev.loc[ev["event"] == name, "args"].astype(str).tolist())
            best = Counter(dec.variant.tolist()).most_common(1)[0][0]
            assert best >= 0
            lines.append(cat.variants(name)[best].signature())
    path = tmp_path / "trace-events-all"
    path.write_text("\n".join(lines) + "\n")
    return str(path), order


def test_simpletrace_stap_file(tmp_path: Path) -> None:
    log = loaded(PAIRS["e-dst"][1])
    events, order = _trace_events_file(tmp_path, log)
    rec = make_simple.records_from_trace(log, pid=777, clock_offset=0)
    assert not rec.undecoded
    out = tmp_path / "stap.bin"
    with open(out, "wb") as f:
        make_simple.write_records(rec, f, make_simple.WriteOptions(headerless_order=order))
    with pytest.raises(registry.UnknownFormat):
        tracetool.load(str(out))
    r = run_cli("summary", "--input-format", "simpletrace-stap", str(out))
    assert r.returncode == 2 and "--events" in r.stderr
    trace = tracetool.load(str(out), input_format="simpletrace-stap", events=[events])
    (inp,) = summarize(trace).to_json()["inputs"]
    assert (inp["format"], inp["clock"]) == ("simpletrace-stap", "wall")
    assert texts(trace) == texts(log)
    order_log = np.argsort(log.line, kind="stable")
    order_stap = np.argsort(trace.line, kind="stable")
    delta = trace.ts[order_stap] - log.ts[order_log]
    assert ((delta >= 0) & (delta < 1000)).all()
    assert set(trace.events["pid"].astype(int)) == {777}


# QEMU's trace-events-all of the threadify build is not shipped; point the variable at a copy.
TRACE_EVENTS_ALL = Path(os.environ.get("MIGTRACE_THREADIFY_TRACE_EVENTS", "/nonexistent"))


@pytest.mark.skipif(
    not TRACE_EVENTS_ALL.exists(), reason="the QEMU build's trace-events-all is not shipped with migtrace"
)
def test_the_builds_own_trace_events_all_gives_the_same_text() -> None:
    rel = PAIRS["d-dst"][0]
    with_build = tracetool.load(sample(*rel.split("/")), events=[str(TRACE_EVENTS_ALL)])
    assert not [w for w in with_build.warnings if "no known argument list" in w.message]
    assert texts(with_build) == texts(loaded(rel))
