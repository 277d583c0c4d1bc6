"""The log-backend reader: every line era, compression, per-thread files, garbage."""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import zstandard

from parsers.inputs import expand_paths
from parsers.log import LogInput, read_log_inputs
from parsers.segment import NO_TIME
from tests.conftest import SAMPLES, read_lines, sample

LOG_SAMPLES = sorted(str(p.relative_to(SAMPLES)) for p in SAMPLES.rglob("*.trace.xz"))


def _decompressed(path: str) -> bytes:
    with lzma.open(path) as f:
        return f.read()


def _read(path: str, engine: str) -> object:
    seg = read_log_inputs([LogInput(path)], engine=engine)[0]
    seg.check()
    return seg


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def _names(seg: object) -> list[str]:
    names = seg.names.to_list()  # type: ignore[attr-defined]
    return [names[c] for c in seg.name_code.tolist()]  # type: ignore[attr-defined]


def _args(seg: object) -> list[str]:
    args = seg.args.to_list()  # type: ignore[attr-defined]
    return [args[c] for c in seg.args_code.tolist()]  # type: ignore[attr-defined]


# ---------------------------------------------------------------- each era, checked by hand


ERA_LINES = (
    b"\n".join(
        [
            b"30905@1795694361.432507:qemu_mutex_unlock released mutex 0x55861b3958a0 "
            b"(./include/qemu/thread.h:128)",
            b"2026-11-26T11:50:10.587768Z qemu_mutex_lock waiting on mutex 0x55fafcd00c00 "
            b"(/usr/src/qemu-10/src/include/qemu/lockable.h:56)",
            b"2026-11-26T11:50:11Z loadvm_state_setup ",
            b"qemu-system-x86_64(22774:mig/dst/main): qemu_loadvm_state_section 4",
            b"2026-11-26T11:50:12.000001Z [my guest] qemu-system-x86_64(22760:CPU 0/TCG): "
            b"vm_state_notify running 1 reason 9 (running)",
            b"migrate_set_state new state active",
        ]
    )
    + b"\n"
)


def test_every_era_is_recognised(tmp_path: Path, engine: str) -> None:
    seg = _read(_write(tmp_path, "eras.trace", ERA_LINES), engine)
    assert seg.events == 6 and seg.other_lines == 0  # type: ignore[attr-defined]
    assert _names(seg) == [
        "qemu_mutex_unlock",
        "qemu_mutex_lock",
        "loadvm_state_setup",
        "qemu_loadvm_state_section",
        "vm_state_notify",
        "migrate_set_state",
    ]
    assert _args(seg)[2] == ""  # empty format: trailing space, no arguments
    assert _args(seg)[4] == "running 1 reason 9 (running)"

    def iso(s: str) -> int:
        dt = datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
        return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000

    expected_ts = [
        1795694361 * 10**9 + 432507 * 1000,
        iso("2026-11-26T11:50:10.587768"),
        iso("2026-11-26T11:50:11.000000"),
        NO_TIME,
        iso("2026-11-26T11:50:12.000001"),
        NO_TIME,
    ]
    assert seg.ts.tolist() == expected_ts  # type: ignore[attr-defined]
    assert seg.tid.tolist() == [30905, -1, -1, 22774, 22760, -1]  # type: ignore[attr-defined]
    tnames = seg.thread_names.to_list()  # type: ignore[attr-defined]
    got = [tnames[c] if c >= 0 else None for c in seg.thread_code.tolist()]  # type: ignore[attr-defined]
    assert got == [None, None, None, "mig/dst/main", "CPU 0/TCG", None]
    assert seg.line.tolist() == [1, 2, 3, 4, 5, 6]  # type: ignore[attr-defined]


def test_stap_lines_carry_a_pid_not_a_tid(tmp_path: Path, engine: str) -> None:
    data = b"4242@1795694361432507123 migrate_set_state new state active\n"
    seg = _read(_write(tmp_path, "stap.log", data), engine)
    assert seg.format == "stap"  # type: ignore[attr-defined]
    assert seg.pid.tolist() == [4242] and seg.tid.tolist() == [-1]  # type: ignore[attr-defined]
    assert seg.ts.tolist() == [1795694361432507123]  # type: ignore[attr-defined]


# ---------------------------------------------------------------- real traces, counted plainly


_TID_AT = re.compile(rb"^(\d+)@\d+\.\d+:(\w+)")
_ISO = re.compile(rb"^\d{4}-\d\d-\d\dT[\d:.]+Z (\w+)")


def _plain_counts(path: str) -> tuple[Counter[tuple[int, str]], int]:
    """(tid, event) counts and line count, by the plainest possible walk over the file."""
    counts: Counter[tuple[int, str]] = Counter()
    lines = 0
    for raw in read_lines(path):
        lines += 1
        m = _TID_AT.match(raw)
        if m:
            counts[(int(m.group(1)), m.group(2).decode())] += 1
            continue
        m = _ISO.match(raw)
        if m:
            counts[(-1, m.group(1).decode())] += 1
            continue
        counts[(-1, raw.split(b" ", 1)[0].decode())] += 1
    return counts, lines


@pytest.mark.parametrize("rel", LOG_SAMPLES)
def test_real_trace_counts_match_a_plain_count(rel: str) -> None:
    path = sample(rel)
    seg = read_log_inputs([LogInput(path)])[0]
    expected, lines = _plain_counts(path)
    got = Counter(zip(seg.tid.tolist(), _names(seg), strict=True))
    assert seg.lines == lines
    assert seg.events + seg.other_lines == lines
    assert got == expected


@pytest.mark.parametrize(
    "rel",
    [
        "qemu-7.2/e-precopy-mutex/dst.trace.xz",
        "qemu-7.2/g-precopy-plain-notimestamp/dst.trace.xz",
        "qemu-threadify/e-precopy-mutex/dst.trace.xz",
        "qemu-threadify/e-precopy-mutex/per-thread/dst.22760.trace.xz",
    ],
)
def test_compiled_and_python_scanners_agree(rel: str) -> None:
    a = read_log_inputs([LogInput(sample(rel))], engine="compiled", lanes=2)[0]
    b = read_log_inputs([LogInput(sample(rel))], engine="python")[0]
    for col in ("ts", "tid", "pid", "line", "flags", "other_line"):
        assert np.array_equal(getattr(a, col), getattr(b, col)), col
    assert _names(a) == _names(b)
    assert _args(a) == _args(b)
    assert a.other_text == b.other_text


def test_a_text_seen_again_is_read_as_it_was_the_first_time(tmp_path: Path) -> None:
    # The compiled scanner looks a line's text up among the event bodies it has seen before it
    # reads the event name; the same text, again, with another prefix or none, or a line that
    # only starts like a name, must come out as the python reader (which walks every line) reads
    # it. Each shape repeats, so the second sighting goes through the lookup.
    shapes = [
        b"10@1795694361.432507:qemu_mutex_lock waiting on mutex 0x55 (a.c:1)",
        b"2026-11-26T11:50:10.587768Z qemu_mutex_lock waiting on mutex 0x55 (a.c:1)",
        b"qemu_mutex_lock waiting on mutex 0x55 (a.c:1)",  # bare: the body of the lines above
        b"qemu-system-x86_64(7:mig/dst/main): qemu_mutex_lock waiting on mutex 0x55 (a.c:1)",
        b"qemu-system-x86_64: terminating on signal 15",  # starts like a name, is prose
        b"10@1795694361.5:loadvm_state_setup",  # a name alone
        b"11@1795694361.6:savevm_section_start \xff\xfe ram",  # repaired text
        b"Unable to read",  # prose whose first word is a name
        b"10@1795694361.7:9bad name",  # a prefix, then no name
    ]
    data = b"\n".join(shapes * 3) + b"\n"
    path = _write(tmp_path, "repeats.trace", data)
    want = read_log_inputs([LogInput(path)], engine="python")[0]
    for lanes in (1, 2):
        got = read_log_inputs([LogInput(path)], engine="compiled", lanes=lanes)[0]
        for col in ("ts", "tid", "line", "flags", "other_line"):
            assert np.array_equal(getattr(got, col), getattr(want, col)), (lanes, col)
        assert _names(got) == _names(want)
        assert _args(got) == _args(want)
        assert got.other_text == want.other_text
    # and what the python reader says, read by hand: 6 events and 3 other lines per copy
    assert want.events == 18 and want.other_lines == 9
    assert _names(want)[:6] == ["qemu_mutex_lock"] * 4 + ["loadvm_state_setup", "savevm_section_start"]


def test_scanning_on_several_lanes_changes_nothing(tmp_path: Path) -> None:
    raw = _decompressed(sample("qemu-7.2", "e-precopy-mutex", "dst.trace.xz"))
    path = _write(tmp_path, "big.trace", raw * 4)  # 88 MB: many blocks go to every lane
    one = read_log_inputs([LogInput(path)], engine="compiled", lanes=1)[0]
    three = read_log_inputs([LogInput(path)], engine="compiled", lanes=3)[0]
    for col in ("ts", "tid", "line", "flags"):
        assert np.array_equal(getattr(one, col), getattr(three, col)), col
    assert _names(one) == _names(three)
    assert _args(one) == _args(three)


@pytest.mark.parametrize("engine", ["compiled", "python"])
def test_the_argument_table_holds_each_text_once(engine: str) -> None:
    # The reader promises distinct argument texts (the events frame uses the table as its
    # categories without checking). Every sample at once: texts recur across files and events,
    # and the RAM-load texts are numerous enough to fill and clear the scanner's body table.
    paths = LOG_SAMPLES if engine == "compiled" else LOG_SAMPLES[:3]
    segs = read_log_inputs([LogInput(sample(p)) for p in paths], engine=engine, lanes=2)
    texts = segs[0].args.to_list()
    assert segs[0].args.unique
    assert len(texts) == len(set(texts))
    # ... and no text was lost: every row's code still gives the text of its line.
    for seg in segs[:3]:
        want = [ln.split(" ", 1)[1] if " " in ln else "" for ln in _bodies(seg.path)]
        assert [texts[c] for c in seg.args_code.tolist()] == want


def _bodies(path: str) -> list[str]:
    """Each event line's text after the "pid@sec.usec:" prefix, by a plain split."""
    out = []
    for line in _decompressed(path).decode("utf-8", "replace").splitlines():
        m = re.match(r"^\d+@\d+\.\d+:(\S.*)$", line)
        if m:
            out.append(m.group(1))
    return out


def test_lanes_sharing_one_argument_table_keep_other_lines_apart(tmp_path: Path) -> None:
    # Several lanes intern argument texts into one table while each keeps its own table of
    # non-trace lines: the other lines of every lane's blocks must still read back right.
    raw = _decompressed(sample("qemu-7.2", "e-precopy-mutex", "dst.trace.xz")).splitlines(keepends=True)
    mixed = b"".join(
        line + (b"!! not a trace line %d\n" % i if i % 5000 == 0 else b"") for i, line in enumerate(raw * 3)
    )
    path = _write(tmp_path, "mixed.trace", mixed)  # 66 MB: blocks of every lane hold some
    one = read_log_inputs([LogInput(path)], engine="compiled", lanes=1)[0]
    three = read_log_inputs([LogInput(path)], engine="compiled", lanes=3)[0]
    assert one.other_text == three.other_text
    assert one.other_text[:2] == ["!! not a trace line 0", "!! not a trace line 5000"]
    assert len(one.other_text) == len(raw * 3) // 5000 + 1
    assert np.array_equal(one.other_line, three.other_line)
    assert _args(one) == _args(three)
    assert three.args.unique and len(set(three.args.to_list())) == len(three.args)


@pytest.mark.skipif(not hasattr(__import__("parsers.log").log, "_compiled"), reason="no compiled scanner")
def test_an_args_table_is_shared_only_before_scanning() -> None:
    from parsers._scan import Scanner  # type: ignore[attr-defined]

    owner, late = Scanner(), Scanner()
    late.scan(b"1@1.000001:ev x\n", -1, False)
    with pytest.raises(ValueError):
        late.share_args(owner)
    with pytest.raises(TypeError):
        owner.share_args(owner)
    sharer = Scanner()
    sharer.share_args(owner)
    with pytest.raises(ValueError):  # its args table is the owner's: ask the owner
        sharer.table("args")


# ---------------------------------------------------------------- compression and stdin


@pytest.mark.parametrize("kind", ["plain", "gzip", "xz", "zstd", "bz2"])
def test_every_compression_reads_the_same(tmp_path: Path, kind: str) -> None:
    raw = _decompressed(sample("qemu-7.2", "a-precopy-plain", "src.trace.xz"))
    packed = {
        "plain": lambda b: b,
        "gzip": gzip.compress,
        "xz": lzma.compress,
        "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
        "bz2": bz2.compress,
    }[kind](raw)
    path = _write(tmp_path, "trace.bin", packed)  # the name says nothing: magic bytes decide
    seg = read_log_inputs([LogInput(path)])[0]
    assert seg.lines == raw.count(b"\n")
    assert seg.events == seg.lines
    assert _names(seg)[0] == raw.split(b":", 1)[1].split(b" ", 1)[0].decode()


def test_columns_grow_past_a_low_guess_of_the_compressed_size(tmp_path: Path) -> None:
    # The result columns are sized from the file's size and a usual compression ratio; a
    # repetitive trace compresses far better, so they must grow (and keep every row) while
    # several blocks arrive on several lanes.
    head = _decompressed(sample("qemu-7.2", "e-precopy-mutex", "dst.trace.xz"))[: 1 << 20]
    raw = head[: head.rindex(b"\n") + 1] * 40  # 40 MB: five blocks
    packed = zstandard.ZstdCompressor(write_content_size=False).compress(raw)
    assert len(raw) > 100 * len(packed)  # far above the 25x guessed for zstd
    path = _write(tmp_path, "trace.zst", packed)
    plain = _write(tmp_path, "trace.log", raw)
    got = read_log_inputs([LogInput(path)], engine="compiled", lanes=2)[0]
    want = read_log_inputs([LogInput(plain)], engine="compiled", lanes=1)[0]
    assert got.lines == want.lines == raw.count(b"\n")
    for col in ("ts", "tid", "line", "flags"):
        assert np.array_equal(getattr(got, col), getattr(want, col)), col
    assert _names(got) == _names(want)
    assert _args(got) == _args(want)


def test_truncated_compressed_file_keeps_what_was_decoded(tmp_path: Path) -> None:
    raw = _decompressed(sample("qemu-7.2", "a-precopy-plain", "src.trace.xz"))
    packed = gzip.compress(raw)
    path = _write(tmp_path, "cut.trace.gz", packed[: len(packed) // 2])
    seg = read_log_inputs([LogInput(path)])[0]
    assert 0 < seg.events < raw.count(b"\n")
    assert any("truncated" in w.message or "corrupt" in w.message for w in seg.warnings)


# ---------------------------------------------------------------- per-thread files


def test_per_thread_directory_groups_files_and_takes_tids_from_names() -> None:
    d = sample("qemu-threadify", "e-precopy-mutex", "per-thread")
    files = expand_paths([d])
    traces = [f for f in files if ".trace" in f.path]
    assert traces, "no per-thread trace files found"
    for f in traces:
        tid = int(re.search(r"\.(\d+)\.trace", f.path).group(1))  # type: ignore[union-attr]
        assert f.default_tid == tid
    dst_groups = {f.process_hint for f in traces if "/dst." in f.path}
    src_groups = {f.process_hint for f in traces if "/src." in f.path}
    assert len(dst_groups) == 1 and len(src_groups) == 1 and dst_groups != src_groups


def test_glob_and_explicit_paths_give_the_same_files() -> None:
    d = Path(sample("qemu-threadify", "e-precopy-mutex", "per-thread"))
    by_glob = expand_paths([str(d / "dst.*.trace.xz")])
    explicit = expand_paths(sorted(str(p) for p in d.glob("dst.*.trace.xz")))
    assert [f.path for f in by_glob] == [f.path for f in explicit]
    assert [f.default_tid for f in by_glob] == [f.default_tid for f in explicit]


def test_single_numbered_file_is_not_taken_as_per_thread(tmp_path: Path) -> None:
    p = tmp_path / "dst.4242.trace"
    p.write_bytes(b"2026-11-26T11:50:10Z loadvm_state_setup \n")
    assert expand_paths([str(p)])[0].default_tid == -1


# ---------------------------------------------------------------- garbage


def test_garbage_is_counted_never_fatal(tmp_path: Path, engine: str) -> None:
    real = list(read_lines(sample("qemu-7.2", "e-precopy-mutex", "dst.trace.xz")))[:200]
    lines = list(real[:50])
    lines.append(b"\x00\x01\x02\xff\xfe binary junk \x80\x81")  # binary bytes
    lines.append(b"qemu-system-x86_64: warning: host doesn't support requested feature")
    lines.append(real[50][:-8] + b"\xff\xfe" + real[50][-8:])  # invalid UTF-8 in the arguments
    lines.append(b"A" * (1 << 20))  # a 1 MB line
    lines.extend(real[51:100])
    lines.append(b"Unable to read the device")  # prose: not an event
    lines.extend(real[100:150])
    cut = real[150][: len(real[150]) // 2]  # truncated last line, no newline
    data = b"\n".join(lines) + b"\n" + cut
    seg = _read(_write(tmp_path, "garbage.trace", data), engine)
    total = len(lines) + 1
    assert seg.lines == total  # type: ignore[attr-defined]
    # 50 + 1 (invalid UTF-8 event) + 49 + 50 + 1 (cut line) events; 4 other lines
    assert seg.events == 151  # type: ignore[attr-defined]
    assert seg.other_lines == 4  # type: ignore[attr-defined]
    assert seg.other_line.tolist() == [51, 52, 54, 104]  # type: ignore[attr-defined]
    messages = " | ".join(w.message for w in seg.warnings)  # type: ignore[attr-defined]
    assert "invalid UTF-8" in messages and "no newline" in messages and "1 KiB" in messages
    assert seg.other_text[2] == "A" * 1024  # type: ignore[attr-defined]
    assert seg.other_text[1].startswith("qemu-system-x86_64: warning")  # type: ignore[attr-defined]
    assert seg.other_text[3] == "Unable to read the device"  # type: ignore[attr-defined]
    assert "\ufffd\ufffd" in _args(seg)[50]
    assert seg.flags[50] != 0 and seg.flags[49] == 0  # type: ignore[attr-defined]


def test_crlf_line_endings(tmp_path: Path, engine: str) -> None:
    data = b"30905@1795694361.432507:migrate_set_state new state active\r\n"
    seg = _read(_write(tmp_path, "crlf.trace", data), engine)
    assert _args(seg) == ["new state active"]
