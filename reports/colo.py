"""Rendering ``migtrace colo``: checkpoints of each side, their summary, the failover.

:func:`colo_blocks` turns the analysis's JSON document into titled tables and lines that fit
a 100-column terminal (durations in ms without a unit, times in s since the trace's first
event, the zero of every text output); the terminal output (:func:`render_colo_text`) and the report section
(:mod:`reports.report_text`) both print those, so they show the same figures.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.text import Text

from reports.console import fmt_us, table, who
from reports.timezero import TimeZero

WIDTH = 100
"""Terminal width the text output fits."""


@dataclass(frozen=True)
class Block:
    """A table (``columns`` set) or a line of text (``kind``: "text" or "note")."""

    title: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    right: tuple[str, ...] = ()
    kind: str = "text"
    omit_unknown: tuple[str, ...] = ()


def ms(us: float | None) -> str:
    """µs as a bare millisecond figure for narrow columns: 8.31, 635.9, 1017 ("-": unknown)."""
    if us is None:
        return "-"
    v = us / 1000.0
    if v < 10:
        return f"{v:.2f}"
    if v < 1000:
        return f"{v:.1f}"
    return f"{v:.0f}"


def _count(n: Any) -> str:
    return "-" if n is None else f"{int(n):,}"


def _pct(f: float | None) -> str:
    return "-" if f is None else f"{100 * f:.1f}%"


class _Clock:
    """Times of one process as seconds since the trace's first event on the common axis."""

    def __init__(self, zero: TimeZero, proc: dict[str, Any]) -> None:
        self.zero = zero.ns
        self.offset = int(proc.get("offset_ns") or 0)

    def at(self, ns: int | None, digits: int = 3) -> str:
        if ns is None or self.zero is None:
            return "-"
        return f"{(ns + self.offset - self.zero) / 1e9:.{digits}f}"


def _who(thread: dict[str, Any] | None) -> str:
    return who(thread.get("tid"), thread.get("name")) if thread else "-"


def _result(c: dict[str, Any]) -> str:
    return "-" if c["completed"] else (c["cut_in"] or "?")


def _has_bql(p: dict[str, Any]) -> bool:
    """Whether any checkpoint of the process has a BQL figure (the trace has mutex events)."""
    return any(c["bql_hold_us"] is not None or c["bql_wait_us"] is not None for c in p["checkpoints"])


def _secondary_rows(p: dict[str, Any], clock: _Clock) -> list[tuple[str, ...]]:
    return [
        (
            str(c["index"]),
            clock.at(c["request_ns"]),
            ms(c["pause_us"]),
            ms(c["wait_us"]),
            ms(c["ram_load_us"]),
            ms(c["receive_us"]),
            ms(c["flush_us"]),
            _count(c["flush_pages"]),
            ms(c["device_load_us"]),
            ms(c["bql_hold_us"]),
            ms(c["bql_wait_us"]),
            _result(c),
        )
        for c in p["checkpoints"]
    ]


def _primary_rows(p: dict[str, Any], clock: _Clock) -> list[tuple[str, ...]]:
    return [
        (
            str(c["index"]),
            clock.at(c["request_ns"]),
            ms(c["pause_us"]),
            ms(c["save_us"]),
            ms(c["ack_us"]),
            ms(c["load_wait_us"]),
            ms(c["resume_us"]),
            _count(c["dirty_pages"]),
            ms(c["bql_hold_us"]),
            ms(c["bql_wait_us"]),
            "-" if c["peer"] is None else str(c["peer"]),
            _result(c),
        )
        for c in p["checkpoints"]
    ]


SECONDARY_COLUMNS = (
    "#",
    "at s",
    "pause",
    "wait",
    "RAM",
    "recv",
    "flush",
    "pages",
    "dev",
    "BQL",
    "waits",
    "cut in",
)
PRIMARY_COLUMNS = (
    "#",
    "at s",
    "pause",
    "save",
    "ack",
    "loaded",
    "resume",
    "dirty",
    "BQL",
    "waits",
    "peer",
    "cut in",
)
SUMMARY_ROWS = (
    ("checkpoints", "checkpoints", _count),
    ("completed", "completed", _count),
    ("pause p50", "pause_p50_us", fmt_us),
    ("pause p90", "pause_p90_us", fmt_us),
    ("pause p99", "pause_p99_us", fmt_us),
    ("pause max", "pause_max_us", fmt_us),
    ("pause total", "pause_total_us", fmt_us),
    ("COLO ran", "colo_us", fmt_us),
    ("guest paused", "paused_fraction", _pct),
    ("mean: wait for state", "wait_mean_us", fmt_us),
    ("mean: RAM load", "ram_load_mean_us", fmt_us),
    ("mean: device state receive", "receive_mean_us", fmt_us),
    ("mean: RAM-cache flush", "flush_mean_us", fmt_us),
    ("mean: device load", "device_load_mean_us", fmt_us),
    ("mean: save and send", "save_mean_us", fmt_us),
    ("mean: wait for 'vmstate-received'", "ack_mean_us", fmt_us),
    ("mean: wait for 'vmstate-loaded'", "load_wait_mean_us", fmt_us),
    ("mean: resume", "resume_mean_us", fmt_us),
    ("mean: request to 'vmstate-loaded'", "duration_mean_us", fmt_us),
    ("mean: BQL held by the COLO thread", "bql_hold_mean_us", fmt_us),
    ("mean: BQL waited by other threads", "bql_wait_mean_us", fmt_us),
    ("pages flushed (all)", "flush_pages_total", _count),
    ("dirty pages sent (all)", "dirty_pages_total", _count),
)


def _summary(doc: dict[str, Any]) -> Block:
    procs = doc["processes"]
    columns = ("", *[f"{p['label']} ({p['role']})" for p in procs])
    rows = []
    for label, key, fmt in SUMMARY_ROWS:
        if not any(key in p["summary"] for p in procs):
            continue
        rows.append((label, *[fmt(p["summary"][key]) if key in p["summary"] else "" for p in procs]))
    return Block("Summary (pauses of the VM stopped by COLO, per side)", columns, tuple(rows), columns[1:])


def _failover_lines(doc: dict[str, Any], zero: TimeZero) -> list[Block]:
    out: list[Block] = []
    for p in doc["processes"]:
        f = p["failover"]
        if f is None:
            continue
        clock = _Clock(zero, p)
        during = f["during"] or "?"
        if f["checkpoint"] is not None:
            during = f"checkpoint {f['checkpoint']} ({during})"
        closed = f"at {clock.at(f['channel_closed_ns'])} s" if f["channel_closed_ns"] is not None else "-"
        out.append(
            Block(
                f"Failover of {p['label']} ({p['role']}): asked by {f['requested_by'] or '?'} on "
                f"{_who(f['request_thread'])} at {clock.at(f['request_ns'])} s, during {during}; "
                f"final: failover {f['final_state'] or '-'}, migration {f['migration_state'] or '-'}, "
                f"VM running again at {clock.at(f['running_ns'])} s; COLO channel closed: {closed}"
            )
        )
        out.append(
            Block(
                f"{p['label']}: failover states",
                ("state", "at s", "thread"),
                tuple((s["state"], clock.at(s["ts_ns"], 6), _who(s["thread"])) for s in f["states"]),
                ("at s",),
            )
        )
    return out


def _zero_lines(doc: dict[str, Any], zero: TimeZero) -> list[Block]:
    lines = [Block(zero.header() + "; durations in ms")]
    colo = doc.get("time_zero_ns")
    if colo is not None and zero.ns is not None:
        where = str(doc["time_zero"]).removeprefix("COLO start ")
        lines.append(Block(f"COLO started {where} at {zero.at(colo, 3)} s"))
    return lines


def colo_blocks(doc: dict[str, Any], zero: TimeZero) -> list[Block]:
    """The tables and lines of a ``ColoReport.to_json()`` document (see module docstring);
    times in seconds since ``zero``, the trace's first event."""
    out = _zero_lines(doc, zero)
    for p in doc["processes"]:
        clock = _Clock(zero, p)
        im = p["initial_migration"]
        if im is not None:
            out.append(
                Block(
                    f"{p['label']}: initial migration ({im['phase']} phase) {fmt_us(im['duration_us'])}, "
                    f"from {clock.at(im['start_ns'])} s to {clock.at(im['end_ns'])} s"
                )
            )
    for p in doc["processes"]:
        clock = _Clock(zero, p)
        secondary = p["role"] == "secondary"
        columns = SECONDARY_COLUMNS if secondary else PRIMARY_COLUMNS
        out.append(
            Block(
                f"{p['label']} ({p['role']}), COLO thread {_who(p['thread'])}: checkpoints",
                columns,
                tuple(_secondary_rows(p, clock) if secondary else _primary_rows(p, clock)),
                tuple(c for c in columns if c != "cut in"),
                omit_unknown=BQL_COLUMNS,  # without mutex events: the legend says how to get them
            )
        )
    if doc["processes"]:
        out.extend(Block(line) for line in LEGEND)
        with_bql = any(_has_bql(p) for p in doc["processes"])
        out.extend(Block(line) for line in (LEGEND_BQL if with_bql else (NO_BQL,)))
        out.append(_summary(doc))
    out.extend(_failover_lines(doc, zero))
    for p in doc["processes"]:
        out.extend(Block(f"{p['label']}: {n}", kind="note") for n in p["notes"])
    out.extend(Block(n, kind="note") for n in doc["notes"])
    out.extend(Block(i, kind="note") for i in doc["issues"])
    return out


def render_colo_text(doc: dict[str, Any], out: Console, zero: TimeZero) -> None:
    """Prints a ``ColoReport.to_json()`` document; titles and lines wrap at 100 columns."""
    for b in colo_blocks(doc, zero):
        text = f"note: {b.title}" if b.kind == "note" else b.title
        lines = textwrap.wrap(text, WIDTH, subsequent_indent="  ", break_on_hyphens=False) or [""]
        if b.columns:
            out.print(table(b.title, b.columns, b.rows, right=b.right, omit_unknown=b.omit_unknown))
        else:
            out.print(Text("\n".join(lines)))


LEGEND = (
    "secondary: wait = VM stopped -> 'vmstate-send' received; RAM = RAM load; recv = device",
    "  state received; flush = RAM-cache flush (pages); dev = device load until the VM runs",
    "primary: save = VM stopped -> state sent; ack = -> 'vmstate-received'; loaded = ->",
    "  'vmstate-loaded'; resume = -> VM running; dirty = dirty pages sent; peer = the",
    "  secondary's checkpoint it pairs with on one time axis",
    "cut in = what a checkpoint that did not complete was doing when failover, the next",
    "  checkpoint or the trace's end came",
)
LEGEND_BQL = (
    "BQL = held by the COLO thread, waits = BQL waits of the process's other threads, both",
    "  inside the checkpoint (request -> 'vmstate-loaded' or the cut)",
)
NO_BQL = "BQL and waits per checkpoint: not in this trace (enable qemu_mutex_*: migtrace events --for bql)"
BQL_COLUMNS = ("BQL", "waits")
"""What the columns of the checkpoint tables mean (lines under 100 columns)."""
