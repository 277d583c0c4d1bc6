"""The sections of ``migtrace report``, built from its JSON document
(:mod:`reports.report_json`): what each analysis contributes, as :mod:`reports.blocks`."""

from __future__ import annotations

from typing import Any

from reports.blocks import Section, fmt_count, pct, us
from reports.bql import holder
from reports.colo import colo_blocks
from reports.console import fmt_us, who
from reports.downtime import downtime_blocks
from reports.phases import NO_DEVICE_DOWNTIME, open_at_end_line
from reports.summary import not_qemu_line, summary_zero
from reports.timezero import TimeZero
from reports.trace_end import THREAD_COLUMNS, at_end_lines, thread_rows
from reports.trace_end import headline as trace_end_headline

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


def zero_of(doc: dict[str, Any]) -> TimeZero:
    """The zero of the report's times: the first event of the trace (from the summary)."""
    return summary_zero(doc["summary"])


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
                fmt_count(i["events"]),
                fmt_count(i["other_lines"]),
                fmt_count(i["dropped_events"]),
                fmt_count(len(i["warnings"])),
            ]
        )
    sec.add_table(
        "Inputs",
        ["file", "format", "clock", "events", "other lines", "dropped", "warnings"],
        inputs,
        right=["events", "other lines", "dropped", "warnings"],
        tail=["file"],
    )
    sec.add_table(
        "Processes",
        ["process", "side", "pid", "load thread"],
        [
            [
                p["label"],
                p["side"] or "-",
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
                t["tid"] if t["tid"] is not None else "-",
                t["name"] or "-",
                t["role"],
                "yes" if t["carries_load"] else "",
                fmt_count(t["events"]),
            ]
            for t in s["threads"]
        ],
        right=["tid", "events"],
    )
    if s.get("other_processes"):
        sec.add(not_qemu_line(s["other_processes"]))
    counts = list(s["event_counts"].items())
    sec.add_table(
        f"Events ({len(counts)} names)",
        ["event", "count"],
        [[name, fmt_count(n)] for name, n in counts],
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
    zero = zero_of(doc)
    sec.add_table(
        "Phases",
        ["phase", "thread", "start", "duration", ""],
        [
            [
                ph["name"],
                who(ph["tid"], ph["thread"]),
                zero.at(ph["start_ns"]),
                us(ph["duration_us"]),
                "" if ph["closed"] else "not closed",
            ]
            for ph in p["phases"]
        ],
        right=["start", "duration"],
        omit_unknown=["thread"],
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
            omit_unknown=["thread", "QEMU downtime"],
            compact=DEVICES_SHOWN,
            tail=["device"],
        )
        if all(d["downtime_us"] is None for d in devices):
            sec.add(NO_DEVICE_DOWNTIME, "note")
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
            [
                [c["id"], who(c["tid"], c["thread"]), c["packets"], fmt_count(c["pages"])]
                for c in mf["channels"]
            ],
            right=["packets", "pages"],
            omit_unknown=["thread"],
        )
    if p["checkpoints"]:
        sec.add_table(
            "Downtime checkpoints",
            ["process", "checkpoint", "thread", "at"],
            [
                [c["process"], c["name"], who(c["tid"], c["thread"]), zero.at(c["ts_ns"])]
                for c in p["checkpoints"]
            ],
            right=["at"],
            omit_unknown=["thread"],
        )
    for n in p["notes"]:
        sec.add(n, "note")
    if p["open_at_end"]:
        sec.add_table(
            open_at_end_line(len(p["open_at_end"])),
            ["where", "span"],
            [[f"{i['path']}:{i['line']}", i["message"]] for i in p["open_at_end"]],
            compact=ISSUES_SHOWN,
        )
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
    downtime_blocks(sec, doc["downtime"], zero_of(doc))


def _bql(sec: Section, doc: dict[str, Any]) -> None:
    b = doc["bql"]
    procs = list(b["processes"].values())
    primary = b["bql"]
    if primary is not None:  # the destination first
        procs.sort(key=lambda x: x["process"] != primary["process"])
    zero = zero_of(doc)
    for p in procs:
        _bql_process(sec, p, zero, len(procs) > 1)


def _bql_process(sec: Section, p: dict[str, Any], zero: TimeZero, several: bool) -> None:
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
        by_thread = p["attribution"] == "thread"  # else the rows are roles (by call site)
        sec.add_table(
            ("Holds and waits per thread" if by_thread else "Holds and waits per role") + label,
            ["thread", "role", "holds", "held", "max", "p50", "p99", "waits", "waited", "wait max"],
            [
                [
                    who(t["tid"], t["name"]) if by_thread else "-",
                    t["role"],
                    fmt_count(t["holds"]),
                    us(t["hold_total_us"]),
                    us(t["hold_max_us"]),
                    us(t["hold_p50_us"]),
                    us(t["hold_p99_us"]),
                    fmt_count(t["waits"]),
                    us(t["wait_total_us"]),
                    us(t["wait_max_us"]),
                ]
                for t in p["threads"]
            ],
            right=["holds", "held", "max", "p50", "p99", "waits", "waited", "wait max"],
            optional=["p50", "wait max", "p99"],
            omit_unknown=["thread"],
        )
    if p["longest_holds"]:
        sec.add_table(
            f"Longest holds{label}",
            ["taken at", "held", "thread", "lock site", "phase", "device"],
            [
                [
                    zero.at(h["start_ns"]),
                    us(h["duration_us"]),
                    holder(h),
                    h["lock_site"] or "-",
                    h["phase"] or "-",
                    h["device"] or h["section"] or "-",
                ]
                for h in p["longest_holds"]
            ],
            right=["held"],
            tail=["device"],
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
                    ", ".join(f"{holder(t)} {fmt_us(t['hold_us'])}" for t in ph["threads"][:3]),
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
    for line in at_end_lines(p, zero):
        sec.add(line)
    for n in p["notes"]:
        sec.add(n, "note")


def _trace_end(sec: Section, doc: dict[str, Any]) -> None:
    end = doc["trace_end"]
    sec.add(trace_end_headline(end), "headline")
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
                fmt_count(r["count"]),
                fmt_count(r["unmatched"]),
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
            [[names.get(k, k), fmt_count(v)] for k, v in p["pages_by_channel"].items()],
            right=["pages"],
        )
    src = p["source"]
    if src is not None:
        rows = [
            [k.replace("_", " "), fmt_count(v)]
            for k, v in src.items()
            if k not in ("switch_to", "enabled", "channel_ns")
        ]
        rows.append(["preempt enabled (source)", _yes(src.get("enabled"))])
        rows += [
            [f"switches to channel {ch}", fmt_count(n)] for ch, n in (src.get("switch_to") or {}).items()
        ]
        sec.add_table("Source (postcopy_preempt_* events)", ["", "count"], rows, right=["count"])
    for n in p["notes"]:
        sec.add(n, "note")


def _colo(sec: Section, doc: dict[str, Any]) -> None:
    for b in colo_blocks(doc["colo"], zero_of(doc)):
        if b.columns:
            sec.add_table(b.title, b.columns, b.rows, right=b.right, omit_unknown=b.omit_unknown)
        else:
            sec.add(b.title, b.kind)
