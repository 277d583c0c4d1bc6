"""Metric rows read from ``migtrace summary``: line and event counts, threads."""

from __future__ import annotations

from tracetool._check.metric_types import Aggregate, Kind, Metric

ROWS: tuple[Metric, ...] = (
    Metric(
        "unparsed_lines",
        "summary",
        Kind.COUNT,
        "totals.other_lines",
        help="input lines that are not trace events (QEMU messages, garbage)",
    ),
    Metric(
        "dropped_events",
        "summary",
        Kind.COUNT,
        "totals.dropped_events",
        help="events the tracer lost (simple backend records)",
    ),
    Metric(
        "parse_warnings",
        "summary",
        Kind.COUNT,
        "totals.warnings",
        help="lines the readers kept but did not fully understand",
    ),
    Metric(
        "events.count",
        "summary",
        Kind.COUNT,
        "threads",
        "events",
        Aggregate.SUM,
        {"thread": "name", "role": "role", "tid": "tid", "load": "tid", "process": "process"},
        help="trace events (of the selected threads)",
    ),
    Metric(
        "events.<name>.count",
        "summary",
        Kind.COUNT,
        "event_counts.<name>",
        default=0,
        names="events",
        help="occurrences of one trace event (0 when it never occurred)",
    ),
    Metric(
        "event(<name>)",
        "summary",
        Kind.PRESENCE,
        "event_counts.<name>",
        names="events",
        help='whether the event occurs: `event("name") exists` / `absent`',
    ),
    Metric(
        "thread(<name>)",
        "summary",
        Kind.PRESENCE,
        "threads",
        aggregate=Aggregate.ANY,
        key="name",
        select={"role": "role", "process": "process"},
        help='whether a thread of that name emitted events: `thread("mig/dst/main") exists`',
    ),
    Metric(
        "threads.count",
        "summary",
        Kind.COUNT,
        "threads",
        aggregate=Aggregate.COUNT,
        select={"thread": "name", "role": "role", "load": "tid", "process": "process"},
        help="threads that emitted events",
    ),
)
