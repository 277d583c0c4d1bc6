"""The report's content as format-neutral blocks, and its terminal rendering.

A report is a list of :class:`Section`; each holds :class:`Table` and :class:`Para` blocks whose
cells are already formatted strings. :func:`report_sections` builds them from the JSON
document of ``migtrace report`` (:mod:`reports.report_json`), so the terminal, Markdown and
HTML outputs show the same figures as the JSON. :func:`render_text` prints sections as rich
tables (colour only on a terminal, see :mod:`reports.console`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.text import Text

from reports.colo import colo_blocks
from reports.console import fmt_us, table
from reports.downtime import downtime_blocks
from reports.phases import fmt_offset
from reports.report_json import report_document
from reports.trace_end import THREAD_COLUMNS, at_end_lines, headline, thread_rows
from tracetool._analyses.reportdata import ReportData

SECTION_TITLES = {
    "summary": "Trace",
    "phases": "Incoming migration phases",
    "downtime": "Downtime end to end and total time",
    "bql": "Big QEMU Lock (BQL)",
    "trace_end": "When the trace ended",
    "preempt": "Postcopy preempt",
    "colo": "COLO checkpoints and failover",
}
DEVICES_SHOWN = 12
"""Device loads listed in the compact (terminal, Markdown) outputs; HTML lists all."""
ISSUES_SHOWN = 5
EVENTS_SHOWN = 10


@dataclass(frozen=True)
class Table:
    """A titled table of formatted cells; ``right`` names the right-aligned (numeric) columns.

    ``compact``: how many rows the terminal and Markdown outputs show (None: all); the rest
    are counted in a "... N more" line. HTML shows every row.
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    right: frozenset[str] = frozenset()
    compact: int | None = None
    optional: tuple[str, ...] = ()


@dataclass(frozen=True)
class Para:
    """A line of text. ``kind``: "headline" (the key finding), "text", or "note"."""

    text: str
    kind: str = "text"


Block = Table | Para


@dataclass
class Section:
    """One part of a report; ``key`` is its JSON key (figures attach to it too)."""

    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add_table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        right: Sequence[str] = (),
        compact: int | None = None,
        optional: Sequence[str] = (),
    ) -> None:
        """Adds a table; cells become strings ("" for None). ``optional``: columns a narrow
        terminal may leave out, the first named first."""
        self.blocks.append(
            Table(
                title,
                tuple(columns),
                tuple(tuple("" if v is None else str(v) for v in r) for r in rows),
                frozenset(right),
                compact,
                tuple(optional),
            )
        )

    def add(self, text: str, kind: str = "text") -> None:
        """Adds a line of text."""
        self.blocks.append(Para(text, kind))


# ---------------------------------------------------------------------------------- helpers
def who(tid: Any, name: Any) -> str:
    """A thread as ``name (tid)``; ``?`` when unnamed."""
    label = name if name not in (None, "", "?") else "?"
    return f"{label} ({tid})" if tid is not None else str(label)


def us(v: float | None) -> str:
    """A duration in µs, human-formatted ("-" when unknown)."""
    return fmt_us(v)


def pct(fraction: float | None) -> str:
    """A fraction as a percentage with one decimal."""
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def _count(n: Any) -> str:
    return "-" if n is None else f"{n:,}"


def origin_of(doc: dict[str, Any]) -> int | None:
    """The time later times are shown relative to: the start of the first phase."""
    phases = (doc.get("phases") or {}).get("phases") or []
    return min((p["start_ns"] for p in phases if p.get("start_ns") is not None), default=None)


# ---------------------------------------------------------------------------------- sections
def report_sections(doc: dict[str, Any]) -> list[Section]:
    """The sections of ``migtrace report`` from its JSON document (see reports.report_json)."""
    builders = {
        "summary": _summary,
        "phases": _phases,
        "downtime": _downtime,
        "bql": _bql,
        "trace_end": _trace_end,
        "preempt": _preempt,
        "colo": _colo,
    }
    out = []
    for key, build in builders.items():
        sec = Section(key, SECTION_TITLES[key])
        if doc.get(key) is not None:
            build(sec, doc)
        for note in doc["notes"].get(key, []):
            sec.add(note, "note")
        out.append(sec)
    return out


def _summary(sec: Section, doc: dict[str, Any]) -> None:
    s = doc["summary"]
    inputs = []
    for i in s["inputs"]:
        fmt = i["format"] + (f"/{i['variant']}" if i.get("variant") else "")
        inputs.append(
            [
                i["path"],
                fmt,
                i["clock"],
                _count(i["events"]),
                _count(i["other_lines"]),
                _count(i["dropped_events"]),
                _count(len(i["warnings"])),
            ]
        )
    sec.add_table(
        "Inputs",
        ["file", "format", "clock", "events", "other lines", "dropped", "warnings"],
        inputs,
        right=["events", "other lines", "dropped", "warnings"],
    )
    sec.add_table(
        "Processes",
        ["process", "side", "pid", "load thread"],
        [
            [
                p["label"],
                p["side"] or "?",
                "-" if p["pid"] is None else p["pid"],
                _thread_of(s, p["label"], p["load_tid"]),
            ]
            for p in s["processes"]
        ],
    )
    sec.add_table(
        "Threads",
        ["process", "tid", "name", "role", "load", "events"],
        [
            [
                t["process"],
                t["tid"] if t["tid"] is not None else "?",
                t["name"] or "?",
                t["role"],
                "yes" if t["carries_load"] else "",
                _count(t["events"]),
            ]
            for t in s["threads"]
        ],
        right=["tid", "events"],
    )
    counts = list(s["event_counts"].items())
    sec.add_table(
        f"Events ({len(counts)} names)",
        ["event", "count"],
        [[name, _count(n)] for name, n in counts],
        right=["count"],
        compact=EVENTS_SHOWN,
    )
    for i in s["inputs"]:
        for w in i["warnings"][:ISSUES_SHOWN]:
            sec.add(f"warning: {w}", "note")


def _thread_of(summary: dict[str, Any], process: str, tid: int | None) -> str:
    if tid is None:
        return "-"
    for t in summary["threads"]:
        if t["process"] == process and t["tid"] == tid:
            return who(tid, t["name"])
    return str(tid)


def _phases(sec: Section, doc: dict[str, Any]) -> None:
    p = doc["phases"]
    lt = p["load_thread"]
    load = who(lt.get("tid"), lt.get("name")) + (" (inferred)" if lt.get("inferred") else "")
    if lt.get("role") == "main":
        load += ", in a coroutine on the main thread"
    sec.add(f"{p['process']}: {p['outcome']}; load thread: {load}", "headline")
    qs = p.get("qemu_status")
    if qs:
        sec.add(
            f"QEMU reported: source {qs['src'] or '-'}, destination {qs['dst'] or '-'}"
            + (" (does not match the trace)" if qs.get("agrees") is False else "")
        )
    origin = origin_of(doc)
    sec.add_table(
        "Phases",
        ["phase", "thread", "start", "duration", ""],
        [
            [
                ph["name"],
                who(ph["tid"], ph["thread"]),
                fmt_offset(ph["start_ns"], origin),
                us(ph["duration_us"]),
                "" if ph["closed"] else "not closed",
            ]
            for ph in p["phases"]
        ],
        right=["start", "duration"],
    )
    devices = sorted(p["devices"], key=lambda d: -(d["duration_us"] or 0.0))
    if devices:
        sec.add_table(
            f"Device state loads ({len(devices)}, longest first)",
            ["device", "instance", "type", "thread", "duration", "QEMU downtime"],
            [
                [
                    d["idstr"],
                    d["instance_id"],
                    d["section_type"],
                    who(d["tid"], d["thread"]),
                    us(d["duration_us"]),
                    us(d["downtime_us"]),
                ]
                for d in devices
            ],
            right=["instance", "duration", "QEMU downtime"],
            compact=DEVICES_SHOWN,
        )
    ram = p["ram"]
    s = ram["sections"]
    sec.add(
        f"RAM: {ram['iterations']} RAM sections loaded while the VM ran (PART, one per pass of the "
        "source's save loop; not QEMU's dirty-sync-count)"
    )
    line = (
        f"Sections: START {s['start']}, PART {s['part']}, END {s['end']}, FULL {s['full']}, "
        f"COMMAND {s['command']}"
    )
    if ram["pages"] is not None:
        line += f"; {ram['pages']:,} pages ({ram['normal_pages']:,} normal, {ram['zero_pages']:,} zero"
        line += f", {ram['postcopy_pages']:,} in postcopy)" if ram["postcopy_pages"] else ")"
    if ram["bytes"] is not None:
        line += f", {ram['bytes'] / 2**20:.1f} MiB of page data"
    sec.add(line)
    mf = p["multifd"]
    if mf.get("present"):
        sec.add_table(
            "multifd receive channels",
            ["channel", "thread", "packets", "pages"],
            [[c["id"], who(c["tid"], c["thread"]), c["packets"], _count(c["pages"])] for c in mf["channels"]],
            right=["packets", "pages"],
        )
    if p["checkpoints"]:
        first = p["checkpoints"][0]["ts_ns"]
        sec.add_table(
            "Downtime checkpoints",
            ["process", "checkpoint", "thread", "at"],
            [
                [c["process"], c["name"], who(c["tid"], c["thread"]), fmt_offset(c["ts_ns"], first)]
                for c in p["checkpoints"]
            ],
            right=["at"],
        )
    for n in p["notes"]:
        sec.add(n, "note")
    counts = p["issue_counts"]
    if counts:
        total = sum(counts.values())
        sec.add_table(
            f"Inconsistent input ({total}: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + ")",
            ["where", "kind", "message"],
            [[f"{i['path']}:{i['line']}", i["kind"], i["message"]] for i in p["issues"]],
            compact=ISSUES_SHOWN,
        )


def _downtime(sec: Section, doc: dict[str, Any]) -> None:
    downtime_blocks(sec, doc["downtime"])


def _bql(sec: Section, doc: dict[str, Any]) -> None:
    b = doc["bql"]
    procs = list(b["processes"].values())
    primary = b["bql"]
    if primary is not None:  # the destination first
        procs.sort(key=lambda x: x["process"] != primary["process"])
    origin = origin_of(doc)
    for p in procs:
        _bql_process(sec, p, origin, len(procs) > 1)


def _bql_process(sec: Section, p: dict[str, Any], origin: int | None, several: bool) -> None:
    where = f"{p['process']}: " if several else ""
    if p["mutex"] is None:
        sec.add(f"{where}BQL not found", "headline")
    else:
        how = "per thread" if p["attribution"] == "thread" else "per role, by call site (no thread ids)"
        sec.add(
            f"{where}BQL is mutex {p['mutex']}, holds attributed {how}; found by its {p['identified_by']}",
            "headline",
        )
    label = f" ({p['process']})" if several else ""
    if p["threads"]:
        sec.add_table(
            "Holds and waits per thread" + label,
            ["thread", "role", "holds", "held", "max", "p50", "p99", "waits", "waited", "wait max"],
            [
                [
                    who(t["tid"], t["name"]) if p["attribution"] == "thread" else "-",
                    t["role"],
                    _count(t["holds"]),
                    us(t["hold_total_us"]),
                    us(t["hold_max_us"]),
                    us(t["hold_p50_us"]),
                    us(t["hold_p99_us"]),
                    _count(t["waits"]),
                    us(t["wait_total_us"]),
                    us(t["wait_max_us"]),
                ]
                for t in p["threads"]
            ],
            right=["holds", "held", "max", "p50", "p99", "waits", "waited", "wait max"],
            optional=["p50", "wait max", "p99"],
        )
    if p["longest_holds"]:
        sec.add_table(
            f"Longest holds{label}",
            ["taken at", "held", "thread", "lock site", "phase", "device"],
            [
                [
                    fmt_offset(h["start_ns"], origin) if origin is not None else "-",
                    us(h["duration_us"]),
                    h["thread"] or h["role"] or "-",
                    h["lock_site"] or "-",
                    h["phase"] or "-",
                    h["device"] or h["section"] or "-",
                ]
                for h in p["longest_holds"]
            ],
            right=["held"],
        )
    if p["by_phase"]:
        sec.add_table(
            f"BQL held per phase{label}",
            ["phase", "length", "held", "held %", "by"],
            [
                [
                    ph["phase"],
                    us(ph["duration_us"]),
                    us(ph["hold_us"]),
                    pct(ph["held_fraction"]),
                    ", ".join(
                        f"{t['thread'] or t['role']} {fmt_us(t['hold_us'])}" for t in ph["threads"][:3]
                    ),
                ]
                for ph in p["by_phase"]
            ],
            right=["length", "held", "held %"],
        )
    if p["inconsistency_count"]:
        sec.add_table(
            f"{p['inconsistency_count']} inconsistent mutex events{label}",
            ["where", "message"],
            [[f"{i['path']}:{i['line']}", i["message"]] for i in p["inconsistencies"]],
            compact=ISSUES_SHOWN,
        )
    if p["edge_count"]:
        sec.add(f"{p['edge_count']} holds or waits cut by the start or the end of the trace", "note")
    for line in at_end_lines(p):
        sec.add(line)
    for n in p["notes"]:
        sec.add(n, "note")


def _trace_end(sec: Section, doc: dict[str, Any]) -> None:
    end = doc["trace_end"]
    sec.add(headline(end), "headline")
    sec.add_table(
        "Threads at the end of the trace", THREAD_COLUMNS, thread_rows(end), right=["before the end"]
    )


def _yes(v: bool | None) -> str:
    return "-" if v is None else ("yes" if v else "no")


def _preempt(sec: Section, doc: dict[str, Any]) -> None:
    p = doc["preempt"]
    waited = us(p["packaged_wait_us"])
    if p["packaged_wait_yields"] is not None:
        waited += f" ({p['packaged_wait_yields']} coroutine events)"
    sec.add_table(
        "Destination",
        ["", "value"],
        [
            ["postcopy", _yes(p["postcopy"])],
            ["preempt enabled", _yes(p["enabled"])],
            ["preempt thread waited for its channel", us(p["thread_wait_us"])],
            ["packaged load waited", waited],
        ],
    )
    r = p["page_requests"]
    sec.add_table(
        "Page requests (add → del)",
        ["count", "unmatched", "p50", "p99", "max", "mean"],
        [
            [
                _count(r["count"]),
                _count(r["unmatched"]),
                us(r["p50_us"]),
                us(r["p99_us"]),
                us(r["max_us"]),
                us(r["mean_us"]),
            ]
        ],
        right=["count", "unmatched", "p50", "p99", "max", "mean"],
    )
    if p["pages_by_channel"]:
        names = {"0": "0 (main)", "1": "1 (preempt)"}
        sec.add_table(
            "Postcopy pages per channel",
            ["channel", "pages"],
            [[names.get(k, k), _count(v)] for k, v in p["pages_by_channel"].items()],
            right=["pages"],
        )
    src = p["source"]
    if src is not None:
        rows = [
            [k.replace("_", " "), _count(v)]
            for k, v in src.items()
            if k not in ("switch_to", "enabled", "channel_ns")
        ]
        rows.append(["preempt enabled (source)", _yes(src.get("enabled"))])
        rows += [[f"switches to channel {ch}", _count(n)] for ch, n in (src.get("switch_to") or {}).items()]
        sec.add_table("Source (postcopy_preempt_* events)", ["", "count"], rows, right=["count"])
    for n in p["notes"]:
        sec.add(n, "note")


def _colo(sec: Section, doc: dict[str, Any]) -> None:
    for b in colo_blocks(doc["colo"]):
        if b.columns:
            sec.add_table(b.title, b.columns, b.rows, right=b.right)
        else:
            sec.add(b.title, b.kind)


# ---------------------------------------------------------------------------------- terminal
def render_text(title: str, sections: Sequence[Section], out: Console, intro: Sequence[str] = ()) -> None:
    """Prints sections as rich tables; long tables are cut to their ``compact`` rows."""
    out.print(Text(title))
    for line in intro:
        out.print(Text(line))
    for sec in sections:
        out.print("")
        out.rule(Text(sec.title), align="left")
        for b in sec.blocks:
            if isinstance(b, Para):
                out.print(Text(f"note: {b.text}" if b.kind == "note" else b.text))
                continue
            rows = b.rows if b.compact is None else b.rows[: b.compact]
            out.print(table(b.title or None, b.columns, rows, right=sorted(b.right), optional=b.optional))
            if len(rows) < len(b.rows):
                out.print(Text(f"  ... {len(b.rows) - len(rows)} more (all in --format json/html)"))


# ---------------------------------------------------------------------------------- whole report
def report_title(data: ReportData) -> str:
    """The heading of a report."""
    return "migtrace report"


def report_intro(data: ReportData) -> list[str]:
    """Lines under the heading: what was read."""
    return ["trace: " + ", ".join(data.inputs)]


def report_text(data: ReportData, out: Console) -> None:
    """Prints the whole report of one trace to a terminal (or a file-backed Console)."""
    render_text(report_title(data), report_sections(report_document(data)), out, intro=report_intro(data))
