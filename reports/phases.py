"""Rendering ``migtrace phases``: phases, per-device loads, RAM, downtime, notes and issues."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from rich.console import Console

from reports.console import fmt_us, table, who
from reports.timezero import TimeZero

MAX_ISSUES_SHOWN = 20
NO_DEVICE_DOWNTIME = (
    "QEMU downtime per device: not in this trace (enable vmstate_downtime_load; QEMU 8.2 and later)"
)


def render_phases_text(
    doc: dict[str, Any], out: Console, zero: TimeZero, offsets: Collection[str] = ()
) -> None:
    """Prints a ``PhaseReport.to_json()`` document as tables (times in seconds since ``zero``)."""
    lt = doc["load_thread"]
    lt_text = who(lt.get("tid"), lt.get("name")) + (" [inferred]" if lt.get("inferred") else "")
    out.print(
        f"Incoming migration ({doc['process'] or 'no destination'}): {doc['outcome']}; load thread: {lt_text}"
    )
    phases = doc["phases"]
    out.print(zero.header())
    out.print(
        table(
            "Phases",
            ["phase", "thread", "role", "start", "duration", ""],
            [
                [
                    p["name"],
                    who(p["tid"], p["thread"]),
                    p["role"],
                    zero.at(p["start_ns"]),
                    fmt_us(p["duration_us"]),
                    "" if p["closed"] else "not closed",
                ]
                for p in phases
            ],
            right=["start", "duration"],
            omit_unknown=["thread"],
        )
    )
    devices = doc["devices"]
    if devices:
        out.print(
            table(
                f"Device state loads ({len(devices)})",
                ["idstr", "instance", "section", "type", "thread", "duration", "QEMU downtime"],
                [
                    [
                        d["idstr"],
                        d["instance_id"],
                        d["section_id"],
                        d["section_type"],
                        who(d["tid"], d["thread"]),
                        fmt_us(d["duration_us"]),
                        fmt_us(d["downtime_us"]),
                    ]
                    for d in devices
                ],
                right=["instance", "section", "duration", "QEMU downtime"],
                omit_unknown=["thread", "QEMU downtime"],
                tail=["idstr"],
            )
        )
        if all(d["downtime_us"] is None for d in devices):
            out.print(NO_DEVICE_DOWNTIME)
    ram = doc["ram"]
    s = ram["sections"]
    pages = "-" if ram["pages"] is None else f"{ram['pages']} pages"
    detail = []
    if ram["normal_pages"] is not None:
        detail.append(f"{ram['normal_pages']} normal, {ram['zero_pages']} zero")
    if ram["postcopy_pages"]:
        detail.append(f"{ram['postcopy_pages']} in postcopy")
    if ram["bytes"] is not None:
        detail.append(f"{ram['bytes'] / 2**20:.1f} MiB of page data")
    out.print(
        f"RAM: {ram['iterations']} RAM sections loaded while the VM ran (PART, one per pass of the "
        "source's save loop; not QEMU's dirty-sync-count)"
    )
    out.print(
        f"Sections: START {s['start']} PART {s['part']} END {s['end']} FULL {s['full']} "
        f"COMMAND {s['command']}; {pages}" + (f" ({'; '.join(detail)})" if detail else "")
    )
    cps = doc["checkpoints"]
    if cps:
        out.print(
            table(
                "Downtime checkpoints",
                ["process", "checkpoint", "thread", "at"],
                [[c["process"], c["name"], who(c["tid"], c["thread"]), zero.at(c["ts_ns"])] for c in cps],
                right=["at"],
                omit_unknown=["thread"],
            )
        )
    dt, tt = doc["downtime"], doc["total_time"]
    out.print(
        table(
            "Downtime and total time",
            ["", "source", "destination", "end to end", "QEMU reported"],
            [
                [
                    "downtime",
                    fmt_us(dt["src_us"]),
                    fmt_us(dt["dst_us"]),
                    fmt_us(dt["end_to_end_us"]),
                    "-" if dt["qemu_reported_ms"] is None else f"{dt['qemu_reported_ms']:.0f} ms",
                ],
                [
                    "total time",
                    fmt_us(tt["src_us"]),
                    fmt_us(tt["dst_us"]),
                    "",
                    "-" if tt["qemu_reported_ms"] is None else f"{tt['qemu_reported_ms']:.0f} ms",
                ],
            ],
            right=["source", "destination", "end to end", "QEMU reported"],
        )
    )
    out.print(f"time axis: {dt['method']}")
    mf = doc["multifd"]
    if mf["present"]:
        out.print(
            table(
                "multifd receive channels",
                ["channel", "thread", "packets", "pages"],
                [
                    [
                        c["id"],
                        who(c["tid"], c["thread"]),
                        c["packets"],
                        "-" if c["pages"] is None else c["pages"],
                    ]
                    for c in mf["channels"]
                ],
                right=["packets", "pages"],
                omit_unknown=["thread"],
            )
        )
        sync = mf["sync"] or {}
        out.print(
            f"multifd sync waits: {sync.get('count', 0)}, total {fmt_us(sync.get('total_us'))}, "
            f"longest {fmt_us(sync.get('max_us'))}"
        )
    qs = doc.get("qemu_status")
    if qs:
        out.print(
            f"QEMU status: source {qs['src'] or '-'}, destination {qs['dst'] or '-'}"
            + ("" if qs["agrees"] is not False else "  (does not match the trace)")
        )
    render_notes_and_issues(
        doc["notes"], doc["issue_counts"], doc["issues"], out, doc["open_at_end"], offsets
    )


def open_at_end_line(count: int) -> str:
    """What spans still open at the end of a process's trace mean, in one line."""
    spans = "span is" if count == 1 else "spans are"
    return (
        f"the trace ends while {count} {spans} open and the migration did not complete: it failed "
        "or was cancelled, or the process was killed or its trace cut (not an inconsistency)"
    )


def _place(issue: dict[str, Any], offsets: Collection[str]) -> str:
    return f"{issue['path']}{'@' if issue['path'] in offsets else ':'}{issue['line']}"


def render_notes_and_issues(
    notes: list[str],
    counts: dict[str, int],
    issues: list[dict[str, Any]],
    out: Console,
    open_at_end: Sequence[dict[str, Any]] = (),
    offsets: Collection[str] = (),
) -> None:
    """Notes, spans still open where the trace ends, then inconsistencies of the input with
    file:line (the first few per kind); ``file@offset`` for the files of ``offsets`` (binary
    inputs, whose records have a byte offset, not a line)."""
    for n in notes:
        out.print(f"note: {n}")
    if open_at_end:
        out.print(open_at_end_line(len(open_at_end)))
        for i in open_at_end[:MAX_ISSUES_SHOWN]:
            out.print(f"  {_place(i, offsets)}: {i['message']}")
        if len(open_at_end) > MAX_ISSUES_SHOWN:
            out.print(f"  ... {len(open_at_end) - MAX_ISSUES_SHOWN} more")
    if not counts:
        return
    out.print("inconsistent input: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    shown: dict[str, int] = {}
    for i in issues:
        k = i["kind"]
        shown[k] = shown.get(k, 0) + 1
        if shown[k] <= MAX_ISSUES_SHOWN:
            out.print(f"  {_place(i, offsets)}: {k}: {i['message']}")
    for k, v in counts.items():
        if v > min(shown.get(k, 0), MAX_ISSUES_SHOWN):
            out.print(f"  ... {v - min(shown.get(k, 0), MAX_ISSUES_SHOWN)} more {k}")
