"""Bad input the readers once crashed on or dropped silently, each checked against an
independent reading: a plain calendar for timestamps, plain line counts for directories and
compressed files, the file's own bytes for simple records."""

from __future__ import annotations

import bz2
import gzip
import itertools
import lzma
import re
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import zstandard

import tracetool
from parsers.inputs import InputFile
from parsers.io import InputError
from parsers.log import LogInput, read_log_inputs
from parsers.lttng import read_lttng
from parsers.registry import ReadContext
from tests.conftest import read_lines, sample
from tracetool._analyses.summary import summarize

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
PER_THREAD = ("qemu-threadify", "e-precopy-mutex", "per-thread")
LTTNG = ("qemu-threadify-lttng", "a-precopy-mutex", "lttng-babeltrace2.txt.xz")
FTRACE = ("qemu-threadify-ftrace", "a-precopy-mutex", "ftrace.txt.xz")


def _head(parts: tuple[str, ...], n: int) -> list[bytes]:
    return list(itertools.islice(read_lines(sample(*parts)), n))


def _write(path: Path, lines: list[bytes]) -> str:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return str(path)


# ------------------------------------------------------------------ timestamps out of range


def _calendar_ns(y: int, mo: int, d: int, h: int, mi: int, s: int, frac: str, off_s: int) -> int | None:
    """ns since the epoch by the plain calendar; None when int64 cannot hold it (year 0 is
    outside 1677..2262 anyway)."""
    if y == 0:
        return None
    days = date(y, mo, 1).toordinal() - date(1970, 1, 1).toordinal() + d - 1
    ns = (days * 86400 + h * 3600 + mi * 60 + s - off_s) * 10**9 + int(frac.ljust(9, "0") or 0)
    return ns if INT64_MIN < ns <= INT64_MAX else None


def _iso_cases() -> list[tuple[bytes, int | None]]:
    cases = []
    stamps = [
        (0, 1, 1, 0, 0, 0, "", "Z"),
        (1, 1, 1, 0, 0, 0, "", "Z"),
        (1677, 9, 21, 0, 12, 43, "", "Z"),
        (1677, 9, 21, 0, 12, 43, "145224192", "Z"),
        (1677, 9, 21, 0, 12, 43, "145224193", "Z"),
        (1678, 1, 1, 0, 0, 0, "5", "Z"),
        (1969, 12, 31, 23, 59, 59, "999999999", "Z"),
        (2262, 4, 11, 23, 47, 16, "854775807", "Z"),
        (2262, 4, 11, 23, 47, 16, "854775808", "Z"),
        (2262, 4, 12, 0, 0, 0, "", "Z"),
        (2262, 4, 12, 0, 0, 0, "", "+14:00"),
        (2262, 4, 11, 23, 0, 0, "", "-01:00"),
        (9999, 12, 31, 23, 59, 59, "999999", "Z"),
        (2026, 11, 26, 12, 0, 12, "885783", "Z"),
        (2026, 2, 31, 12, 0, 0, "1", "+05:30"),
    ]
    for y, mo, d, h, mi, s, frac, off in stamps:
        text = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{'.' + frac if frac else ''}{off}"
        off_s = 0 if off == "Z" else (1 if off[0] == "+" else -1) * (int(off[1:3]) * 3600 + int(off[4:]) * 60)
        cases.append((text.encode() + b" ", _calendar_ns(y, mo, d, h, mi, s, frac, off_s)))
    for sec, usec in [
        (0, "000001"),
        (9223372036, "854775"),
        (9223372036, "854776"),
        (99999999999, "000001"),
        (10**18, "0"),
    ]:
        ns = sec * 10**9 + int(usec.ljust(9, "0"))
        cases.append((f"4242@{sec}.{usec}:".encode(), ns if ns <= INT64_MAX else None))
    for ns in (INT64_MAX, INT64_MAX + 1, 10**19 - 1):
        cases.append((f"4242@{ns} ".encode(), ns if ns <= INT64_MAX else None))
    return cases


def test_out_of_range_timestamps_are_flagged_alike_by_both_scanners(tmp_path: Path) -> None:
    body = _head(("qemu-threadify", "e-precopy-mutex", "dst.trace.xz"), 1)[0].split(b" ", 1)[1]
    cases = _iso_cases()
    path = _write(tmp_path / "times.trace", [prefix + body for prefix, _ in cases])
    segs = {e: read_log_inputs([LogInput(path)], engine=e)[0] for e in ("compiled", "python")}
    for seg in segs.values():
        seg.check()
        in_range = [i + 1 for i, (_, ns) in enumerate(cases) if ns is not None]
        assert seg.line.tolist() == in_range
        assert seg.ts.tolist() == [ns for _, ns in cases if ns is not None]
        out = [i + 1 for i, (_, ns) in enumerate(cases) if ns is None]
        assert seg.other_line.tolist() == out
        flagged = [w for w in seg.warnings if "out of range" in w.message]
        assert len(flagged) == 1 and flagged[0].line == out[0]
        assert flagged[0].message.startswith(f"{len(out)} line(s)")
    a, b = segs["compiled"], segs["python"]
    assert a.other_text == b.other_text and a.warnings == b.warnings
    assert np.array_equal(a.tid, b.tid) and np.array_equal(a.pid, b.pid)


def test_lttng_dates_and_cycles_out_of_range(tmp_path: Path) -> None:
    real = _head(LTTNG, 1)[0]
    stamps = [
        ("2262-04-11 23:47:16.854775807", (2262, 4, 11, 23, 47, 16, "854775807")),
        ("2262-04-11 23:47:16.854775808", (2262, 4, 11, 23, 47, 16, "854775808")),
        ("9999-12-31 23:59:59.000000000", (9999, 12, 31, 23, 59, 59, "0")),
        ("1600-01-01 00:00:00.000000000", (1600, 1, 1, 0, 0, 0, "0")),
        ("2026-11-26 12:28:02.237975789", (2026, 11, 26, 12, 28, 2, "237975789")),
    ]
    lines, want = [], []
    for text, (y, mo, d, h, mi, s, frac) in stamps:
        lines.append(re.sub(rb"^\[[^\]]*\]", f"[{text}]".encode(), real))
        want.append(_calendar_ns(y, mo, d, h, mi, s, frac, 0))
    for cycles in (INT64_MAX, INT64_MAX + 1, 10**20 - 1):
        lines.append(re.sub(rb"^\[[^\]]*\]", f"[{cycles:020d}]".encode(), real))
        want.append(cycles if cycles <= INT64_MAX else None)
    path = _write(tmp_path / "lttng.txt", lines)
    segs = [read_lttng([InputFile(path)], ReadContext(engine=e))[0] for e in ("compiled", "python")]
    for seg in segs:
        seg.check()
        assert seg.ts.tolist() == [ns for ns in want if ns is not None]
        assert seg.other_line.tolist() == [i + 1 for i, ns in enumerate(want) if ns is None]
        assert any("out of range" in w.message for w in seg.warnings)
    assert segs[0].warnings == segs[1].warnings


# ------------------------------------------------------------------ invalid UTF-8, huge ids


@pytest.mark.parametrize("engine", ["compiled", "python"])
def test_lttng_event_word_with_invalid_utf8_and_a_long_line(tmp_path: Path, engine: str) -> None:
    real = _head(LTTNG, 3)
    broken = real[1].replace(b"qemu:qemu_mutex_locked:", b"qemu:qemu_\xffmutex\xe2\x82_locked:")
    long = real[2].replace(b'file = "', b'file = "' + b"\xc3\xa9" * 400_000 + b"\xe2")
    seg = read_lttng(
        [InputFile(_write(tmp_path / "t.txt", [real[0], broken, long]))], ReadContext(engine=engine)
    )[0]
    seg.check()
    names = seg.names.to_list()  # raised UnicodeDecodeError before
    assert "qemu_\ufffdmutex\ufffd\ufffd_locked" in names
    assert seg.events == 3 and any("invalid UTF-8" in w.message for w in seg.warnings)
    payloads = seg.args.values.to_pylist()
    assert any(len(p) > 800_000 for p in payloads)


def test_ftrace_task_lines_with_impossible_pids_name_no_thread(tmp_path: Path) -> None:
    lines = _head(FTRACE, 3000)
    rename = next(ln for ln in lines if b"task_rename:" in ln)
    newtask = next(ln for ln in lines if b"task_newtask:" in ln)
    bad = [
        re.sub(rb"pid=\d+", b"pid=" + b"7" * 5000, rename),
        re.sub(rb"pid=\d+", b"pid=99999999999", newtask),
        re.sub(rb"pid=\d+", b"pid=" + b"9" * 40, newtask),
    ]
    plain = tracetool.load(_write(tmp_path / "plain.txt", lines))
    hurt = tracetool.load(_write(tmp_path / "hurt.txt", lines + bad))
    assert len(hurt) == len(plain) + len(bad)
    warned = [w for w in hurt.warnings if "task_newtask/task_rename" in w.message]
    assert len(warned) == 1 and warned[0].message.startswith("3 ") and warned[0].line == len(lines) + 1
    assert sorted(hurt.threads["name"].dropna()) == sorted(plain.threads["name"].dropna())


def test_per_thread_file_named_beyond_int32(tmp_path: Path) -> None:
    src = Path(sample(*PER_THREAD))
    small = sorted(src.glob("dst.*.trace.xz"), key=lambda p: p.stat().st_size)[:2]
    shutil.copy(small[0], tmp_path / small[0].name)
    shutil.copy(small[1], tmp_path / "dst.2147483648.trace.xz")
    trace = tracetool.load(str(tmp_path))
    expected = sum(sum(1 for ln in read_lines(str(p)) if re.match(rb"\d{4}-\d\d-\d\dT", ln)) for p in small)
    assert len(trace) == expected
    assert any(
        "no thread id" in w.message and w.path.endswith("dst.2147483648.trace.xz") for w in trace.warnings
    )
    assert set(trace.tid.tolist()) == {-1, int(small[0].name.split(".")[1])}


def _event_offsets(data: bytes) -> list[int]:
    p, out = 24, []
    while p + 32 <= len(data):
        rtype = int.from_bytes(data[p : p + 8], "little")
        if rtype == 1:
            out.append(p)
            p += 8 + int.from_bytes(data[p + 24 : p + 28], "little")
        elif rtype == 0:
            p += 20 + int.from_bytes(data[p + 16 : p + 20], "little")
        else:
            p += 24
    return out


def test_simple_record_with_a_pid_beyond_int32(tmp_path: Path) -> None:
    with lzma.open(sample("qemu-threadify", "e-precopy-mutex", "dst.simple.xz")) as f:
        data = bytearray(f.read(2 << 20))
    events = _event_offsets(bytes(data))[:-1]  # the last one may be cut by the 2 MiB window
    data = data[: events[-1] + 8 + int.from_bytes(data[events[-1] + 24 : events[-1] + 28], "little")]
    patched = events[100:110]
    for p in patched:
        data[p + 28 : p + 32] = (0x80000000).to_bytes(4, "little")
    path = tmp_path / "dst.simple"
    path.write_bytes(bytes(data))
    trace = tracetool.load(str(path))  # threads used to raise KeyError
    assert len(trace) == len(events)
    rows = np.flatnonzero(np.isin(trace.line, patched))
    assert len(rows) == len(patched) and (trace.events["pid"].isna().to_numpy()[rows]).all()
    assert any("beyond 2147483647" in w.message and w.line == patched[0] for w in trace.warnings)
    assert trace.threads["events"].sum() == len(trace)


# ------------------------------------------------------------------ directories


def _event_lines(data: bytes) -> int:
    """Event lines of a per-thread file of the threadify build, counted the plain way."""
    return sum(1 for ln in data.split(b"\n") if re.match(rb"\d{4}-\d\d-\d\dT[\d:.]+Z [a-z_]\w* ", ln))


def test_directory_reads_every_trace_file_and_names_the_others(tmp_path: Path) -> None:
    src = Path(sample(*PER_THREAD))
    out = tmp_path / "run"
    shutil.copytree(src, out)
    traces = sorted(out.glob("dst.*.trace.xz"), key=lambda p: p.stat().st_size)
    smallest, other = traces[0], traces[1]
    data = {p: lzma.decompress(p.read_bytes()) for p in traces}
    # One NUL byte at the start of one file; 31 QEMU warnings appended to the smallest one.
    data[other] = b"\x00" + data[other]
    warning = b"2026-11-26T12:00:12.885783Z qemu-system-x86_64: warning: guest is slow\n"
    data[smallest] += warning * 31
    for p in (smallest, other):
        p.write_bytes(lzma.compress(data[p]))
    (out / "notes.txt").write_bytes(b"")
    (out / "cmdline.txt").write_text("qemu-system-x86_64 -trace events=events.txt\n")
    trace = tracetool.load(str(out / "dst.*.trace.xz"))
    whole = tracetool.load(str(out))
    expected = sum(_event_lines(d) for d in data.values())
    dst = whole.inputs[whole.inputs["path"].str.contains("/dst.")]
    assert len(trace) == expected == int(dst["events"].sum())
    skipped = {Path(s.path).name: s.reason for s in whole.skipped_inputs}
    assert skipped["notes.txt"] == "empty file"
    assert "side file" in skipped["cmdline.txt"] and "side file" in skipped["dst-threads.json"]
    read = set(whole.inputs["path"].map(lambda p: Path(p).name))
    listed = {p.name for p in out.iterdir()}
    assert read | set(skipped) == listed and not read & set(skipped)
    nul = whole.inputs[whole.inputs["path"].str.endswith(other.name)].iloc[0]
    assert nul["other_lines"] == 1


def test_directory_without_traces_says_why(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_bytes(b"")
    (tmp_path / "prose.txt").write_text("Migration went fine.\nNothing to see.\n")
    with pytest.raises(InputError, match=r"notes.txt: empty file.*prose.txt: not a trace"):
        tracetool.load(str(tmp_path))


# ------------------------------------------------------------------ damaged compression


def _zstd_streamed(data: bytes) -> bytes:
    """zstd as a streaming writer leaves it: a block flushed every 16 KiB, a checksum."""
    c = zstandard.ZstdCompressor(write_checksum=True).compressobj()  # as the zstd CLI writes
    out = [
        c.compress(data[i : i + 16384]) + c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        for i in range(0, len(data), 16384)
    ]
    return b"".join(out) + c.flush()


_COMPRESS = {
    "xz": lzma.compress,
    "gz": gzip.compress,
    "bz2": lambda d: bz2.compress(d, compresslevel=1),
    "zst": _zstd_streamed,
}


@pytest.mark.parametrize("damage", ["cut", "flip"])
@pytest.mark.parametrize("kind", sorted(_COMPRESS))
def test_compressed_trace_damaged_in_its_first_64k_keeps_its_lines(
    tmp_path: Path, kind: str, damage: str
) -> None:
    lines = _head(("qemu-7.2", "e-precopy-mutex", "dst.trace.xz"), 500)
    raw = b"\n".join(lines) + b"\n"
    assert len(raw) < 65536
    packed = bytearray(_COMPRESS[kind](raw))
    if damage == "cut":
        packed = packed[: len(packed) // 2]
    else:
        packed[len(packed) // 2] ^= 0x55
    path = tmp_path / f"dst.trace.{kind}"
    path.write_bytes(bytes(packed))
    if kind == "bz2":
        # bzip2 decodes a block (100 kB at least) only whole: nothing of a damaged first block.
        with pytest.raises(InputError):
            tracetool.load(str(path))
        return
    trace = tracetool.load(str(path))
    kept = trace.inputs.iloc[0]
    assert kept["events"] > 0
    assert kept["lines"] < len(lines) or damage == "flip"
    assert any("corrupt or truncated compressed data" in w.message for w in trace.warnings)
    # The lines before the damage are the original lines of those numbers.
    texts = (trace.events["event"].astype(str) + " " + trace.events["args"].astype(str)).tolist()
    first = lines[trace.line[0] - 1].split(b":", 1)[1].decode()
    assert trace.line[0] == 1 and first == texts[0]
    if damage == "cut":
        for line_no, text in zip(trace.line.tolist(), texts, strict=True):
            original = lines[line_no - 1].split(b":", 1)[1].decode()
            assert original == text or (line_no == kept["lines"] and original.startswith(text))


# ------------------------------------------------------------------ every line counted once


def _samples() -> list[str]:
    root = Path(sample())
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.xz"))


@pytest.mark.parametrize("rel", _samples())
def test_every_sample_line_is_counted_exactly_once(rel: str) -> None:
    path = sample(rel)
    trace = tracetool.load(path, events=())
    info = trace.inputs.iloc[0]
    assert info["lines"] == info["events"] + info["other_lines"] + info["set_aside"]
    if not rel.endswith(".simple.xz"):
        assert info["lines"] == sum(1 for _ in read_lines(path))
    fmt = info["format"]
    set_aside = summarize(trace).to_json()["inputs"][0]["set_aside"]
    if fmt in ("ftrace", "trace-cmd"):
        headers = sum(
            1
            for ln in read_lines(path)
            if ln.startswith(b"#") or re.fullmatch(rb"cpus=\d+|version = \S+", ln.strip())
        )
        assert set_aside.get("header", 0) == headers > 0
