"""Reader for QEMU's ``log`` trace backend (and SystemTap's ``log_stap`` lines), every era.

Each line is recognised on its own (see ``_scan.c`` for the shapes), so a file that mixes eras,
or holds QEMU's own error messages between trace lines, is read without configuration.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from parsers.inputs import InputFile
from parsers.registry import Backend, Progress, ReadContext
from parsers.rowflags import FLAG_BAD_UTF8, flag_bits, line_warnings
from parsers.scanpool import ScannedFile, default_lanes, scan_files
from parsers.segment import (
    ARGS_TEXT,
    EVENT_BAD_UTF8,
    ParseWarning,
    Segment,
    StringTable,
    any_timed,
    value_counts,
)

try:
    from parsers import _scan as _compiled  # type: ignore[attr-defined]
except ImportError:  # no compiler when installed: the pure-Python twin does the same work
    _compiled = None

from parsers._pyscan.scanner import Scanner as PythonScanner

KIND_EVENT, KIND_OTHER, KIND_BARE = 0, 1, 2
ERA_NAMES = {0: "plain", 1: "tid@sec.usec", 2: "iso8601", 3: "thread-info", 4: "stap"}
ERA_STAP = 4
OTHER_TEXT_MAX = 1024
MAX_WARNINGS_PER_KIND = 20


def scanner_engine() -> str:
    """Which scanner is in use: "compiled" or "python"."""
    return "compiled" if _compiled is not None else "python"


def new_scanner(engine: str | None = None) -> object:
    """A fresh line scanner; ``engine`` forces "compiled" or "python"."""
    if engine == "python" or (engine is None and _compiled is None):
        return PythonScanner()
    if _compiled is None:
        raise RuntimeError("the compiled scanner is not built (pip install needs a C compiler)")
    return _compiled.Scanner()


@dataclass(frozen=True)
class LogInput:
    """One text file to read, with what its name says about it."""

    path: str
    default_tid: int = -1  # TID from a per-thread file name (-d tid -D trace.%d)
    process_hint: str | None = None


def _bare_names_accepted(names: list[str], timestamped: set[int], known: Container[str]) -> np.ndarray:
    """Which names count as events on a line without any prefix.

    A QEMU event name is snake_case; a plain English message ("Unable to ...") is not. Names
    known from the catalog, or seen with a proper prefix elsewhere, are always accepted.
    """
    ok = np.zeros(len(names), dtype=bool)
    for i, n in enumerate(names):
        ok[i] = i in timestamped or n in known or ("_" in n and n.lower() == n)
    return ok


def read_log_inputs(
    items: Sequence[LogInput],
    known_names: Container[str] = frozenset(),
    engine: str | None = None,
    lanes: int | None = None,
    progress: Progress | None = None,
) -> list[Segment]:
    """Reads text trace files (on several cores when the compiled scanner is available).

    Returns one Segment per file; all share the same interned tables.
    """
    use_python = engine == "python" or (engine is None and _compiled is None)
    n = 1 if use_python else (lanes or default_lanes())
    result = scan_files([(i.path, i.default_tid) for i in items], lambda: new_scanner(engine), n, progress)
    names, args, threads = (result.tables[k] for k in ("names", "args", "threads"))
    others = result.tables["others"].to_list()
    name_list = names.to_list()
    seen_with_prefix = np.zeros(len(name_list), dtype=bool)
    kinds = [value_counts(rows.cols["kind"], 3) for rows in result.files]
    for rows, count in zip(result.files, kinds, strict=True):
        k, name = rows.cols["kind"], rows.cols["name"]
        seen_with_prefix[name if count[KIND_EVENT] == len(k) else name[k == KIND_EVENT]] = True
    timestamped = set(np.flatnonzero(seen_with_prefix).tolist())
    accepted = _bare_names_accepted(name_list, timestamped, known_names)
    arg_list: list[str] | None = None
    segments = []
    for item, rows, count in zip(items, result.files, kinds, strict=True):
        seg, needs_args = _to_segment(item, rows, count, names, args, threads, others, accepted)
        if needs_args:
            if arg_list is None:
                arg_list = args.to_list()
            _add_bare_others(seg, rows, name_list, arg_list, accepted)
        segments.append(seg)
    return segments


def _to_segment(
    item: LogInput,
    rows: ScannedFile,
    kinds: np.ndarray,
    names: StringTable,
    args: StringTable,
    threads: StringTable,
    others: list[str],
    accepted: np.ndarray,
) -> tuple[Segment, bool]:
    """``kinds``: how many lines of each kind the file has."""
    c = rows.cols
    kind = c["kind"]
    n = len(kind)
    bare_rejected = False
    if kinds[KIND_EVENT] == n:  # the usual file: every line an event, no mask to make
        is_event: np.ndarray = np.broadcast_to(np.True_, kind.shape)
    else:
        is_event = kind == KIND_EVENT
    if kinds[KIND_BARE]:
        bare = kind == KIND_BARE
        ok = accepted[c["name"][bare]]
        bare_rejected = not ok.all()
        is_event[np.flatnonzero(bare)[ok]] = True
    all_events = bool(kinds[KIND_EVENT] == n) or bool(is_event.all())

    def pick(col: np.ndarray) -> np.ndarray:
        return col if all_events else col[is_event]

    line_no = np.arange(1, n + 1, dtype=np.int64)
    era = pick(c["era"])
    tid = pick(c["tid"])
    # Only log_stap lines carry a pid: otherwise one read-only -1 stands for the whole column.
    pid = np.broadcast_to(np.int32(-1), tid.shape)
    era_counts = value_counts(era, 5)
    if era_counts[ERA_STAP]:
        stap_rows = era == ERA_STAP
        tid = tid.copy()
        pid = np.full(len(tid), -1, dtype=np.int32)
        pid[stap_rows] = tid[stap_rows]
        tid[stap_rows] = -1
    flags = np.zeros(len(tid), dtype=np.uint8)
    if len(tid) and flag_bits(c["flags"]) & FLAG_BAD_UTF8:
        flags[(pick(c["flags"]) & FLAG_BAD_UTF8) != 0] = EVENT_BAD_UTF8
    ts = pick(c["ts"])
    details = {f"lines.{ERA_NAMES[i]}": int(v) for i, v in enumerate(era_counts) if v}
    variant = ERA_NAMES[int(np.argmax(era_counts))] if len(era) else "empty"
    if int((era_counts > 0).sum()) > 1:
        variant = "mixed:" + "+".join(ERA_NAMES[int(i)] for i in np.flatnonzero(era_counts))
    fmt = "stap" if len(era) and int(era_counts[ERA_STAP]) * 2 > len(era) else "log"
    has_time = any_timed(ts)
    other_idx = np.flatnonzero(kind == KIND_OTHER) if kinds[KIND_OTHER] else np.zeros(0, dtype=np.int64)
    other_codes = c["args"][other_idx]
    warnings = line_warnings(item.path, c["flags"], is_event, rows.read_error)
    seg = Segment(
        path=item.path,
        format=fmt,
        variant=variant,
        clock="wall" if has_time else "none",
        lines=n,
        ts=ts,
        tid=tid,
        pid=pid,
        name_code=pick(c["name"]),
        names=names,
        args_code=pick(c["args"]),
        args=args,
        args_encoding=ARGS_TEXT,
        thread_code=pick(c["tname"]),
        thread_names=threads,
        line=line_no if all_events else line_no[is_event],
        flags=flags,
        other_line=line_no[other_idx],
        other_text=[others[i] for i in other_codes.tolist()],
        warnings=warnings,
        details=details,
        process_hint=item.process_hint,
    )
    return seg, bare_rejected


def _add_bare_others(
    seg: Segment, rows: ScannedFile, names: list[str], args: list[str], accepted: np.ndarray
) -> None:
    """Lines shaped like ``word rest`` whose word is no event name are "other" lines too."""
    c = rows.cols
    bare_idx = np.flatnonzero(c["kind"] == KIND_BARE)
    rejected = bare_idx[~accepted[c["name"][bare_idx]]]
    texts = []
    cut = 0
    for i in rejected.tolist():
        a = args[c["args"][i]]
        text = names[c["name"][i]] + (" " + a if a else "")
        if len(text.encode()) > OTHER_TEXT_MAX:
            text = text.encode()[:OTHER_TEXT_MAX].decode("utf-8", "ignore")
            cut += 1
        texts.append(text)
    if cut:
        seg.warnings.append(
            ParseWarning(
                seg.path, int(rejected[0]) + 1, f"{cut} non-trace line(s) longer than 1 KiB kept cut to 1 KiB"
            )
        )
    lines = rejected.astype(np.int64) + 1
    merged_lines = np.concatenate([seg.other_line, lines])
    order = np.argsort(merged_lines, kind="stable")
    all_texts = seg.other_text + texts
    seg.other_line = merged_lines[order]
    seg.other_text = [all_texts[i] for i in order.tolist()]


_SNIFF_PREFIXED = re.compile(
    rb"^(?:\d+@\d+\.\d+:|\d+@\d+ |\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d) )"
    rb"(?:(?:\[[^\]]*\] )?[^ (]+\(\d+:[^)]*\): )?[A-Za-z_]\w*(?: |$)"
    rb"|^(?:\[[^\]]*\] )?[^ (]+\(\d+:[^)]*\): [A-Za-z_]\w*(?: |$)"
)
# Without any prefix only snake_case words count: "source tree: ..." is prose, not an event.
_SNIFF_BARE = re.compile(rb"^[a-z][a-z0-9]*_[a-z0-9_]*(?: |$)")


def sniff(head: bytes) -> int:
    """Scores how much the first bytes look like log-backend (or log_stap) lines."""
    lines = head.split(b"\n")
    if len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut by the sniff window
    lines = [ln.rstrip(b"\r") for ln in lines if ln.strip()][:2000]
    if not lines:
        return 0
    # A line holding a NUL byte (garbage, a binary file) is never a hit, but it does not hide
    # the trace lines after it.
    hits = sum(
        1 for ln in lines if (_SNIFF_PREFIXED.match(ln) or _SNIFF_BARE.match(ln)) and b"\x00" not in ln
    )
    if hits == 0:
        return 0
    return max(1, int(60 * hits / len(lines)))


def read(items: Sequence[InputFile], ctx: ReadContext) -> list[Segment]:
    """Reads log-backend files (the registry's entry point)."""
    logs = [LogInput(i.path, i.default_tid, i.process_hint) for i in items]
    return read_log_inputs(logs, known_names=_KnownNames(ctx), engine=ctx.engine, progress=ctx.progress)


class _KnownNames:
    """A ``set``-like view of the catalog for the bare-line rule."""

    def __init__(self, ctx: ReadContext) -> None:
        self._ctx = ctx

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._ctx.is_known_event(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())


BACKENDS = [
    Backend(
        name="log",
        description="QEMU log backend text (-trace with -D/stderr), every era; also SystemTap log_stap lines",
        sniff=sniff,
        read=read,
    )
]
