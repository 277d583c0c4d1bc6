"""SystemTap ``log_stap`` output: generated from real log traces by scripts/make_stap.py, then read
back by the log reader (format "stap") and analysed."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

import tracetool
from tests.conftest import REPO, read_lines, run_cli, sample
from tracetool._events.eventdefs import parse_trace_events

POSTCOPY = ("qemu-threadify", "d-postcopy-preempt")  # its src log has (null) and (nil) arguments
OLD_ERA = ("qemu-7.2", "a-precopy-plain")  # TID@SEC.USEC lines
ISO_LINE = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.?(\d*)Z (\w+) ?(.*)")
TID_LINE = re.compile(r"(\d+)@(\d+)\.(\d+):(\w+) ?(.*)")
STAP_LINE = re.compile(r"(\d+)@(\d+) (\w+) ?(.*)")


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_stap", REPO / "scripts" / "make_stap.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_stap"] = module
    spec.loader.exec_module(module)
    return module


make_stap = _script()


Generate = Callable[[tuple[str, str], str], tuple[str, int]]


@pytest.fixture(scope="module")
def generate(tmp_path_factory: pytest.TempPathFactory) -> Generate:
    """Makes (once per module) the stap file of a sample log; returns it and its pid."""
    made: dict[tuple[tuple[str, str], str], tuple[str, int]] = {}

    def get(folder: tuple[str, str], side: str) -> tuple[str, int]:
        if (folder, side) not in made:
            sidecar = sample(*folder, f"{side}-threads.json")
            out = tmp_path_factory.mktemp("stap") / f"{side}.stap.log"
            rc = make_stap.main([sample(*folder, f"{side}.trace.xz"), "--threads", sidecar, "-o", str(out)])
            assert rc == 0
            with open(sidecar) as f:
                made[(folder, side)] = (str(out), int(json.load(f)["pid"]))
        return made[(folder, side)]

    return get


def _plain_log(path: str) -> list[tuple[int, str, str]]:
    """(ns, event, args) of every line of a log trace, read the plain way."""
    from datetime import UTC, datetime

    out = []
    for raw in read_lines(path):
        line = raw.decode()
        m = TID_LINE.fullmatch(line)
        if m:
            ns = int(m.group(2)) * 10**9 + int(m.group(3).ljust(9, "0"))
            out.append((ns, m.group(4), m.group(5)))
            continue
        m = ISO_LINE.fullmatch(line)
        assert m, line
        y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
        secs = int(datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp())
        out.append((secs * 10**9 + int(m.group(7).ljust(9, "0") or 0), m.group(8), m.group(9)))
    return out


def _plain_stap(path: str) -> list[tuple[int, int, str, str]]:
    out = []
    for raw in read_lines(path):
        m = STAP_LINE.fullmatch(raw.decode())
        assert m, raw
        out.append((int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)))
    return out


# ---------------------------------------------------------------- generated from real traces


@pytest.mark.parametrize("folder", [POSTCOPY, OLD_ERA])
def test_generated_lines_follow_the_log_line_for_line(generate: Generate, folder: tuple[str, str]) -> None:
    """Same events, same times in ns, the process id on every line; the argument text differs
    only where glibc and SystemTap print NULL differently."""
    side = "src" if folder == POSTCOPY else "dst"
    path, pid = generate(folder, side)
    log = _plain_log(sample(*folder, f"{side}.trace.xz"))
    stap = _plain_stap(path)
    assert len(stap) == len(log)
    assert {p for p, _, _, _ in stap} == {pid}
    assert [(t, n) for _, t, n, _ in stap] == [(t, n) for t, n, _ in log]
    expected = [a.replace("(null)", "<null>").replace("=(nil)", "=0x0") for _, _, a in log]
    assert [a for _, _, _, a in stap] == expected
    if folder == POSTCOPY:
        assert any("<null>" in a for a in expected) and any("=0x0" in a for a in expected)


def test_stap_file_reads_as_one_process_without_threads(generate: Generate) -> None:
    path, pid = generate(POSTCOPY, "src")
    out = run_cli("summary", "--format", "json", path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    [inp] = data["inputs"]
    assert (inp["format"], inp["variant"], inp["clock"]) == ("stap", "stap", "wall")
    [proc] = data["processes"]
    assert proc["pid"] == pid and proc["side"] == "src"
    assert [t["tid"] for t in data["threads"]] == [None]
    log = _plain_log(sample(*POSTCOPY, "src.trace.xz"))
    counts: dict[str, int] = {}
    for _, name, _ in log:
        counts[name] = counts.get(name, 0) + 1
    assert data["event_counts"] == counts


def test_decoded_fields_equal_the_log_decoding(generate: Generate) -> None:
    path, _ = generate(POSTCOPY, "src")
    stap = tracetool.load(path)
    log = tracetool.load(sample(*POSTCOPY, "src.trace.xz"))
    for event in (
        "migrate_handle_rp_req_pages",
        "migration_set_outgoing_channel",
        "ram_save_iterate_big_wait",
        "migrate_transferred",
        "savevm_section_start",
        "migration_bitmap_sync_end",
        "qmp_exit_query_migrate",
    ):
        if log.code_of(event) is None:
            continue
        mine = stap.fields(event).reset_index(drop=True)
        theirs = log.fields(event).reset_index(drop=True)
        assert list(mine.columns) == list(theirs.columns) and mine["decoded"].all(), event
        for col in theirs.columns:
            assert mine[col].dtype == theirs[col].dtype, (event, col)
            if pd.api.types.is_string_dtype(theirs[col]):
                null = theirs[col].isna()
                assert (mine.loc[~null, col] == theirs.loc[~null, col]).all(), (event, col)
                assert (mine.loc[null, col].isna() | (mine.loc[null, col] == "<null>")).all()
            else:
                assert mine[col].equals(theirs[col]), (event, col)


def test_null_strings_decode_as_missing(generate: Generate) -> None:
    path, _ = generate(POSTCOPY, "src")
    stap = tracetool.load(path)
    log = tracetool.load(sample(*POSTCOPY, "src.trace.xz"))
    mine = stap.fields("migrate_handle_rp_req_pages").reset_index(drop=True)
    theirs = log.fields("migrate_handle_rp_req_pages").reset_index(drop=True)
    assert theirs["rbname"].isna().any()
    assert mine["rbname"].isna().equals(theirs["rbname"].isna())


# ---------------------------------------------------------------- SystemTap's printf rules


def _piece(line: str, field: str) -> object:
    [event] = parse_trace_events(line + "\n")
    [piece] = [p for p in make_stap.stap_pieces(event) if not isinstance(p, str) and p.field == field]
    return piece


@pytest.mark.parametrize(
    "definition,value,expected",
    [
        # %x of an int prints 32 bits with glibc; SystemTap holds the sign-extended 64-bit value.
        ('f(int v) "%x"', 0xFFFFFFFF, "ffffffffffffffff"),
        ('f(int v) "%08x"', 0x2A, "0000002a"),
        # %d of a uint32_t 4294967295 prints -1 with glibc; SystemTap zero-extends it.
        ('f(uint32_t v) "%d"', -1, "4294967295"),
        ('f(int v) "%d"', -5, "-5"),
        ('f(uint64_t v) "%" PRIx64', 0xDEADBEEF00, "deadbeef00"),
        ('f(uint64_t v) "%" PRIu64', 2**64 - 1, "18446744073709551615"),
        ('f(size_t v) "%zu"', 7, "7"),
        ('f(long v) "%ld"', -7, "-7"),
        ('f(void *v) "%p"', 0, "0x0"),
        ('f(void *v) "%p"', 0x55AC7FDB6600, "0x55ac7fdb6600"),
        ('f(const char *v) "%s"', None, "<null>"),
        ('f(const char *v) "%s"', "x" * 600, "x" * 511),
        ('f(bool v) "%d"', 1, "1"),
    ],
)
def test_stap_printf(definition: str, value: object, expected: str) -> None:
    piece = _piece(definition, "v")
    assert make_stap.format_stap(piece, value, make_stap.DEFAULT_STRING_LIMIT) == expected


def test_generator_refuses_traces_without_time_or_pid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = ("qemu-7.2", "g-precopy-plain-notimestamp")
    rc = make_stap.main([sample(*folder, "dst.trace.xz"), "--pid", "1", "-o", str(tmp_path / "x")])
    assert rc == 2 and "timestamp" in capsys.readouterr().err
    rc = make_stap.main([sample(*OLD_ERA, "dst.trace.xz"), "-o", str(tmp_path / "y")])
    assert rc == 2 and "--pid" in capsys.readouterr().err
