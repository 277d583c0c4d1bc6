"""The ftrace reader: tracefs text (with and without TGID, 4/5-char flags, ``<...>`` comms),
``trace-cmd report``, QEMU's 511-byte marker limit, kernel events, and the log twin."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tracetool
from parsers.ftrace import read_ftrace
from parsers.inputs import InputFile
from parsers.registry import ReadContext
from parsers.segment import EVENT_BAD_UTF8, EVENT_TRUNCATED, Segment
from tests.conftest import read_lines, run_cli, sample

A_DIR = ("qemu-threadify-ftrace", "a-precopy-mutex")
D_DIR = ("qemu-threadify-ftrace", "d-precopy-mutex-trace-cmd")
E_DIR = ("qemu-threadify-ftrace", "e-precopy-markers-only")
A_FTRACE = sample(*A_DIR, "ftrace.txt.xz")
D_REPORT = sample(*D_DIR, "trace-cmd-report.txt.xz")
E_FTRACE = sample(*E_DIR, "ftrace.txt.xz")
KERNEL_TASK_EVENTS = ["task_newtask", "task_rename"]

# The regex of the capture's README (every line of a/e matches it), plus trace-cmd's form.
TRACEFS = re.compile(
    rb"^\s*(?P<comm>.+?)-(?P<tid>\d+)\s+(?:\(\s*(?P<tgid>[-\d]+)\)\s+)?\[(?P<cpu>\d+)\]\s+"
    rb"(?P<flags>\S{4,5})\s+(?P<ts>\d+\.\d+):\s+(?P<event>[A-Za-z0-9_:]+):\s?(?P<msg>.*)$"
)
TRACE_CMD = re.compile(
    rb"^\s*(?P<comm>.+?)-(?P<tid>\d+)\s+\[(?P<cpu>\d+)\]\s+(?P<ts>\d+\.\d+):\s+"
    rb"(?P<event>[A-Za-z0-9_]+):\s+(?:tracing_mark_write: )?(?P<msg>.*)$"
)


def _read(path: str, engine: str | None = None) -> Segment:
    seg = read_ftrace([InputFile(path)], ReadContext(engine=engine))[0]
    seg.check()
    return seg


def _write(tmp_path: Path, name: str, lines: list[bytes]) -> str:
    p = tmp_path / name
    p.write_bytes(b"\n".join(lines) + b"\n")
    return str(p)


def _names(seg: Segment) -> list[str]:
    names = seg.names.to_list()
    return [names[c] for c in seg.name_code.tolist()]


def _args(seg: Segment) -> list[str]:
    args = seg.args.to_list()
    return [args[c] for c in seg.args_code.tolist()]


def _threads(seg: Segment) -> list[str | None]:
    names = seg.thread_names.to_list()
    return [names[c] if c >= 0 else None for c in seg.thread_code.tolist()]


def _ns(ts: bytes) -> int:
    sec, frac = ts.split(b".")
    return int(sec) * 10**9 + int(frac.ljust(9, b"0"))


@dataclass(frozen=True)
class Plain:
    """A capture parsed line by line with a plain regex, one list per column."""

    line: list[int]
    comm: list[str]
    tid: list[int]
    tgid: list[int]
    cpu: list[int]
    ts: list[int]
    name: list[str]
    args: list[str]
    marker_bytes: list[int]  # length of a marker's text, -1 for kernel events
    header: int  # '#' lines (and trace-cmd's "cpus=N")
    other: int  # lines the regex does not match


@functools.cache
def _plain(path: str, regex: re.Pattern[bytes]) -> Plain:
    matches = []
    header = other = 0
    for i, raw in enumerate(read_lines(path), start=1):
        if raw.startswith((b"#", b"cpus=")):
            header += 1
            continue
        m = regex.match(raw)
        if m is None:
            other += 1
        else:
            matches.append((i, m))
    keys = ("comm", "tid", "tgid", "cpu", "ts", "event", "msg")
    if "tgid" not in regex.groupindex:
        keys = ("comm", "tid", "comm", "cpu", "ts", "event", "msg")
    g = list(zip(*[m.group(*keys) for _, m in matches], strict=True)) or [()] * 7
    marker = [e in (b"tracing_mark_write", b"print") for e in g[5]]
    split = [
        m.decode().partition(" ") if k else (e.decode(), "", m.decode().lstrip(" "))
        for k, e, m in zip(marker, g[5], g[6], strict=True)
    ]
    return Plain(
        line=[i for i, _ in matches],
        comm=[c.decode() for c in g[0]],
        tid=[int(t) for t in g[1]],
        tgid=[int(t) if "tgid" in regex.groupindex and t else -1 for t in g[2]],
        cpu=[int(c) for c in g[3]],
        ts=[_ns(t) for t in g[4]],
        name=[n for n, _, _ in split],
        args=[a for _, _, a in split],
        marker_bytes=[len(m) if k else -1 for k, m in zip(marker, g[6], strict=True)],
        header=header,
        other=other,
    )


@functools.cache
def _read_sample(path: str) -> Segment:
    return _read(path)


# ---------------------------------------------------------------- the real captures


def test_tracefs_with_tgid_matches_a_plain_parse() -> None:
    seg = _read_sample(A_FTRACE)
    plain = _plain(A_FTRACE, TRACEFS)
    assert (seg.format, seg.variant, seg.clock) == ("ftrace", "tracefs+tgid", "ftrace-local")
    assert seg.lines == len(plain.line) + plain.header + plain.other
    assert seg.details["lines.header"] == plain.header and plain.header > 0
    assert seg.other_lines == plain.other == 0
    assert seg.line.tolist() == plain.line
    assert seg.tid.tolist() == plain.tid
    assert seg.pid.tolist() == plain.tgid
    assert seg.extra["cpu"].tolist() == plain.cpu
    assert seg.ts.tolist() == plain.ts
    assert _names(seg) == plain.name
    assert _args(seg) == plain.args
    assert _threads(seg) == plain.comm


def test_markers_only_capture_has_no_comm_and_no_tgid() -> None:
    seg = _read_sample(E_FTRACE)
    plain = _plain(E_FTRACE, TRACEFS)
    assert (seg.format, seg.variant) == ("ftrace", "tracefs")
    assert set(plain.comm) == {"<...>"}
    assert (seg.thread_code == -1).all() and (seg.pid == -1).all()
    assert seg.details["lines.header"] == plain.header and plain.other == seg.other_lines == 0
    assert Counter(zip(seg.tid.tolist(), _names(seg), strict=True)) == Counter(
        zip(plain.tid, plain.name, strict=True)
    )
    # The TIDs the /proc sampler saw for each process are exactly the TIDs that wrote markers.
    sampled = set()
    for side in ("dst", "src"):
        with open(sample(*E_DIR, f"{side}-threads.json")) as f:
            sampled |= {int(t) for t in json.load(f)["tid_to_name"]}
    assert set(seg.tid.tolist()) <= sampled


def test_trace_cmd_report_matches_a_plain_parse() -> None:
    seg = _read_sample(D_REPORT)
    plain = _plain(D_REPORT, TRACE_CMD)
    assert (seg.format, seg.variant) == ("trace-cmd", "no-flags")
    assert seg.details["lines.header"] == plain.header == 1  # "cpus=2"
    assert seg.other_lines == plain.other == 0
    assert seg.line.tolist() == plain.line
    assert seg.ts.tolist() == plain.ts
    assert seg.tid.tolist() == plain.tid
    assert seg.extra["cpu"].tolist() == plain.cpu
    assert _names(seg) == plain.name
    assert _args(seg) == plain.args
    assert _threads(seg) == plain.comm


def test_trace_cmd_processes_come_from_task_newtask() -> None:
    """trace-cmd report prints no TGID: a clone without CLONE_THREAD starts a process, a thread
    joins its creator's process. The result must agree with the /proc samples of both QEMUs."""
    seg = _read_sample(D_REPORT)
    tid_pid = dict(zip(seg.tid.tolist(), seg.pid.tolist(), strict=True))
    for side in ("dst", "src"):
        with open(sample(*D_DIR, f"{side}-threads.json")) as f:
            side_map = json.load(f)
        for tid in side_map["tid_to_name"]:
            if int(tid) in tid_pid:
                assert tid_pid[int(tid)] == side_map["pid"], (side, tid)
    # The short-lived io-task-worker, missed by the sampler, is a thread of the source.
    worker = [t for t, n in zip(seg.tid.tolist(), _threads(seg), strict=True) if n == "io-task-worker"]
    with open(sample(*D_DIR, "src-threads.json")) as f:
        src_pid = json.load(f)["pid"]
    assert worker and {tid_pid[t] for t in worker} == {src_pid}


def test_marker_bodies_at_qemus_511_byte_limit_are_flagged() -> None:
    seg = _read_sample(A_FTRACE)
    plain = _plain(A_FTRACE, TRACEFS)
    at_limit = [ln for ln, n in zip(plain.line, plain.marker_bytes, strict=True) if n == 511]
    flagged = seg.line[(seg.flags & EVENT_TRUNCATED) != 0].tolist()
    assert flagged == at_limit and len(at_limit) > 0
    names = np.array(_names(seg))
    assert set(names[(seg.flags & EVENT_TRUNCATED) != 0]) == {"qmp_exit_query_migrate"}
    [warning] = [w for w in seg.warnings if "511" in w.message]
    assert warning.line == at_limit[0] and f"{len(at_limit)} QEMU marker" in warning.message
    assert seg.details["markers.at_limit"] == len(at_limit)


def test_kernel_events_are_kept_as_events_of_their_own() -> None:
    seg = _read_sample(A_FTRACE)
    plain = _plain(A_FTRACE, TRACEFS)
    kernel = [(n, a) for n, a, b in zip(plain.name, plain.args, plain.marker_bytes, strict=True) if b < 0]
    got = [(n, a) for n, a in zip(_names(seg), _args(seg), strict=True) if n in KERNEL_TASK_EVENTS]
    assert got == kernel and {n for n, _ in kernel} == set(KERNEL_TASK_EVENTS)
    assert seg.details["lines.kernel"] == len(kernel)


def test_dst_process_equals_its_log_twin() -> None:
    """Same run, same generated function writes both: the dst process (by TGID) holds every
    log line except the first qemu_mutex_unlock, written before QEMU opened trace_marker."""
    trace = tracetool.load(A_FTRACE)
    log = tracetool.load(sample(*A_DIR, "dst.trace.xz"))
    with open(sample(*A_DIR, "dst-threads.json")) as f:
        dst_pid = json.load(f)["pid"]
    ev = trace.events
    mine = ev[(ev["pid"] == dst_pid) & ~ev["event"].isin(KERNEL_TASK_EVENTS)]
    theirs = log.events
    a = Counter(zip(mine["event"].astype(str), mine["args"].astype(str), strict=True))
    b = Counter(zip(theirs["event"].astype(str), theirs["args"].astype(str), strict=True))
    assert a - b == Counter()
    first_log_line = next(read_lines(sample(*A_DIR, "dst.trace.xz"))).decode()
    name, args = first_log_line.split(" ", 2)[1:]
    assert b - a == Counter({(name, args): 1}) and name == "qemu_mutex_unlock"
    # Decoded arguments agree too (same decoder; checked on the events analyses use most).
    for event in (
        "qemu_mutex_lock",
        "qemu_mutex_locked",
        "ram_load_loop",
        "qemu_loadvm_state_section_startfull",
    ):
        mf = trace.fields(event).loc[mine.index[mine["event"] == event]]
        lf = log.fields(event)
        assert mf["decoded"].all() and lf["decoded"].all()
        cols = [c for c in lf.columns if c != "decoded"]
        assert (
            mf[cols]
            .astype(str)
            .value_counts()
            .sort_index()
            .equals(lf[cols].astype(str).value_counts().sort_index())
        )


def test_summary_shows_comm_names_and_roles() -> None:
    out = run_cli("summary", "--format", "json", A_FTRACE)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [(i["format"], i["variant"]) for i in data["inputs"]] == [("ftrace", "tracefs+tgid")]
    threads = {(t["process"], t["tid"]): t for t in data["threads"]}
    for side in ("dst", "src"):
        with open(sample(*A_DIR, f"{side}-threads.json")) as f:
            proc = json.load(f)
        for tid, name in proc["tid_to_name"].items():
            t = threads[(side, int(tid))]
            assert t["name"] == name and t["name_source"] == "line"
    [load] = [t for t in data["threads"] if t["role"] == "load"]
    assert (load["process"], load["name"], load["carries_load"]) == ("dst", "mig/dst/main", True)
    assert {p["label"]: p["pid"] for p in data["processes"]}["dst"] == 20537


# ---------------------------------------------------------------- edge cases from real lines


def _real_lines(path: str, count: int) -> list[bytes]:
    out = []
    for raw in read_lines(path):
        out.append(raw)
        if len(out) == count:
            break
    return out


def test_four_character_flags_and_missing_flags_read_alike(tmp_path: Path, engine: str) -> None:
    real = [ln for ln in _real_lines(A_FTRACE, 400) if not ln.startswith(b"#")]
    four = [re.sub(rb"\] (\S{4})\S ", rb"] \1 ", ln, count=1) for ln in real]
    none = [re.sub(rb"\] \S{5} ", b"] ", ln, count=1) for ln in real]
    assert four != real and none != real
    base = _read(_write(tmp_path, "five.txt", real), engine)
    for variant, lines in (("tracefs+tgid", four), ("no-flags+tgid", none)):
        seg = _read(_write(tmp_path, f"{variant}.txt", lines), engine)
        assert seg.variant == variant and seg.other_lines == 0
        for col in ("ts", "tid", "pid"):
            assert np.array_equal(getattr(seg, col), getattr(base, col)), col
        assert _names(seg) == _names(base) and _args(seg) == _args(base)


def test_unknown_comms_are_named_by_task_events(tmp_path: Path, engine: str) -> None:
    """Lines of TIDs the kernel had no comm for show <...>; task_rename / task_newtask name them
    from their time on."""
    real = [ln for ln in _real_lines(A_FTRACE, 3000) if not ln.startswith(b"#")]
    renamed: dict[int, tuple[int, str]] = {}  # tid -> (first line index of the rename, name)
    for i, ln in enumerate(real):
        m = re.search(rb"task_rename: pid=(\d+) oldcomm=.* newcomm=(.*) oom_score_adj", ln)
        if m and int(m.group(1)) not in renamed:
            renamed[int(m.group(1))] = (i, m.group(2).decode())
    hidden = [
        TRACEFS.sub(lambda m: m.group(0).replace(m.group("comm") + b"-", b"<...>-", 1), ln)
        if b"tracing_mark_write" in ln
        else ln
        for ln in real
    ]
    seg = _read(_write(tmp_path, "unknown.txt", hidden), engine)
    names = _threads(seg)
    checked = 0
    for i, (tid, name, line) in enumerate(zip(seg.tid.tolist(), names, seg.line.tolist(), strict=True)):
        if b"tracing_mark_write" not in real[line - 1]:
            continue
        if tid in renamed and renamed[tid][0] < line - 1:
            assert name == renamed[tid][1], (i, tid)
            checked += 1
    assert checked > 100
    assert seg.details.get("rows.named_from_task_events", 0) >= checked


def test_lost_events_garbage_and_odd_markers_are_counted(tmp_path: Path, engine: str) -> None:
    real = [ln for ln in _real_lines(A_FTRACE, 200) if not ln.startswith(b"#")]
    marker = next(ln for ln in real if b"tracing_mark_write" in ln)
    prefix = marker[: marker.index(b"tracing_mark_write: ") + len(b"tracing_mark_write: ")]
    odd = [
        b"CPU:1 [LOST 42 EVENTS]",
        b"this is no ftrace line",
        prefix + b"hello-world! not a QEMU event",
        prefix + b"migrate_set_state new state \xff\xfe",
        b"  <idle>-0       (-------) [001] d..2.  2502.966990: sched_switch: prev_comm=swapper/1 "
        b"prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=CPU 0/TCG next_pid=20545 next_prio=120",
    ]
    lines = [*real[:50], *odd, *real[50:100]]
    path = _write(tmp_path, "odd.txt", lines)
    seg = _read(path, engine)
    assert seg.dropped_events == [(51, 42)]
    assert seg.other_line.tolist() == [52] and seg.other_text == ["this is no ftrace line"]
    assert seg.lines == len(lines) and seg.events == len(lines) - 2
    by_line = dict(zip(seg.line.tolist(), zip(_names(seg), _args(seg), strict=True), strict=True))
    assert by_line[53] == ("tracing_mark_write", "hello-world! not a QEMU event")
    assert by_line[54][0] == "migrate_set_state" and "\ufffd" in by_line[54][1]
    assert by_line[55] == (
        "sched_switch",
        "prev_comm=swapper/1 prev_pid=0 prev_prio=120 "
        "prev_state=R ==> next_comm=CPU 0/TCG next_pid=20545 next_prio=120",
    )
    row = seg.line.tolist().index(55)
    assert seg.pid[row] == -1 and _threads(seg)[row] == "<idle>" and seg.extra["cpu"][row] == 1
    assert seg.flags[seg.line.tolist().index(54)] & EVENT_BAD_UTF8
    text = " | ".join(str(w) for w in seg.warnings)
    assert f"{path}:51: the kernel lost 42" in text and f"{path}:54: invalid UTF-8" in text


def test_last_line_without_newline_is_kept_and_reported(tmp_path: Path, engine: str) -> None:
    real = [ln for ln in _real_lines(A_FTRACE, 100) if not ln.startswith(b"#")]
    p = tmp_path / "cut.txt"
    p.write_bytes(b"\n".join(real))
    seg = _read(str(p), engine)
    assert seg.events == len(real)
    assert any("no newline" in w.message and w.line == len(real) for w in seg.warnings)


@pytest.mark.parametrize("path", [A_FTRACE, D_REPORT, E_FTRACE])
def test_compiled_and_python_scanners_agree(tmp_path: Path, path: str) -> None:
    head = _real_lines(path, 30000)
    head += [b"CPU:0 [LOST 3 EVENTS]", b"garbage \xff", b"  x-y-z-12 (  12) [000] .N.1. 1.5: a: b"]
    p = _write(tmp_path, "head.txt", head)
    a, b = _read(p, "compiled"), _read(p, "python")
    for col in ("ts", "tid", "pid", "line", "flags", "other_line", "thread_code"):
        assert np.array_equal(getattr(a, col), getattr(b, col)), col
    assert np.array_equal(a.extra["cpu"], b.extra["cpu"])
    assert _names(a) == _names(b) and _args(a) == _args(b) and _threads(a) == _threads(b)
    assert a.other_text == b.other_text and a.details == b.details


def test_comms_with_blanks_and_dashes_split_at_the_last_dash(tmp_path: Path) -> None:
    """The comm of a line is a thread name even with blanks and dashes (split at the last -)."""
    real = [ln for ln in _real_lines(A_FTRACE, 200000) if b"tracing_mark_write" in ln]
    picked = [
        next(ln for ln in real if ln.lstrip().startswith(c))
        for c in (b"CPU 0/TCG-", b"IO mon_iothread-", b"io-task-worker-", b"qemu-system-x86-")
    ]
    seg = _read(_write(tmp_path, "names.txt", picked))
    assert _threads(seg) == ["CPU 0/TCG", "IO mon_iothread", "io-task-worker", "qemu-system-x86"]
    expected = [int(TRACEFS.match(ln).group("tid")) for ln in picked]  # type: ignore[union-attr]
    assert seg.tid.tolist() == expected
    frame = pd.DataFrame({"cpu": seg.extra["cpu"]})
    assert frame["cpu"].isin([0, 1]).all()


def test_truncated_compressed_capture_keeps_what_was_decoded(tmp_path: Path) -> None:
    packed = Path(A_FTRACE).read_bytes()
    cut = tmp_path / "cut.txt.xz"
    cut.write_bytes(packed[: len(packed) // 2])
    seg = _read(str(cut))
    full = _read_sample(A_FTRACE)
    assert 0 < seg.events < full.events
    n = seg.events - 1  # the last line may be cut in the middle
    assert seg.ts[:n].tolist() == full.ts[:n].tolist()
    assert any(w.message.startswith("corrupt or truncated compressed data") for w in seg.warnings)
