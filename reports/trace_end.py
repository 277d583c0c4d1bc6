"""Rendering the end of a trace: who held the BQL (``at_end`` of a BQL process document) and what
each thread did last (the ``trace_end`` document, ``TraceEnd.to_json()``)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from reports.console import fmt_us, table, who
from reports.timezero import TimeZero

WIDTH = 100


def _who(p: dict[str, Any]) -> str:
    if p.get("tid") is None and p.get("thread") is None:
        return f"a {p['role']} thread (by its call site)"
    return who(p.get("tid"), p.get("thread"))


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _at(ns: int | None, zero: TimeZero) -> str | None:
    return None if ns is None or zero.ns is None else f"{zero.at(ns, 3)} s"


def at_end_lines(process: dict[str, Any], zero: TimeZero) -> list[str]:
    """The BQL at the end of the trace of one process, in a sentence (times in seconds since
    ``zero``), and the deadlock when there is one; [] without an ``at_end``."""
    end = process.get("at_end")
    if end is None:
        return []
    head = "At the end of the trace"
    ended = _at(end["ended_ns"], zero)
    if ended is not None:
        head += f" ({process['process']}, at {ended})"
    holder = end["holder"]
    if holder is None:
        held = "nobody held the BQL"
    else:
        held = f"{_who(holder)} held the BQL"
        since = _at(holder["since_ns"], zero)
        held += f" since {since}" if since is not None else ""
        held += f", taken at {holder['site']}" if holder["site"] else ""
    waiters = [_who(w) for w in end["waiters"]]
    waiting = (
        f"{_and(waiters)} {'was' if len(waiters) == 1 else 'were'} waiting for it"
        if waiters
        else "nobody was waiting for it"
    )
    lines = [f"{head} {held}; {waiting}."]
    if end["deadlock"]:
        lines.append(
            "deadlock: " + "; ".join(_deadlock(d, end["deadlock"], process["mutex"]) for d in end["deadlock"])
        )
    return lines


def _deadlock(d: dict[str, Any], all_: list[dict[str, Any]], bql: str | None) -> str:
    what = "the BQL" if d["mutex"] == bql else f"mutex {d['mutex']}"
    me = _who({"tid": d["tid"], "thread": d["thread"], "role": "?"})
    if d["kind"] == "self":
        return f"{me} waits for {what}, which it holds itself"
    holder = next((x for x in all_ if x["tid"] == d["held_by"]), None)
    by = (
        _who({"tid": holder["tid"], "thread": holder["thread"], "role": "?"}) if holder else str(d["held_by"])
    )
    return f"{me} waits for {what}, held by {by}"


def wrapped(text: str, indent: str = "") -> str:
    """A line wrapped to the 100-column terminal."""
    return textwrap.fill(text, WIDTH, subsequent_indent=indent or "  ", break_on_hyphens=False)


def headline(doc: dict[str, Any]) -> str:
    """What the trace-end document is about, in a sentence."""
    states = [f"{side} last in '{state}'" for side, state in doc["final_state"].items() if state is not None]
    where = f" ({', '.join(states)})" if states else " (no migration state in the trace)"
    return f"The trace ends without a final migration state{where}; what each thread did last:"


def thread_rows(doc: dict[str, Any]) -> list[list[str]]:
    """process, thread, role, last event, time before the end, open spans."""
    return [
        [
            t["process"],
            f"{t['thread'] or '?'} ({t['tid']})" if t["tid"] is not None else (t["thread"] or "-"),
            t["role"],
            t["last_event"],
            fmt_us(t["since_us"]),
            ", ".join(
                f"{s['kind']} {s['name']}" if s["name"] != s["kind"] else s["kind"] for s in t["open_spans"]
            )
            or "-",
        ]
        for t in doc["threads"]
    ]


def _span(s: dict[str, Any]) -> str:
    return s["kind"] if s["name"] == s["kind"] else f"{s['kind']} {s['name']}"


THREAD_COLUMNS = ["process", "thread", "role", "last event", "before the end", "open spans"]


def render_trace_end_text(doc: dict[str, Any], out: Console) -> None:
    """The trace-end document as a headline and a table."""
    out.print(wrapped(headline(doc)))
    out.print(table(None, THREAD_COLUMNS, thread_rows(doc), right=["before the end"]))
