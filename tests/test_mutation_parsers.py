"""A seeded, bounded mutation campaign over slices of the real sample traces of every backend.

Each case takes a slice of a real trace (log of both eras, a per-thread directory, simple,
ftrace, trace-cmd, LTTng), damages it the way real files get damaged (lines deleted, duplicated,
swapped; truncation; flipped bytes; garbage and invalid UTF-8; a 1 MB line; huge or negative
numbers; lines of another format; broken compression; a directory with one broken file) and
loads it with ``tracetool.load``. Whatever the damage:

- nothing but the InputError family escapes (a clear one-line error, never a traceback);
- every line is counted exactly once: lines == events + other lines + lines set aside;
- the compiled and the pure-Python scanner give the same trace where both apply.

The seed is fixed, so a failure names a case that reproduces (``MIGTRACE_MUTATION_SEED``
changes it for a wider search by hand).
"""

from __future__ import annotations

import bz2
import functools
import gzip
import itertools
import lzma
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import zstandard

import tracetool
from parsers.io import InputError
from parsers.simple_walk import MAGIC
from tests.conftest import read_lines, sample

SEED = int(os.environ.get("MIGTRACE_MUTATION_SEED", "20261204"))
ROUNDS = int(os.environ.get("MIGTRACE_MUTATION_ROUNDS", "2"))  # differently seeded cases each
SLICE_LINES = 1200
HEAD_LINES = 20_000
SIMPLE_RECORDS = 1500

TEXT_SOURCES = {
    "log-tid@": ("qemu-7.2", "e-precopy-mutex", "dst.trace.xz"),
    "log-iso": ("qemu-threadify", "e-precopy-mutex", "dst.trace.xz"),
    "log-plain": ("qemu-7.2", "g-precopy-plain-notimestamp", "dst.trace.xz"),
    "ftrace": ("qemu-threadify-ftrace", "a-precopy-mutex", "ftrace.txt.xz"),
    "trace-cmd": ("qemu-threadify-ftrace", "d-precopy-mutex-trace-cmd", "trace-cmd-report.txt.xz"),
    "lttng": ("qemu-threadify-lttng", "a-precopy-mutex", "lttng-babeltrace2.txt.xz"),
}
PER_THREAD = ("qemu-threadify", "e-precopy-mutex", "per-thread")
SIMPLE = ("qemu-threadify", "e-precopy-mutex", "dst.simple.xz")


@functools.cache
def _head(parts: tuple[str, ...], n: int = HEAD_LINES) -> tuple[bytes, ...]:
    """The first lines of a sample trace (read once per test session)."""
    return tuple(itertools.islice(read_lines(sample(*parts)), n))


def _slice(parts: tuple[str, ...], rng: random.Random, n: int = SLICE_LINES) -> list[bytes]:
    lines = _head(parts)
    start = rng.randrange(0, max(1, len(lines) - n))
    return list(lines[start : start + n])


# ------------------------------------------------------------------------ line mutations

Lines = list[bytes]


def _delete(lines: Lines, rng: random.Random) -> Lines:
    for _ in range(rng.randint(1, 20)):
        if lines:
            del lines[rng.randrange(len(lines))]
    return lines


def _duplicate(lines: Lines, rng: random.Random) -> Lines:
    for _ in range(rng.randint(1, 20)):
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    return lines


def _swap(lines: Lines, rng: random.Random) -> Lines:
    for _ in range(rng.randint(1, 20)):
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    return lines


def _flip_bytes(lines: Lines, rng: random.Random) -> Lines:
    data = bytearray(b"\n".join(lines))
    for _ in range(rng.randint(1, 40)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data).split(b"\n")


def _garbage(lines: Lines, rng: random.Random) -> Lines:
    for _ in range(rng.randint(1, 10)):
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300))).replace(b"\n", b"")
        lines.insert(rng.randrange(len(lines) + 1), junk)
    return lines


def _invalid_utf8(lines: Lines, rng: random.Random) -> Lines:
    bad = [b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00", b"\xc0\xaf"]
    for _ in range(rng.randint(1, 30)):
        i = rng.randrange(len(lines))
        line = lines[i]
        at = rng.randrange(len(line) + 1)
        lines[i] = line[:at] + rng.choice(bad) + line[at:]
    return lines


def _long_line(lines: Lines, rng: random.Random) -> Lines:
    i = rng.randrange(len(lines))
    fill = rng.choice([b"x", b"\xc3\xa9", b"\xe2\x82", b"7"])
    lines[i] = lines[i] + fill * (1_000_000 // len(fill))
    return lines


_NUMBERS = [
    b"9" * 40,
    b"4294967296",
    b"2147483648",
    b"2147483647",
    b"9223372036854775807",
    b"9223372036854775808",
    b"18446744073709551616",
    b"0",
    b"1" * 5000,
]


def _huge_numbers(lines: Lines, rng: random.Random) -> Lines:
    import re

    for _ in range(rng.randint(1, 30)):
        i = rng.randrange(len(lines))
        runs = list(re.finditer(rb"\d+", lines[i]))
        if runs:
            m = rng.choice(runs)
            lines[i] = lines[i][: m.start()] + rng.choice(_NUMBERS) + lines[i][m.end() :]
    return lines


def _negative_numbers(lines: Lines, rng: random.Random) -> Lines:
    import re

    for _ in range(rng.randint(1, 30)):
        i = rng.randrange(len(lines))
        runs = list(re.finditer(rb"\d+", lines[i]))
        if runs:
            m = rng.choice(runs)
            lines[i] = lines[i][: m.start()] + b"-" + lines[i][m.start() :]
    return lines


def _times_out_of_range(lines: Lines, rng: random.Random) -> Lines:
    import re

    stamps = [b"99999999999.000001", b"9223372036.854776", b"9223372036.854775"]
    years = [b"9999", b"0000", b"2262", b"1677", b"1969", b"1600"]
    for _ in range(rng.randint(1, 30)):
        i = rng.randrange(len(lines))
        line = lines[i]
        line = re.sub(rb"@\d+\.\d+:", b"@" + rng.choice(stamps) + b":", line, count=1)
        line = re.sub(rb"^(\[?)\d{4}-", lambda m: m.group(1) + rng.choice(years) + b"-", line, count=1)
        lines[i] = line
    return lines


def _mixed(lines: Lines, rng: random.Random) -> Lines:
    other = rng.choice([k for k in TEXT_SOURCES])
    foreign = _slice(TEXT_SOURCES[other], rng, 200)
    for line in rng.sample(foreign, min(40, len(foreign))):
        lines.insert(rng.randrange(len(lines) + 1), line)
    return lines


LINE_MUTATIONS: dict[str, Callable[[Lines, random.Random], Lines]] = {
    "delete": _delete,
    "duplicate": _duplicate,
    "swap": _swap,
    "flip": _flip_bytes,
    "garbage": _garbage,
    "utf8": _invalid_utf8,
    "long": _long_line,
    "huge": _huge_numbers,
    "negative": _negative_numbers,
    "time-range": _times_out_of_range,
    "mixed": _mixed,
}


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


# ------------------------------------------------------------------------ compression

_COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "xz": lzma.compress,
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "zst": lambda d: zstandard.ZstdCompressor().compress(d),
}


def _break_compressed(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(sorted(_COMPRESS))
    packed = bytearray(_COMPRESS[kind](data))
    if rng.random() < 0.5:
        packed = packed[: rng.randrange(1, len(packed))]
    else:
        for _ in range(rng.randint(1, 3)):
            packed[rng.randrange(len(packed))] ^= 1 << rng.randrange(8)
    return kind, bytes(packed)


# ------------------------------------------------------------------------ cases


@dataclass
class Case:
    name: str
    paths: list[str]
    text: bool  # both scanners apply


def _text_case(tmp: Path, rng: random.Random, source: str, how: str) -> Case:
    lines = _slice(TEXT_SOURCES[source], rng)
    if how == "truncate":
        data = _truncate(b"\n".join(lines) + b"\n", rng)
    elif how == "compressed":
        kind, data = _break_compressed(b"\n".join(lines) + b"\n", rng)
        path = tmp / f"{source}.txt.{kind}"
        path.write_bytes(data)
        return Case(f"{source}/compressed-{kind}", [str(path)], True)
    else:
        data = b"\n".join(LINE_MUTATIONS[how](lines, rng)) + b"\n"
    path = tmp / f"{source}.txt"
    path.write_bytes(data)
    return Case(f"{source}/{how}", [str(path)], True)


def _per_thread_case(tmp: Path, rng: random.Random, how: str) -> Case:
    src = Path(sample(*PER_THREAD))
    out = tmp / "per-thread"
    out.mkdir()
    traces = sorted(src.glob("dst.*.trace.xz"))
    for f in traces:
        lines = _head((*PER_THREAD, f.name), 300)
        (out / f.name.removesuffix(".xz")).write_bytes(b"\n".join(lines) + b"\n")
    for side in ("cmdline.txt", "events.txt", "dst-threads.json"):
        shutil.copy(src / side, out / side)
    victim = out / rng.choice(traces).name.removesuffix(".xz")
    data = victim.read_bytes()
    if how == "nul-start":
        victim.write_bytes(b"\x00" + data)
    elif how == "empty-notes":
        (out / "notes.txt").write_bytes(b"")
    elif how == "broken-file":
        kind, packed = _break_compressed(data, rng)
        victim.unlink()
        (out / f"{victim.name}.{kind}").write_bytes(packed)
    else:
        lines = LINE_MUTATIONS[how](data.split(b"\n"), rng)
        victim.write_bytes(b"\n".join(lines))
    return Case(f"per-thread/{how}", [str(out)], True)


@functools.cache
def _simple_slice() -> bytes:
    """The header, mappings and the first event records of the real simple file."""
    with lzma.open(sample(*SIMPLE)) as f:
        data = f.read(4 << 20)
    p, n, first_event = 0, 0, None
    while p + 32 <= len(data) and n < SIMPLE_RECORDS:
        rtype = int.from_bytes(data[p : p + 8], "little")
        if rtype == 1:
            first_event = p if first_event is None else first_event
            p += 8 + int.from_bytes(data[p + 24 : p + 28], "little")
            n += 1
        elif rtype == 0:
            p += 20 + int.from_bytes(data[p + 16 : p + 20], "little")
        else:
            p += 24
    assert first_event is not None
    return data[:p]


def _simple_case(tmp: Path, rng: random.Random, how: str) -> Case:
    data = bytearray(_simple_slice())
    if how == "truncate":
        data = data[: rng.randrange(24, len(data))]
    elif how == "flip":
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(24, len(data))] = rng.randrange(256)
    elif how == "huge-pid":
        # Event records: u64 1, u64 id, u64 ns, u32 len, u32 pid. Set pids beyond int32.
        p = 24
        while p + 32 <= len(data):
            rtype = int.from_bytes(data[p : p + 8], "little")
            if rtype == 1:
                if rng.random() < 0.1:
                    data[p + 28 : p + 32] = rng.choice([0x80000000, 0xFFFFFFFF]).to_bytes(4, "little")
                p += 8 + int.from_bytes(data[p + 24 : p + 28], "little")
            elif rtype == 0:
                p += 20 + int.from_bytes(data[p + 16 : p + 20], "little")
            else:
                p += 24
    elif how == "compressed":
        kind, packed = _break_compressed(bytes(data), rng)
        path = tmp / f"dst.simple.{kind}"
        path.write_bytes(packed)
        return Case(f"simple/compressed-{kind}", [str(path)], False)
    assert int.from_bytes(data[8:16], "little") == MAGIC
    path = tmp / "dst.simple"
    path.write_bytes(bytes(data))
    return Case(f"simple/{how}", [str(path)], False)


def _cases() -> list[tuple[str, Callable[[Path, random.Random], Case]]]:
    out: list[tuple[str, Callable[[Path, random.Random], Case]]] = []
    for source in TEXT_SOURCES:
        for how in [*LINE_MUTATIONS, "truncate", "compressed"]:
            out.append((f"{source}/{how}", lambda tmp, rng, s=source, h=how: _text_case(tmp, rng, s, h)))
    for how in ("nul-start", "empty-notes", "broken-file", "garbage", "utf8", "huge"):
        out.append((f"per-thread/{how}", lambda tmp, rng, h=how: _per_thread_case(tmp, rng, h)))
    for how in ("truncate", "flip", "huge-pid", "compressed"):
        out.append((f"simple/{how}", lambda tmp, rng, h=how: _simple_case(tmp, rng, h)))
    return out


CASES = [(f"{name}#{r}", make) for r in range(ROUNDS) for name, make in _cases()]


def _load(case: Case, engine: str | None) -> tracetool.Trace | InputError:
    try:
        return tracetool.load(case.paths, engine=engine)
    except InputError as exc:  # the whole InputError family: a clear error, never a crash
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message
        return exc


def _check_counts(trace: tracetool.Trace) -> None:
    for i in trace.inputs.itertuples():
        assert i.lines == i.events + i.other_lines + i.set_aside, i.path


def _same(a: tracetool.Trace, b: tracetool.Trace) -> None:
    """The same trace, whichever scanner read it."""
    assert np.array_equal(a.ts, b.ts)
    assert np.array_equal(a.tid, b.tid)
    assert np.array_equal(a.line, b.line) and np.array_equal(a.flags, b.flags)
    names_a, names_b = np.array(a.event_names, dtype=object), np.array(b.event_names, dtype=object)
    assert list(names_a[a.name_codes]) == list(names_b[b.name_codes])
    assert a.events["args"].astype(str).tolist() == b.events["args"].astype(str).tolist()
    assert a.inputs.drop(columns="path").equals(b.inputs.drop(columns="path"))
    assert a.other_lines["text"].tolist() == b.other_lines["text"].tolist()
    assert [str(w) for w in a.warnings] == [str(w) for w in b.warnings]
    assert a.threads["name"].tolist() == b.threads["name"].tolist()


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_damaged_input_is_read_or_refused_cleanly(
    tmp_path: Path, name: str, make: Callable[[Path, random.Random], Case]
) -> None:
    case = make(tmp_path, random.Random(f"{SEED}:{name}"))
    compiled = _load(case, "compiled")
    if isinstance(compiled, tracetool.Trace):
        _check_counts(compiled)
        assert all(w.path for w in compiled.warnings)
    if not case.text:
        return
    python = _load(case, "python")
    if isinstance(compiled, InputError) or isinstance(python, InputError):
        assert type(compiled) is type(python) and str(compiled) == str(python)
        return
    _check_counts(python)
    _same(compiled, python)
