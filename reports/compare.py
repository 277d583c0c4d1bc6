"""Rendering ``migtrace compare``: the comparison's sections, in every report format.

:func:`compare_sections` turns ``Comparison.to_json()`` into the format-neutral blocks of
:mod:`reports.report_text`; the text, Markdown and HTML outputs render those, so they show the
same figures as the JSON. The first line of every output names the load thread of each side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console

from reports.blocks import Section
from reports.console import fmt_us
from reports.html import FOOTER, EmbeddedFigure, render_html
from reports.markdown import render_markdown
from reports.report_json import to_json_text
from reports.report_text import render_text
from tracetool._analyses.comparison import Comparison

DEVICES_SHOWN = 12
TITLE = "migtrace compare"


def fmt_value(v: float | None, unit: str) -> str:
    """A figure of one side: a duration, a count or a share."""
    if v is None:
        return "-"
    if unit == "fraction":
        return f"{100 * v:.1f}%"
    return fmt_us(v) if unit == "us" else f"{v:,.0f}"


def fmt_change(d: dict[str, Any]) -> str:
    """after - before with its sign."""
    c = d["delta"]
    if c is None:
        return (
            "new"
            if d["before"] is None and d["after"] is not None
            else ("gone" if d["after"] is None and d["before"] is not None else "-")
        )
    sign = "+" if c > 0 else ("-" if c < 0 else "±")
    return sign + fmt_value(abs(c), d["unit"])


def fmt_relative(d: dict[str, Any]) -> str:
    """(after - before) / before as a signed percentage."""
    r = d["relative"]
    return "-" if r is None else f"{100 * r:+.1f}%"


def _arrow(d: dict[str, Any]) -> str:
    return f"{fmt_value(d['before'], d['unit'])} → {fmt_value(d['after'], d['unit'])}"


def _delta_rows(deltas: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            d["name"],
            fmt_value(d["before"], d["unit"]),
            fmt_value(d["after"], d["unit"]),
            fmt_change(d),
            fmt_relative(d),
        ]
        for d in deltas
    ]


def _who(t: dict[str, Any] | None) -> str:
    if t is None:
        return "-"
    base = t["name"] or t["role"]
    inside = [str(t["tid"])] if t["tid"] is not None else []
    if t["carries_load"]:
        inside.append("load")
    return f"{base} ({', '.join(inside)})" if inside else base


def _missing_load(side: str, doc: dict[str, Any]) -> str:
    """What stands in for a side without a load thread row: where its load ran instead."""
    return "(load ran on the main thread)" if doc["load_thread"][side].startswith("main") else "-"


def compare_sections(doc: dict[str, Any]) -> list[Section]:
    """The sections of ``migtrace compare`` from ``Comparison.to_json()``."""
    b, a = doc["before"], doc["after"]
    cols = ["", b["label"], a["label"], "change", "change %"]
    right = [b["label"], a["label"], "change", "change %"]

    head = Section("summary", "Compared")
    head.add(f"load thread: {doc['load_thread']['text']}", "headline")
    load = doc["bql"]["load"]
    if load is not None:
        held = load["metrics"]["hold_total_us"]
        head.add(
            f"BQL held by the load thread: {_arrow(held)} ({fmt_relative(held)}); "
            f"{_who(load['before'])} → {_who(load['after'])}",
            "headline",
        )
    for n in doc["notes"]:
        head.add(n, "note")

    phases = Section("phases", "Incoming phases")
    if doc["phases"]:
        phases.add_table(
            "Phase durations",
            ["phase", f"{b['label']} thread", f"{a['label']} thread", *cols[1:]],
            [
                [p["name"], p["before_thread"] or "-", p["after_thread"] or "-", *_delta_rows([p])[0][1:]]
                for p in doc["phases"]
            ],
            right=right,
        )
    else:
        phases.add("no incoming phases on either side", "note")
    if doc["devices"]:
        phases.add_table(
            f"Device load times ({len(doc['devices'])}, largest first)",
            ["device", *cols[1:]],
            _delta_rows(doc["devices"]),
            right=right,
            compact=DEVICES_SHOWN,
            tail=["device"],
        )

    bql = Section("bql", "Big QEMU Lock (BQL)")
    threads = doc["bql"]["threads"]
    if threads:
        bql.add(f"process: {doc['bql']['process']}; threads matched by role, then by name")
        held, tail = [], []
        for t in threads:
            m = t["metrics"]
            role = t["before"]["role"] if t["before"] else t["after"]["role"]
            pair = [
                _who(t[k]) if t[k] or role != "load" else _missing_load(k, doc) for k in ("before", "after")
            ]
            held.append(
                [
                    role,
                    *pair,
                    _arrow(m["holds"]),
                    _arrow(m["hold_total_us"]),
                    fmt_change(m["hold_total_us"]),
                    fmt_relative(m["hold_total_us"]),
                ]
            )
            tail.append(
                [
                    role,
                    pair[1] if t["after"] else pair[0],
                    _arrow(m["hold_max_us"]),
                    _arrow(m["hold_p99_us"]),
                    _arrow(m["wait_total_us"]),
                    _arrow(m["wait_max_us"]),
                ]
            )
        bql.add_table(
            "BQL held per thread (before → after)",
            ["role", f"{b['label']} thread", f"{a['label']} thread", "holds", "held", "change", "change %"],
            held,
            right=["holds", "held", "change", "change %"],
        )
        bql.add_table(
            "Longest hold, p99 hold and waits per thread (before → after)",
            ["role", "thread", "longest", "p99", "waited", "longest wait"],
            tail,
            right=["longest", "p99", "waited", "longest wait"],
        )
    else:
        bql.add(
            "no BQL figures on either side (enable qemu_mutex_lock, qemu_mutex_locked, qemu_mutex_unlock)",
            "note",
        )

    preempt = Section("preempt", "Postcopy preempt")
    if doc["preempt"]:
        preempt.add_table("", cols, _delta_rows(doc["preempt"]), right=right)
    else:
        preempt.add("no postcopy on either side", "note")

    down = Section("downtime", "Downtime and total time")
    if doc["downtime"]:
        down.add_table("", cols, _delta_rows(doc["downtime"]), right=right)
    if doc.get("critical_path"):
        down.add_table(
            "Critical path of the pause, per step (longest first)",
            cols,
            _delta_rows(
                sorted(doc["critical_path"], key=lambda d: -max(d["before"] or 0.0, d["after"] or 0.0))
            ),
            right=right,
            compact=15,
        )
    else:
        down.add("no downtime figures on either side", "note")
    sections = [head, phases, bql, preempt, down]
    if doc.get("colo"):
        colo = Section("colo", "COLO checkpoints (secondary, then primary)")
        colo.add_table("", cols, _delta_rows(doc["colo"]), right=right)
        sections.append(colo)
    return sections


def compare_intro(doc: dict[str, Any]) -> list[str]:
    """Lines under the heading: the two sides."""
    return [f"{s['label']}: {', '.join(s['inputs'])}" for s in (doc["before"], doc["after"])]


def compare_text(cmp: Comparison, out: Console) -> None:
    """Prints the comparison as terminal tables."""
    doc = cmp.to_json()
    render_text(TITLE, compare_sections(doc), out, intro=compare_intro(doc))


def compare_markdown(cmp: Comparison) -> str:
    """The comparison as Markdown."""
    doc = cmp.to_json()
    return render_markdown(TITLE, compare_sections(doc), intro=compare_intro(doc))


def compare_html(
    cmp: Comparison,
    figures: Mapping[str, Sequence[EmbeddedFigure | str]] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The comparison as one self-contained HTML page; ``notes`` (about figures) go under the
    heading."""
    doc = cmp.to_json()
    return render_html(
        TITLE, compare_sections(doc), figures, intro=[*compare_intro(doc), *notes], footer=[FOOTER]
    )


def compare_json(cmp: Comparison) -> str:
    """The comparison as JSON text."""
    return to_json_text(cmp.to_json())
