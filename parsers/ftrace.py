"""Reader for QEMU's ``ftrace`` backend: the kernel's trace text and ``trace-cmd report``.

QEMU writes every event as ``name args`` to ``trace_marker``; the kernel prints it as a
``tracing_mark_write`` line that adds the writer's comm (thread name), TID, CPU, time and, with
``record-tgid``, its TGID. The body is exactly the log backend's text, so arguments are stored
as ``text`` and decoded like log lines. Kernel events in the same file (``task_newtask``,
``task_rename``, ``sched_switch``...) stay events of their own; the task events also name the
threads whose lines show ``<...>`` and, when no TGID column exists, tell which process a thread
belongs to. The line grammar lives in ``_scan.c`` (``scan_ftrace``) and its Python twin.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from parsers.inputs import InputFile
from parsers.log import new_scanner, scanner_engine
from parsers.registry import Backend, ReadContext
from parsers.rowflags import FLAG_BAD_UTF8, line_warnings
from parsers.scanpool import default_lanes, scan_files
from parsers.segment import (
    ARGS_TEXT,
    EVENT_BAD_UTF8,
    EVENT_TRUNCATED,
    ParseWarning,
    Segment,
    StringTable,
)

KIND_EVENT, KIND_OTHER, KIND_KERNEL, KIND_HEADER = 0, 1, 3, 4
ID_MAX = 2**31 - 1
ERA_VARIANTS = {5: "tracefs", 6: "tracefs+tgid", 7: "no-flags", 8: "no-flags+tgid"}
ERA_NO_FLAGS = (7, 8)

QEMU_MARKER_LIMIT = 511
"""QEMU formats a marker into a 512-byte buffer: a body of 511 bytes filled it and may be cut."""
CLONE_THREAD = 0x10000
UNKNOWN_COMM = "<...>"


# ---------------------------------------------------------------- scanning (shared with lttng)


@dataclass
class ScannedText:
    """Row columns of one text file (one row per physical line) and a read error, if any."""

    path: str
    cols: dict[str, np.ndarray]
    read_error: str | None


def scan_text_files(
    paths: Sequence[str], method: str, engine: str | None
) -> tuple[list[ScannedText], dict[str, StringTable]]:
    """Scans every file with the scanner's ``method`` (``scan_ftrace``, ``scan_lttng``), on
    several cores when the compiled scanner is available (``parsers.scanpool``).

    Returns each file's rows and the shared tables (``names``, ``args``, ``threads``,
    ``others``) their codes index. A corrupt or truncated compressed file keeps the lines
    decoded before the damage and reports it as ``read_error``.
    """
    use_python = engine == "python" or (engine is None and scanner_engine() == "python")
    lanes = 1 if use_python else default_lanes()
    result = scan_files([(p, -1) for p in paths], lambda: new_scanner(engine), lanes, method=method)
    out = [ScannedText(p, f.cols, f.read_error) for p, f in zip(paths, result.files, strict=True)]
    return out, result.tables


def majority_variant(era: np.ndarray, names: dict[int, str]) -> tuple[str, dict[str, int]]:
    """The variant name of the most common era ("mixed:a+b" when several), and per-era counts."""
    counts = np.bincount(era, minlength=max(names) + 1)
    present = [i for i in names if counts[i]]
    details = {f"lines.{names[i]}": int(counts[i]) for i in present}
    if not present:
        return "empty", details
    if len(present) > 1:
        return "mixed:" + "+".join(names[i] for i in present), details
    return names[present[0]], details


# ---------------------------------------------------------------- ftrace specifics

_LOST = re.compile(r"CPU:\s*(\d+) \[LOST (\d+)? ?EVENTS\]")
_TRACE_CMD_HEADER = re.compile(r"cpus=\d+|version = \S+")
# pid= takes any digits so that a huge number is seen (and flagged), not read as no match.
_NEWTASK = re.compile(r"pid=(\d+) comm=(.*) clone_flags=([0-9a-fA-F]+)(?: oom_score_adj=-?\d+)?")
_RENAME = re.compile(r"pid=(\d+) oldcomm=(.*) newcomm=(.*?)(?: oom_score_adj=-?\d+)?")
_CLONE_FLAGS_MAX_DIGITS = 16  # clone flags are a 64-bit mask


@dataclass
class _TaskEvents:
    """What the task_newtask / task_rename lines of one file say."""

    naming: pd.DataFrame  # ts, tid, name: the thread's name from that time on
    parent_of: list[tuple[int, int, int, int]]  # (ts, parent tid, child tid, clone flags)
    bad_lines: list[int]  # row positions of task lines whose pid or flags are out of range


def _small_int(digits: str, limit: int, base: int = 10) -> int | None:
    """int(digits) when it is at most ``limit`` (checked on the length first, so thousands of
    digits cost nothing), else None."""
    if len(digits) > (10 if base == 10 else _CLONE_FLAGS_MAX_DIGITS) + 2:
        return None
    v = int(digits, base)
    return v if v <= limit else None


def _task_events(c: dict[str, np.ndarray], rows: np.ndarray, names: list[str], args: pa.Array) -> _TaskEvents:
    """Parses the few task lines (a Python loop over kernel task events only)."""
    code = {n: i for i, n in enumerate(names)}
    wanted = [code[n] for n in ("task_newtask", "task_rename") if n in code]
    naming: list[tuple[int, int, str]] = []
    parents: list[tuple[int, int, int, int]] = []
    bad: list[int] = []
    if not wanted:
        return _TaskEvents(pd.DataFrame({"ts": [], "tid": [], "name": []}), parents, bad)
    sel = rows[np.isin(c["name"][rows], wanted)]
    texts = args.take(pa.array(c["args"][sel])).to_pylist()
    newtask = code.get("task_newtask", -1)
    for i, text in zip(sel.tolist(), texts, strict=True):
        ts = int(c["ts"][i])
        if c["name"][i] == newtask:
            m = _NEWTASK.fullmatch(text)
            if m:
                child = _small_int(m.group(1), ID_MAX)
                flags = _small_int(m.group(3), 2**64 - 1, 16)
                if child is None or flags is None:
                    bad.append(i)
                    continue
                naming.append((ts, child, m.group(2)))
                parents.append((ts, int(c["tid"][i]), child, flags))
        else:
            m = _RENAME.fullmatch(text)
            if m:
                renamed = _small_int(m.group(1), ID_MAX)
                if renamed is None:
                    bad.append(i)
                    continue
                naming.append((ts, renamed, m.group(3)))
    frame = pd.DataFrame(naming, columns=["ts", "tid", "name"])
    return _TaskEvents(frame, parents, bad)


def _infer_tgids(
    tid: np.ndarray, pid: np.ndarray, parents: list[tuple[int, int, int, int]]
) -> tuple[np.ndarray, int]:
    """TGIDs for rows without one: a clone without CLONE_THREAD starts a process (TGID = its
    TID); a thread joins its creator's process. Returns the new pid column and rows filled."""
    missing = pid < 0
    if not missing.any() or not parents:
        return pid, 0
    known: dict[int, int] = {}
    seen = ~missing & (tid >= 0)  # an unknown tid (-1) says nothing about a process
    if seen.any():
        pairs = np.unique(np.stack([tid[seen], pid[seen]], axis=1), axis=0)
        known.update({int(t): int(p) for t, p in pairs.tolist()})
    for _, parent, child, clone_flags in sorted(parents):
        if child in known or parent < 0:
            continue
        if clone_flags & CLONE_THREAD:
            if parent in known:
                known[child] = known[parent]
        else:
            known[child] = child
    if not known:
        return pid, 0
    keys = np.fromiter(known.keys(), dtype=np.int64, count=len(known))
    vals = np.fromiter(known.values(), dtype=np.int64, count=len(known))
    order = np.argsort(keys)
    keys, vals = keys[order], vals[order]
    pos = np.clip(np.searchsorted(keys, tid), 0, len(keys) - 1)
    found = missing & (tid >= 0) & (keys[pos] == tid)
    out = pid.copy()
    out[found] = vals[pos[found]].astype(np.int32)
    return out, int(found.sum())


def _names_for_unknown(
    ts: np.ndarray, tid: np.ndarray, unknown: np.ndarray, naming: pd.DataFrame
) -> pd.Categorical | None:
    """For rows whose comm is ``<...>``: the name the task events gave that TID by then
    (one entry per such row, in row order; missing where none did). None when nothing is
    named."""
    idx = np.flatnonzero(unknown)
    if not len(idx) or naming.empty:
        return None
    left = pd.DataFrame({"ts": ts[idx], "tid": tid[idx].astype(np.int64), "row": idx})
    left = left.sort_values("ts", kind="stable")
    right = naming.astype({"ts": np.int64, "tid": np.int64}).sort_values("ts", kind="stable")
    merged = pd.merge_asof(left, right, on="ts", by="tid", direction="backward")
    merged = merged.sort_values("row", kind="stable")
    return pd.Categorical(merged["name"].to_numpy(dtype=object))


@dataclass
class _NonEvents:
    """The lines of a file that are no event, sorted out."""

    other_line: np.ndarray  # line numbers of lines nothing understood
    other_text: list[str]
    header: int  # '#' header lines and trace-cmd's header lines
    trace_cmd_header: bool  # the file has trace-cmd report's "cpus=N"
    dropped: list[tuple[int, int]]  # (line, events the kernel lost there)
    warnings: list[ParseWarning]


def _non_events(path: str, kind: np.ndarray, args: np.ndarray, others: list[str]) -> _NonEvents:
    """Headers are counted, the kernel's lost-event notes become dropped events, the rest are
    "other" lines (a loop over those lines only)."""
    other_idx = np.flatnonzero(kind == KIND_OTHER)
    texts = [others[i] for i in args[other_idx].tolist()]
    keep = np.ones(len(other_idx), dtype=bool)
    out = _NonEvents(np.zeros(0, np.int64), [], int((kind == KIND_HEADER).sum()), False, [], [])
    for j, text in enumerate(texts):
        line = int(other_idx[j]) + 1
        stripped = text.strip()
        lost = _LOST.fullmatch(stripped)
        if lost:
            keep[j] = False
            out.dropped.append((line, int(lost.group(2)) if lost.group(2) else 0))
            out.warnings.append(
                ParseWarning(
                    path,
                    line,
                    (
                        f"the kernel lost {lost.group(2) or 'an unknown number of'} event(s) on CPU "
                        f"{lost.group(1)} here (ring buffer overrun)"
                    ),
                )
            )
        elif _TRACE_CMD_HEADER.fullmatch(stripped):
            keep[j] = False
            out.header += 1
            out.trace_cmd_header |= stripped.startswith("cpus=")
    out.other_line = other_idx[keep].astype(np.int64) + 1
    out.other_text = [t for t, k in zip(texts, keep, strict=True) if k]
    return out


@dataclass
class _FileResult:
    seg: Segment
    late_names: pd.Categorical | None  # names for the rows whose comm was <...>, in row order
    late_rows: np.ndarray  # event-row positions those names belong to


def _ftrace_segment(
    item: InputFile,
    scanned: ScannedText,
    tables: dict[str, StringTable],
    names: list[str],
    name_bytes: np.ndarray,
    args_bytes: np.ndarray,
    others: list[str],
    unknown_comm: int,
) -> _FileResult:
    c = scanned.cols
    path = item.path
    kind = c["kind"]
    n = len(kind)
    is_event = (kind == KIND_EVENT) | (kind == KIND_KERNEL)
    rows = np.flatnonzero(is_event)
    line_no = rows.astype(np.int64) + 1
    name_code = c["name"][rows]
    args_code = c["args"][rows]
    marker = kind[rows] == KIND_EVENT
    body_len = name_bytes[name_code] + 1 + args_bytes[args_code]
    at_limit = marker & (body_len == QEMU_MARKER_LIMIT)
    flags = np.where(c["flags"][rows] & FLAG_BAD_UTF8, EVENT_BAD_UTF8, 0).astype(np.uint8)
    flags[at_limit] |= EVENT_TRUNCATED
    warnings = line_warnings(path, c["flags"], is_event, scanned.read_error)
    if at_limit.any():
        first = int(line_no[np.flatnonzero(at_limit)[0]])
        warnings.append(
            ParseWarning(
                path,
                first,
                (
                    f"{int(at_limit.sum())} QEMU marker(s) of {QEMU_MARKER_LIMIT} bytes, the ftrace "
                    "backend's limit: their text may be cut (flagged EVENT_TRUNCATED)"
                ),
            )
        )

    tid = c["tid"][rows]
    ts = c["ts"][rows]
    task = _task_events(c, rows, names, tables["args"].values)
    if task.bad_lines:
        warnings.append(
            ParseWarning(
                path,
                task.bad_lines[0] + 1,
                (
                    f"{len(task.bad_lines)} task_newtask/task_rename line(s) with a pid beyond "
                    f"{ID_MAX} or impossible clone flags; they name no thread"
                ),
            )
        )
    pid, inferred = _infer_tgids(tid, c["pid"][rows], task.parent_of)
    thread_code = c["tname"][rows].copy()
    unknown = thread_code == unknown_comm if unknown_comm >= 0 else np.zeros(len(rows), bool)
    thread_code[unknown] = -1
    late_names = _names_for_unknown(ts, tid, unknown, task.naming)

    rest = _non_events(path, kind, c["args"], others)
    warnings.extend(rest.warnings)
    header = rest.header

    era = c["era"][rows]
    variant, details = majority_variant(era, ERA_VARIANTS)
    details["lines.header"] = header
    details["lines.marker"] = int(marker.sum())
    details["lines.kernel"] = int((~marker).sum())
    details["markers.at_limit"] = int(at_limit.sum())
    details["rows.pid_from_task_events"] = inferred
    set_aside = {k: v for k, v in (("header", header), ("lost-events notice", len(rest.dropped))) if v}
    no_flags = bool(len(era)) and bool(np.isin(era, ERA_NO_FLAGS).all())
    fmt = "trace-cmd" if rest.trace_cmd_header or (no_flags and header == 0) else "ftrace"
    seg = Segment(
        path=path,
        format=fmt,
        variant=variant,
        clock="ftrace-local",
        lines=n,
        ts=ts,
        tid=tid,
        pid=pid,
        name_code=name_code,
        names=tables["names"],
        args_code=args_code,
        args=tables["args"],
        args_encoding=ARGS_TEXT,
        thread_code=thread_code,
        thread_names=tables["threads"],
        line=line_no,
        flags=flags,
        other_line=rest.other_line,
        other_text=rest.other_text,
        warnings=warnings,
        dropped_events=rest.dropped,
        details=details,
        set_aside=set_aside,
        process_hint=item.process_hint,
        extra={"cpu": c["cpu"][rows].astype(np.int64)},
    )
    return _FileResult(seg, late_names, np.flatnonzero(unknown))


def _add_late_names(results: list[_FileResult], threads: StringTable) -> StringTable:
    """Appends the names learnt from task events to the thread table and sets their codes."""
    values = threads.to_list()
    index = {v: i for i, v in enumerate(values)}
    for r in results:
        if r.late_names is None:
            continue
        table_code = np.array(
            [index.setdefault(str(v), len(index)) for v in r.late_names.categories], dtype=np.int32
        )
        codes = np.asarray(r.late_names.codes, dtype=np.int64)
        named = codes >= 0
        r.seg.thread_code[r.late_rows[named]] = table_code[codes[named]]
        if named.any():
            r.seg.details["rows.named_from_task_events"] = int(named.sum())
    if len(index) == len(values):
        return threads
    return StringTable(pa.array(list(index), type=pa.large_string()))


def read_ftrace(items: Sequence[InputFile], ctx: ReadContext) -> list[Segment]:
    """Reads ftrace / trace-cmd report text files; one Segment per file."""
    scanned, tables = scan_text_files([i.path for i in items], "scan_ftrace", ctx.engine)
    names = tables["names"].to_list()
    name_bytes = np.asarray(pc.binary_length(tables["names"].values), dtype=np.int64)
    args_bytes = np.asarray(pc.binary_length(tables["args"].values), dtype=np.int64)
    thread_values = tables["threads"].to_list()
    unknown_comm = thread_values.index(UNKNOWN_COMM) if UNKNOWN_COMM in thread_values else -1
    others = tables["others"].to_list()
    results = [
        _ftrace_segment(item, s, tables, names, name_bytes, args_bytes, others, unknown_comm)
        for item, s in zip(items, scanned, strict=True)
    ]
    threads = _add_late_names(results, tables["threads"])
    for r in results:
        r.seg.thread_names = threads
    return [r.seg for r in results]


_SNIFF_LINE = re.compile(rb" *[^\n]{0,64}?-\d+ +(?:\( *[-\d]+\) +)?\[\d+\] +(?:\S{1,8} +)?\d+\.\d+: +\w+:")


def sniff(head: bytes) -> int:
    """Scores how much the first bytes look like ftrace text (tracefs or trace-cmd report);
    lines holding a NUL byte are never hits."""
    lines = head.split(b"\n")
    if len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut by the sniff window
    body = [ln.rstrip(b"\r") for ln in lines if ln.strip() and not ln.startswith(b"#")][:2000]
    if body and re.fullmatch(rb"cpus=\d+", body[0]):
        body = body[1:]
    if not body:
        return 0
    hits = sum(1 for ln in body if _SNIFF_LINE.match(ln) and b"\x00" not in ln)
    return max(1, int(95 * hits / len(body))) if hits else 0


BACKENDS = [
    Backend(
        name="ftrace",
        description="QEMU ftrace backend: tracefs trace text (with or without TGID) and "
        "trace-cmd report output",
        sniff=sniff,
        read=read_ftrace,
    ),
    Backend(
        name="trace-cmd",
        description="trace-cmd report output of QEMU's ftrace markers (same reader as ftrace)",
        sniff=lambda head: 0,  # detection goes to "ftrace"; this name only serves --input-format
        read=read_ftrace,
    ),
]
