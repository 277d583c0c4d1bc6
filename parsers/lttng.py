"""Reader for LTTng-UST traces of QEMU's ``ust`` backend, as babeltrace / babeltrace2 print them.

A line is ``[TIME] (+DELTA) HOST qemu:EVENT: { cpu_id = N }, { vpid = P, vtid = T, procname =
"NAME" }, { FIELD = VALUE, ... }``: the context blocks are optional (they exist only when the
session added those contexts), the last block is the event's payload. ``vtid`` gives the TID,
``vpid`` the process, ``procname`` the thread name, ``cpu_id`` the CPU.

The payload holds typed values (upper-case hex, quoted strings with escapes, the mutex site as
separate ``file`` and ``line`` fields), not QEMU's printf text. It is stored as
``args_encoding="lttng"``: each argument entry is ``EVENT { FIELD = VALUE, ... }`` (UTF-8 bytes),
which :mod:`tracetool._events.decode_lttng` decodes into the same typed columns the log backend's text
gives, and renders back into the log backend's text.

Clock: babeltrace prints the LTTng clock (CLOCK_MONOTONIC plus the session's wall-clock offset)
as the time of day in the local time zone without a date (``clock="time-of-day"``, ns since
midnight), with ``--clock-date`` as a date and time (read as UTC: ``clock="wall"``), with
``--clock-seconds`` as seconds since the Epoch (``"wall"``) and with ``--clock-cycles`` as raw
clock cycles (``"monotonic"``, ns for LTTng's 1 GHz clock).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parsers.ftrace import majority_variant, scan_text_files
from parsers.inputs import InputFile
from parsers.registry import Backend, ReadContext
from parsers.rowflags import FLAG_BAD_UTF8, line_warnings
from parsers.segment import (
    ARGS_LTTNG,
    EVENT_BAD_UTF8,
    ParseWarning,
    Segment,
    StringTable,
)

KIND_EVENT, KIND_OTHER = 0, 1
ERA_TIME_OF_DAY, ERA_DATE, ERA_SECONDS, ERA_CYCLES, ERA_NO_CLOCK = 9, 10, 11, 12, 13
ERA_VARIANTS = {
    ERA_TIME_OF_DAY: "time-of-day",
    ERA_DATE: "date",
    ERA_SECONDS: "seconds",
    ERA_CYCLES: "cycles",
    ERA_NO_CLOCK: "no-clock",
}
ERA_CLOCKS = {
    ERA_TIME_OF_DAY: "time-of-day",
    ERA_DATE: "wall",
    ERA_SECONDS: "wall",
    ERA_CYCLES: "monotonic",
    ERA_NO_CLOCK: "none",
}
QEMU_PROVIDER = "qemu:"
DAY_NS = 86_400 * 1_000_000_000

_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|.)", re.S)
_ESCAPES = {
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}
_DISCARDED = re.compile(
    r"(?:\x1b\[[0-9;]*m)*WARNING(?:\x1b\[[0-9;]*m)*: Tracer (?:discarded (\d+) events?|"
    r"may have discarded events)"
)


def unescape_babeltrace(text: str) -> str:
    """The string babeltrace2 printed as ``text`` (without its quotes): ``\\"`` -> ``"`` etc."""
    if "\\" not in text:
        return text

    def repl(m: re.Match[str]) -> str:
        e = m.group(1)
        if e.startswith("x") and len(e) == 3:
            return chr(int(e[1:], 16))
        return _ESCAPES.get(e, e)

    return _ESCAPE.sub(repl, text)


def _unwrap_midnight(ts: np.ndarray, era: np.ndarray) -> tuple[np.ndarray, int]:
    """Times of day that step back by more than 12 h crossed midnight: add a day from there."""
    tod = np.flatnonzero(era == ERA_TIME_OF_DAY)
    if len(tod) < 2:
        return ts, 0
    back = np.diff(ts[tod]) < -DAY_NS // 2
    if not back.any():
        return ts, 0
    days = np.concatenate([[0], np.cumsum(back)])
    out = ts.copy()
    out[tod] += days * DAY_NS
    return out, int(back.sum())


def _event_names(names: StringTable) -> tuple[StringTable, np.ndarray]:
    """Names without QEMU's provider prefix (``qemu:qemu_mutex_lock`` -> ``qemu_mutex_lock``),
    and the old -> new code map. Other providers keep their full name."""
    values = [v[len(QEMU_PROVIDER) :] if v.startswith(QEMU_PROVIDER) else v for v in names.to_list()]
    index: dict[str, int] = {}
    remap = np.array([index.setdefault(v, len(index)) for v in values], dtype=np.int32)
    return StringTable(pa.array(list(index), type=pa.large_string())), remap


def _payload_table(payloads: StringTable, entry_name: np.ndarray, names: StringTable) -> StringTable:
    """Argument entries as ``EVENT { ... }`` bytes, so decoding and rendering know the event."""
    if not len(payloads):
        return StringTable(pa.array([], type=pa.large_binary()))
    event = names.values.take(pa.array(np.maximum(entry_name, 0)))
    joined = pc.binary_join_element_wise(
        event.cast(pa.large_string()),
        payloads.values.cast(pa.large_string()),
        pa.scalar(" ", pa.large_string()),
    )
    return StringTable(joined.cast(pa.large_binary()))


def read_lttng(items: Sequence[InputFile], ctx: ReadContext) -> list[Segment]:
    """Reads babeltrace / babeltrace2 text files; one Segment per file."""
    scanned, tables = scan_text_files([i.path for i in items], "scan_lttng", ctx.engine)
    names, remap = _event_names(tables["names"])
    entry_name = np.full(len(tables["args"]), -1, dtype=np.int32)
    for s in scanned:
        ev = s.cols["kind"] == KIND_EVENT
        entry_name[s.cols["args"][ev]] = remap[s.cols["name"][ev]]
    args = _payload_table(tables["args"], entry_name, names)
    threads = StringTable(
        pa.array([unescape_babeltrace(t) for t in tables["threads"].to_list()], type=pa.large_string())
    )
    others = tables["others"].to_list()
    segments = []
    for item, s in zip(items, scanned, strict=True):
        c = s.cols
        kind = c["kind"]
        is_event = kind == KIND_EVENT
        rows = np.flatnonzero(is_event)
        era = c["era"][rows]
        ts, midnights = _unwrap_midnight(c["ts"][rows], era)
        variant, details = majority_variant(era, ERA_VARIANTS)
        if midnights:
            details["midnight_crossings"] = midnights
        counts = np.bincount(era, minlength=ERA_NO_CLOCK + 1)
        clock = ERA_CLOCKS[int(np.argmax(counts))] if len(era) else "none"
        warnings = line_warnings(item.path, c["flags"], is_event, s.read_error)
        if variant.startswith("mixed:"):
            warnings.append(
                ParseWarning(
                    item.path,
                    int(rows[0]) + 1,
                    (f"lines print time in several ways ({variant[6:]}); times are read as {clock}"),
                )
            )
        other_idx = np.flatnonzero(kind == KIND_OTHER)
        other_text = [others[i] for i in c["args"][other_idx].tolist()]
        keep = np.ones(len(other_idx), dtype=bool)
        dropped: list[tuple[int, int]] = []
        notices = 0
        for j, text in enumerate(other_text):
            m = _DISCARDED.search(text)
            if not m:
                continue
            line = int(other_idx[j]) + 1
            keep[j] = False
            notices += 1
            if m.group(1):
                dropped.append((line, int(m.group(1))))
            warnings.append(
                ParseWarning(
                    item.path,
                    line,
                    (
                        f"LTTng discarded {m.group(1) or 'an unknown number of'} event(s) here "
                        "(babeltrace's warning)"
                    ),
                )
            )
        flags = np.where(c["flags"][rows] & FLAG_BAD_UTF8, EVENT_BAD_UTF8, 0).astype(np.uint8)
        segments.append(
            Segment(
                path=item.path,
                format="lttng",
                variant=variant,
                clock=clock,
                lines=len(kind),
                ts=ts,
                tid=c["tid"][rows],
                pid=c["pid"][rows],
                name_code=remap[c["name"][rows]],
                names=names,
                args_code=c["args"][rows],
                args=args,
                args_encoding=ARGS_LTTNG,
                thread_code=c["tname"][rows],
                thread_names=threads,
                line=rows.astype(np.int64) + 1,
                flags=flags,
                other_line=other_idx[keep].astype(np.int64) + 1,
                other_text=[t for t, k in zip(other_text, keep, strict=True) if k],
                warnings=warnings,
                dropped_events=dropped,
                details=details,
                set_aside={"discarded-events notice": notices} if notices else {},
                process_hint=item.process_hint,
                extra={"cpu": c["cpu"][rows].astype(np.int64)},
            )
        )
    return segments


_SNIFF_LINE = re.compile(
    rb"\[(?:\d\d:\d\d:\d\d\.\d{9}|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9}|-?\d+\.\d{9}|\d{20}|"
    rb"\?\?:\?\?:\?\?\.\?{9})\] (?:\(\+[\d?]+\.[\d?]+\) )?(?:\S+ ){0,7}?[\w.-]+:[\w.-]+:(?: |$)"
)


def sniff(head: bytes) -> int:
    """Scores how much the first bytes look like babeltrace text of LTTng events; lines holding
    a NUL byte are never hits."""
    lines = head.split(b"\n")
    if len(lines) > 1:
        lines = lines[:-1]
    body = [ln.rstrip(b"\r") for ln in lines if ln.strip()][:2000]
    if not body:
        return 0
    hits = sum(1 for ln in body if _SNIFF_LINE.match(ln) and b"\x00" not in ln)
    return max(1, int(95 * hits / len(body))) if hits else 0


BACKENDS = [
    Backend(
        name="lttng",
        description="QEMU ust backend: LTTng events as babeltrace / babeltrace2 print them "
        "(with or without vpid/vtid/procname contexts)",
        sniff=sniff,
        read=read_lttng,
    )
]
