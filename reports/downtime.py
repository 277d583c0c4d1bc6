"""Rendering ``migtrace downtime``: the guest's pause end to end, its critical path, per-device
save and load times, and QEMU's own figure next to it.

:func:`downtime_blocks` adds the tables and lines to a :class:`reports.blocks.Section` (the
report's downtime section, or the one ``migtrace downtime`` prints), so both show the same
figures.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from reports.block_text import print_blocks
from reports.blocks import Section
from reports.console import fmt_us
from reports.timezero import TimeZero

PATH_SHOWN = 15
"""Critical-path steps listed in the compact outputs (the longest ones; JSON/HTML list all)."""
DEVICES_SHOWN = 10
NO_STEP_BQL = "BQL held per step: not in this trace (enable qemu_mutex_*: migtrace events --for bql)"
WIDTH = 100
"""Lines of text are wrapped to a 100-column terminal."""


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:g} ms"


def _step_name(s: dict[str, Any]) -> str:
    name = s["step"]
    if s.get("device"):
        name += " " + str(s["device"]) + (f" #{s['instance_id']}" if s.get("instance_id") else "")
    return name + (" (±)" if s.get("uncertain") else "")


def downtime_blocks(out: Section, doc: dict[str, Any], zero: TimeZero) -> None:
    """The downtime document (``migtrace downtime --format json``) as tables and lines; times
    in seconds since ``zero`` (the trace's first event), durations as durations."""
    e2e, rep = doc["end_to_end_us"], doc["reported_us"]
    head = f"guest paused end to end: {fmt_us(e2e)}" if e2e is not None else "end to end: not in this trace"
    if rep is not None:
        head += f"; QEMU reported {fmt_us(rep)} (from {doc['reported_from']})"
    out.add(head, "headline")
    for line in doc["explanation"][1:] if rep is not None and e2e is not None else doc["explanation"]:
        out.add(line)
    start, end = doc["start"], doc["end"]
    if start is not None and end is not None and zero.ns is not None:
        stopped, ran = zero.at(start["ns"]), zero.at(end["ns"])
        out.add(f"The source stopped the VM at {stopped} s; the destination ran it at {ran} s")
    path = doc["critical_path"]
    if path:
        total = sum(s["us"] for s in path) or 1.0
        shown = sorted(range(len(path)), key=lambda k: -path[k]["us"])[:PATH_SHOWN]
        rows = [
            [
                zero.at(path[k]["start_ns"]),
                path[k]["side"],
                _step_name(path[k]),
                fmt_us(path[k]["us"]),
                fmt_us(path[k]["bql_us"]),
                f"{100 * path[k]['us'] / total:.1f}%",
            ]
            for k in sorted(shown)
        ]
        rest = len(path) - len(shown)
        title = f"Critical path ({len(path)} steps" + (f"; the {len(shown)} longest shown)" if rest else ")")
        out.add_table(
            title,
            ["at s", "side", "step", "time", "BQL held", "share"],
            rows,
            right=["at s", "time", "BQL held", "share"],
            tail=["step"],
            omit_unknown=["BQL held"],
        )
        if rest:
            rest_us = sum(s["us"] for k, s in enumerate(path) if k not in shown)
            out.add(f"{rest} shorter steps: {fmt_us(rest_us)} together")
        if all(s["bql_us"] is None for s in path):
            out.add(NO_STEP_BQL, "note")
    devices = sorted(doc["by_device"], key=lambda d: -max(d["save_us"] or 0.0, d["load_us"] or 0.0))
    if devices:
        out.add_table(
            "Per device: source save, destination load (QEMU's own times where traced)",
            ["device", "type", "save", "load", "on critical path"],
            [
                [
                    str(d["device"]) + (f" #{d['instance_id']}" if d.get("instance_id") else ""),
                    d["type"] or "-",
                    fmt_us(d["save_us"]),
                    fmt_us(d["load_us"]),
                    fmt_us(d["critical_us"]) if d["critical"] else "no",
                ]
                for d in devices
            ],
            right=["save", "load", "on critical path"],
            compact=DEVICES_SHOWN,
            tail=["device"],
        )
    sw, tt = doc["switchover"], doc["total_time"]
    out.add_table(
        "Switchover and total time from both ends",
        ["", "source", "destination", "end to end", "QEMU reported"],
        [
            [
                "downtime",
                fmt_us(sw.get("src_us")),
                fmt_us(sw.get("dst_us")),
                fmt_us(sw.get("end_to_end_us")),
                _ms(sw.get("qemu_reported_ms")),
            ],
            [
                "total time",
                fmt_us(tt.get("src_us")),
                fmt_us(tt.get("dst_us")),
                "",
                _ms(tt.get("qemu_reported_ms")),
            ],
        ],
        right=["source", "destination", "end to end", "QEMU reported"],
    )
    al = doc["alignment"]
    axis = f"time axis: {al['method']} (times on the destination's clock)"
    if al["method"] == "wire-events":
        axis += f", source shifted by {fmt_us(al['offset_ns'] / 1000)}"
    if al.get("uncertainty_us") is not None:
        axis += f", uncertainty ± {fmt_us(al['uncertainty_us'])}"
    out.add(axis)
    for n in doc["notes"]:
        out.add(n, "note")


def render_downtime_text(doc: dict[str, Any], out: Console, zero: TimeZero) -> None:
    """Prints ``migtrace downtime``'s text output: which zero its times use, then the blocks."""
    out.print(Text(zero.header()))
    printed = Section("downtime", "Downtime")
    downtime_blocks(printed, doc, zero)
    print_blocks(printed.blocks, out, "json", wrap=WIDTH)
