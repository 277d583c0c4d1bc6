"""The LTTng reader (babeltrace / babeltrace2 text) and its typed decoding and log-text rendering,
checked against a plain parse of the real capture and against the log file of the same run."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tracetool
from parsers.inputs import InputFile
from parsers.lttng import read_lttng, unescape_babeltrace
from parsers.registry import ReadContext
from parsers.segment import ARGS_LTTNG, NO_TIME, Segment
from tests.conftest import read_lines, run_cli, sample

DIR = ("qemu-threadify-lttng", "a-precopy-mutex")
BABELTRACE = sample(*DIR, "lttng-babeltrace2.txt.xz")
LOG = sample(*DIR, "dst.trace.xz")
DAY_NS = 86_400 * 10**9

# The line grammar of the capture's RECORDING.md, as a plain regex.
LINE = re.compile(
    rb"^\[(\d\d):(\d\d):(\d\d)\.(\d{9})\] \(\+(?:\d+\.\d{9}|\?\.\?{9})\) (\S+) (\w+):(\w+): "
    rb'\{ cpu_id = (\d+) \}, \{ vpid = (\d+), vtid = (\d+), procname = "([^"]*)" \}, (\{.*\})$'
)


def _read(path: str, engine: str | None = None) -> Segment:
    seg = read_lttng([InputFile(path)], ReadContext(engine=engine))[0]
    seg.check()
    return seg


@functools.cache
def _read_sample() -> Segment:
    return _read(BABELTRACE)


@functools.cache
def _load(path: str) -> tracetool.Trace:
    return tracetool.load(path)


def _write(tmp_path: Path, name: str, lines: list[bytes]) -> str:
    p = tmp_path / name
    p.write_bytes(b"\n".join(lines) + b"\n")
    return str(p)


def _names(seg: Segment) -> list[str]:
    names = seg.names.to_list()
    return [names[c] for c in seg.name_code.tolist()]


def _payloads(seg: Segment) -> list[str]:
    """The stored payload block of each event (entries are ``EVENT { ... }``)."""
    values = [v.decode() for v in seg.args.values.to_pylist()]
    return [values[c].split(" ", 1)[1] for c in seg.args_code.tolist()]


def _threads(seg: Segment) -> list[str | None]:
    names = seg.thread_names.to_list()
    return [names[c] if c >= 0 else None for c in seg.thread_code.tolist()]


def _real_lines(count: int) -> list[bytes]:
    out = []
    for raw in read_lines(BABELTRACE):
        out.append(raw)
        if len(out) == count:
            break
    return out


@dataclass(frozen=True)
class Plain:
    ts: list[int]
    pid: list[int]
    tid: list[int]
    cpu: list[int]
    procname: list[str]
    name: list[str]
    payload: list[str]
    unmatched: int


@functools.cache
def _plain() -> Plain:
    groups = []
    unmatched = 0
    for raw in read_lines(BABELTRACE):
        m = LINE.match(raw)
        if m is None:
            unmatched += 1
        else:
            groups.append(m.groups())
    g = list(zip(*groups, strict=True))
    return Plain(
        ts=[
            (int(h) * 3600 + int(mi) * 60 + int(s)) * 10**9 + int(ns)
            for h, mi, s, ns in zip(g[0], g[1], g[2], g[3], strict=True)
        ],
        cpu=[int(x) for x in g[7]],
        pid=[int(x) for x in g[8]],
        tid=[int(x) for x in g[9]],
        procname=[x.decode() for x in g[10]],
        name=[
            x.decode() if p == b"qemu" else f"{p.decode()}:{x.decode()}"
            for p, x in zip(g[5], g[6], strict=True)
        ],
        payload=[x.decode() for x in g[11]],
        unmatched=unmatched,
    )


# ---------------------------------------------------------------- the real capture


def test_real_capture_matches_a_plain_parse() -> None:
    seg = _read_sample()
    plain = _plain()
    assert (seg.format, seg.variant, seg.clock) == ("lttng", "time-of-day", "time-of-day")
    assert plain.unmatched == seg.other_lines == 0
    assert seg.events == seg.lines == len(plain.ts)
    assert seg.ts.tolist() == plain.ts
    assert seg.pid.tolist() == plain.pid
    assert seg.tid.tolist() == plain.tid
    assert seg.extra["cpu"].tolist() == plain.cpu
    assert _threads(seg) == plain.procname
    assert _names(seg) == plain.name
    assert _payloads(seg) == plain.payload
    assert seg.args_encoding == ARGS_LTTNG


def test_dst_process_equals_its_log_twin_but_for_the_start_and_end() -> None:
    """Same run: every event of the dst process (vpid) rendered back to log text is in the log
    file, except events LTTng recorded before the log backend was set up (before the log's
    first line) and events the log wrote after LTTng's last one. Three vmstate_subsection_load_bad
    events carry a different third string in the two recordings (the raw lines show it)."""
    lt = _load(BABELTRACE)
    log = _load(LOG)
    with open(sample(*DIR, "dst-threads.json")) as f:
        dst_pid = json.load(f)["pid"]
    ev = lt.events
    mine = ev[ev["pid"] == dst_pid]
    theirs = log.events
    pair = ["event", "args"]
    a = Counter(map(tuple, mine[pair].astype(str).to_numpy().tolist()))
    b = Counter(map(tuple, theirs[pair].astype(str).to_numpy().tolist()))
    only_lttng, only_log = a - b, b - a
    # LTTng prints the UTC time of day; the log prints UTC wall time.
    first_log = int(theirs["ts_ns"].min()) % DAY_NS
    last_lttng = int(mine["ts_ns"].max())
    early = mine[mine["ts_ns"] < first_log]
    late = theirs[theirs["ts_ns"] % DAY_NS > last_lttng]
    odd_lttng = {k: v for k, v in only_lttng.items() if k[0] == "vmstate_subsection_load_bad"}
    odd_log = {k: v for k, v in only_log.items() if k[0] == "vmstate_subsection_load_bad"}
    before = Counter(map(tuple, early[pair].astype(str).to_numpy().tolist()))
    after = Counter(map(tuple, late[pair].astype(str).to_numpy().tolist()))
    # The log's first line is the last of the early events (the unlock of the log's own lock).
    first_line = next(read_lines(LOG)).decode().split(" ", 1)[1]
    assert Counter(only_lttng) - Counter(odd_lttng) + Counter({tuple(first_line.split(" ", 1)): 1}) == before
    assert Counter(only_log) - Counter(odd_log) == after
    assert len(before) > 0 and len(after) > 0
    assert sorted(k[1].replace("/(prefix)", "/") for k in odd_lttng) == sorted(k[1] for k in odd_log)
    # The capture's RECORDING.md counts: 217499 LTTng events of the dst process, 217484 log lines.
    assert (len(mine), len(theirs)) == (217499, 217484)


def test_decoded_fields_equal_the_log_decoding() -> None:
    lt = _load(BABELTRACE)
    log = _load(LOG)
    with open(sample(*DIR, "dst-threads.json")) as f:
        dst_pid = json.load(f)["pid"]
    first_log = int(log.events["ts_ns"].min()) % DAY_NS
    ev = lt.events
    for event in (
        "qemu_mutex_lock",
        "qemu_mutex_locked",
        "ram_load_loop",
        "runstate_set",
        "qmp_exit_query_migrate",
        "migrate_set_state",
        "vmstate_n_elems",
        "qemu_loadvm_state_section_startfull",
        "vm_state_notify",
    ):
        rows = ev.index[(ev["event"] == event) & (ev["pid"] == dst_pid) & (ev["ts_ns"] >= first_log)]
        mine = lt.fields(event).loc[rows]
        theirs = log.fields(event)
        assert list(mine.columns) == list(theirs.columns), event
        assert mine["decoded"].all() and theirs["decoded"].all(), event
        for col in theirs.columns:
            assert mine[col].dtype == theirs[col].dtype, (event, col)
        cols = [c for c in theirs.columns if c != "decoded"]
        got = Counter(map(tuple, mine[cols].astype(str).to_numpy().tolist()))
        want = Counter(map(tuple, theirs[cols].astype(str).to_numpy().tolist()))
        # Events the log wrote after LTTng stopped are the only ones allowed to be missing.
        assert got - want == Counter(), event
        assert sum((want - got).values()) <= 2, event


def test_summary_shows_procnames_and_roles() -> None:
    out = run_cli("summary", "--format", "json", BABELTRACE)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [(i["format"], i["variant"], i["clock"]) for i in data["inputs"]] == [
        ("lttng", "time-of-day", "time-of-day")
    ]
    threads = {(t["process"], t["tid"]): t for t in data["threads"]}
    for side in ("dst", "src"):
        with open(sample(*DIR, f"{side}-threads.json")) as f:
            proc = json.load(f)
        for tid, name in proc["tid_to_name"].items():
            if (side, int(tid)) in threads:  # sampled threads that logged nothing are absent
                assert threads[(side, int(tid))]["name"] == name
        assert {p["label"]: p["pid"] for p in data["processes"]}[side] == proc["pid"]
    [load] = [t for t in data["threads"] if t["role"] == "load"]
    assert (load["process"], load["name"], load["carries_load"]) == ("dst", "mig/dst/main", True)


# ---------------------------------------------------------------- edge cases from real lines


def test_lines_without_context_blocks(tmp_path: Path, engine: str) -> None:
    real = _real_lines(300)
    no_ctx = [re.sub(rb"\{ vpid = [^}]*\}, ", b"", ln) for ln in real]
    bare = [re.sub(rb"\{ cpu_id = \d+ \}, ", b"", ln) for ln in no_ctx]
    base = _read(_write(tmp_path, "real.txt", real), engine)
    for name, lines in (("no-ctx.txt", no_ctx), ("bare.txt", bare)):
        seg = _read(_write(tmp_path, name, lines), engine)
        assert seg.other_lines == 0 and (seg.tid == -1).all() and (seg.pid == -1).all()
        assert (seg.thread_code == -1).all()
        assert np.array_equal(seg.ts, base.ts)
        assert _names(seg) == _names(base) and _payloads(seg) == _payloads(base)
    assert (_read(_write(tmp_path, "b.txt", bare), engine).extra["cpu"] == -1).all()


def test_delta_forms_and_hostless_lines(tmp_path: Path, engine: str) -> None:
    real = _real_lines(50)
    assert b"(+?.?????????)" in real[0]  # babeltrace's first line has no delta
    no_delta = [re.sub(rb"\) \(\+[^)]*\) ", b") ", re.sub(rb"\] \(\+[^)]*\) ", b"] ", ln)) for ln in real]
    no_host = [ln.replace(b") vm qemu:", b") qemu:", 1) for ln in real]
    base = _read(_write(tmp_path, "real.txt", real), engine)
    for lines in (no_delta, no_host):
        assert lines != real
        seg = _read(_write(tmp_path, "x.txt", lines), engine)
        assert np.array_equal(seg.ts, base.ts) and _names(seg) == _names(base)
        assert _payloads(seg) == _payloads(base) and np.array_equal(seg.tid, base.tid)


def test_clock_forms(tmp_path: Path, engine: str) -> None:
    """--clock-date (read as UTC wall time), --clock-seconds (Epoch seconds), --clock-cycles and
    a stream without clock; the capture's date comes from its log twin."""
    real = _real_lines(20)
    first_log = next(read_lines(LOG)).split(b" ", 1)[0].decode()  # 2026-11-26T12:28:02.256728Z
    date = first_log[:10]
    midnight = int(datetime.fromisoformat(date).replace(tzinfo=UTC).timestamp()) * 10**9
    tod = _read(_write(tmp_path, "tod.txt", real), engine)
    dated = [ln.replace(b"[", b"[" + date.encode() + b" ", 1) for ln in real]
    seg = _read(_write(tmp_path, "date.txt", dated), engine)
    assert (seg.variant, seg.clock) == ("date", "wall")
    assert (seg.ts - tod.ts == midnight).all()
    seconds = [
        re.sub(rb"^\[[^\]]*\]", f"[{(midnight + t) // 10**9}.{(midnight + t) % 10**9:09d}]".encode(), ln)
        for ln, t in zip(real, tod.ts.tolist(), strict=True)
    ]
    seg = _read(_write(tmp_path, "sec.txt", seconds), engine)
    assert (seg.variant, seg.clock) == ("seconds", "wall") and (seg.ts - tod.ts == midnight).all()
    cycles = [
        re.sub(rb"^\[[^\]]*\]", f"[{t:020d}]".encode(), ln)
        for ln, t in zip(real, tod.ts.tolist(), strict=True)
    ]
    seg = _read(_write(tmp_path, "cyc.txt", cycles), engine)
    assert (seg.variant, seg.clock) == ("cycles", "monotonic") and np.array_equal(seg.ts, tod.ts)
    none = [re.sub(rb"^\[[^\]]*\]", b"[??:??:??.?????????]", ln) for ln in real]
    seg = _read(_write(tmp_path, "none.txt", none), engine)
    assert seg.clock == "none" and (seg.ts == NO_TIME).all() and seg.events == len(real)


def test_time_of_day_crosses_midnight(tmp_path: Path, engine: str) -> None:
    real = _real_lines(4)
    stamps = [b"23:59:59.999999000", b"23:59:59.999999500", b"00:00:00.000000200", b"00:00:01.000000000"]
    lines = [re.sub(rb"^\[[^\]]*\]", b"[" + s + b"]", ln) for s, ln in zip(stamps, real, strict=True)]
    seg = _read(_write(tmp_path, "midnight.txt", lines), engine)
    last_second = 86_399 * 10**9
    assert seg.ts.tolist() == [
        last_second + 999_999_000,
        last_second + 999_999_500,
        DAY_NS + 200,
        DAY_NS + 10**9,
    ]
    assert seg.details["midnight_crossings"] == 1


def test_escaped_and_raw_quoted_strings(tmp_path: Path, engine: str) -> None:
    """babeltrace2 escapes \\ " ' ? and control characters; babeltrace 1 prints strings raw."""
    real = next(ln for ln in _real_lines(400) if b"qemu:qemu_mutex_lock:" in ln)
    escaped = real.replace(b'file = "', b'file = "dir\\\\sub\\"q\\?\\\'\\n\\x01/', 1)
    raw = next(ln for ln in read_lines(BABELTRACE) if b"qmp_exit_query_migrate:" in ln)
    bt1 = raw.replace(b'\\"', b'"')  # what babeltrace 1 prints for the same event
    # A raw quote followed by ", " is no end of the value unless a field name follows.
    tricky = re.sub(
        rb"qemu:\w+: (.*), \{[^{]*\}$",
        rb'qemu:vmstate_downtime_checkpoint: \1, { checkpoint = "say "a", }b" }',
        real,
    )
    lines = [escaped, raw, bt1, tricky]
    path = _write(tmp_path, "strings.txt", lines)
    trace = tracetool.load(path, input_format="lttng", engine=engine)
    assert trace.fields("vmstate_downtime_checkpoint")["checkpoint"].tolist() == ['say "a", }b']
    lock = trace.fields("qemu_mutex_lock")
    assert lock["file"].iloc[0].startswith("dir\\sub\"q?'\n\x01/")
    result = trace.fields("qmp_exit_query_migrate")
    want = unescape_babeltrace(raw.split(b'result = "', 1)[1].rsplit(b'", succeeded', 1)[0].decode())
    assert want.startswith('{"') and result["result"].tolist() == [want, want]
    assert result["succeeded"].tolist() == [1, 1] and result["decoded"].all()


def test_render_gives_the_log_text(tmp_path: Path) -> None:
    """events["args"] of an LTTng trace is the log backend's text: lower-case %p, site as
    (file:line), and payloads no definition fits are shown as babeltrace printed them."""
    real = _real_lines(3)
    odd = re.sub(rb"\{ mutex = .*\}$", b'{ something = 1, else = "x" }', real[0])
    path = _write(tmp_path, "render.txt", [*real, odd])
    trace = tracetool.load(path)
    args = trace.events.sort_values("line")["args"].astype(str).tolist()
    for ln, text in zip(real, args[:3], strict=True):
        m = re.search(rb'mutex = 0x([0-9A-F]+), file = "([^"]*)", line = (\d+)', ln)
        assert m is not None
        assert text.endswith(
            f"mutex 0x{m.group(1).decode().lower()} ({m.group(2).decode()}:{m.group(3).decode()})"
        )
    assert args[3] == '{ something = 1, else = "x" }'
    assert not trace.fields("qemu_mutex_lock")["decoded"].iloc[-1]


def test_other_providers_discarded_events_and_garbage(tmp_path: Path, engine: str) -> None:
    real = _real_lines(10)
    statedump = re.sub(rb"qemu:\w+: (.*), \{[^{]*\}$", rb"lttng_ust_statedump:start: \1, { }", real[1])
    lines = [
        real[0],
        statedump,
        b"WARNING: Tracer discarded 7 events between [12:28:03.1] and [12:28:03.2] in trace "
        b'"x" (no UUID) within stream "ch0_0" (stream class ID: 0, stream ID: 0).',
        b"not a babeltrace line",
        b"[12:28:02.237975789] (+?.?????????) vm qemu:broken: { x = ",
        *real[2:],
    ]
    path = _write(tmp_path, "odd.txt", lines)
    seg = _read(path, engine)
    assert _names(seg)[1] == "lttng_ust_statedump:start" and _payloads(seg)[1] == "{ }"
    assert seg.dropped_events == [(3, 7)]
    assert seg.other_line.tolist() == [4, 5]
    assert seg.events == len(lines) - 3
    assert any(str(w).startswith(f"{path}:3: LTTng discarded 7") for w in seg.warnings)


def test_compiled_and_python_scanners_agree(tmp_path: Path) -> None:
    head = _real_lines(20000)
    head += [
        b'[23:59:59.000000001] (+0.1) h qemu:x: { s = "a\\"b" }',
        b"junk",
        b"[2026-11-26 12:28:02.237975789] qemu:y: { cpu_id = 1 }, { }",
    ]
    p = _write(tmp_path, "head.txt", head)
    a, b = _read(p, "compiled"), _read(p, "python")
    for col in ("ts", "tid", "pid", "line", "flags", "other_line", "thread_code"):
        assert np.array_equal(getattr(a, col), getattr(b, col)), col
    assert np.array_equal(a.extra["cpu"], b.extra["cpu"])
    assert _names(a) == _names(b) and _payloads(a) == _payloads(b)
    assert _threads(a) == _threads(b) and a.other_text == b.other_text


def test_events_frame_and_fields_have_log_dtypes() -> None:
    trace = _load(BABELTRACE)
    frame = trace.fields("ram_load_loop")
    assert str(frame["addr"].dtype) == "UInt64" and str(frame["host"].dtype) == "UInt64"
    assert frame["rbname"].dtype == pd.StringDtype("pyarrow")
    # flags is printed "0x%x" by QEMU and recorded as hex by LTTng: both give the same number.
    raw = next(ln for ln in read_lines(BABELTRACE) if b"qemu:ram_load_loop:" in ln)
    m = re.search(rb"addr = 0x([0-9A-F]+), flags = 0x([0-9A-F]+), host = 0x([0-9A-F]+)", raw)
    assert m is not None
    first = frame.iloc[0]
    assert (first["addr"], first["flags"], first["host"]) == tuple(int(x, 16) for x in m.groups())


@pytest.mark.parametrize(
    "text,expected",
    [
        ("plain", "plain"),
        ('a\\"b', 'a"b'),
        ("a\\\\b", "a\\b"),
        ("\\?\\'", "?'"),
        ("\\n\\t\\x7f", "\n\t\x7f"),
        ("\\e\\0", "\x1b\0"),
        ("\\a\\b\\f\\v\\r", "\a\b\f\v\r"),
    ],
)
def test_unescape_babeltrace(text: str, expected: str) -> None:
    assert unescape_babeltrace(text) == expected


def test_null_strings_are_missing_values_and_print_as_glibc_does(tmp_path: Path) -> None:
    """lttng-ust records a NULL string as "(null)", the text glibc prints for the log backend:
    the typed field is NA (as the text decoder reads "(null)"), the rendered text keeps it."""
    real = next(ln for ln in read_lines(BABELTRACE) if b"qemu:vmstate_load:" in ln)
    null = re.sub(rb'idstr = "[^"]*"', b'idstr = "(null)"', real)
    trace = tracetool.load(_write(tmp_path, "null.txt", [real, null]))
    fields = trace.fields("vmstate_load").sort_index()
    m = re.search(rb'idstr = "([^"]*)", vmsd_name = "([^"]*)"', real)
    assert m is not None
    assert fields["idstr"].iloc[0] == m.group(1).decode() and pd.isna(fields["idstr"].iloc[1])
    assert fields["decoded"].all()
    args = trace.events.sort_values("line")["args"].astype(str).tolist()
    assert args == [f"{m.group(1).decode()}, {m.group(2).decode()}", f"(null), {m.group(2).decode()}"]


def test_hex_recorded_signed_arguments_are_sign_extended(tmp_path: Path) -> None:
    """LTTng prints a ctf_integer_hex of a signed 32-bit argument masked to 32 bits
    (0xFFFFFFFF for -1). QEMU hands its backends the sign-extended 64-bit value, so a 64-bit
    conversion of that argument reads -1, as the simple backend decoder reads it too."""
    events = tmp_path / "trace-events"
    events.write_text('widen_test(int narrow, uint32_t unsigned_narrow) "%" PRId64 " %" PRIu64\n')
    real = _real_lines(1)[0]
    line = re.sub(
        rb"qemu:\w+: (.*), \{[^{]*\}$",
        rb"qemu:widen_test: \1, { narrow = 0xFFFFFFFF, unsigned_narrow = 0xFFFFFFFF }",
        real,
    )
    trace = tracetool.load(_write(tmp_path, "widen.txt", [line]), events=[str(events)])
    fields = trace.fields("widen_test")
    assert fields["narrow"].tolist() == [-1] and fields["unsigned_narrow"].tolist() == [2**32 - 1]
    assert trace.events["args"].astype(str).tolist() == [f"-1 {2**32 - 1}"]
