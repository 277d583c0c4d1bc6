"""Metric rows read from ``migtrace phases``: incoming phases, device loads, the load thread,
the outcome, switchover downtime and total time per side, RAM.

Two groups, so that the table lists every downtime figure together: ``ROWS`` up to the
downtime each side saw, ``TOTALS`` (total time, RAM, timeline issues) after the rows of
``migtrace downtime``.
"""

from __future__ import annotations

from tracetool._check.metric_rows.common import DEVICES, PHASE_THREAD_SELECT
from tracetool._check.metric_types import Aggregate, Kind, Metric

ROWS: tuple[Metric, ...] = (
    Metric(
        "phases.<name>.duration",
        "phases",
        Kind.DURATION,
        "phases",
        "duration_us",
        Aggregate.SUM,
        PHASE_THREAD_SELECT,
        key="name",
        names="phases",
        help="time in one incoming phase (summed if it repeats)",
    ),
    Metric(
        "phases.<name>.count",
        "phases",
        Kind.COUNT,
        "phases",
        aggregate=Aggregate.COUNT,
        select=PHASE_THREAD_SELECT,
        key="name",
        names="phases",
        help="how often the phase occurred (0: never)",
    ),
    Metric(
        "devices.count",
        "phases",
        Kind.COUNT,
        "devices",
        aggregate=Aggregate.COUNT,
        select={"device": "idstr", **PHASE_THREAD_SELECT},
        needs=DEVICES,
        help="device state loads (sections)",
    ),
    Metric(
        "phases.device_load.count",
        "phases",
        Kind.COUNT,
        "devices",
        aggregate=Aggregate.COUNT,
        select={"device": "idstr", **PHASE_THREAD_SELECT},
        needs=DEVICES,
        help="device state loads: the same as devices.count",
    ),
    Metric(
        "devices.duration",
        "phases",
        Kind.DURATION,
        "devices",
        "duration_us",
        Aggregate.MAX,
        {"device": "idstr", **PHASE_THREAD_SELECT},
        needs=DEVICES,
        help="slowest load of the selected devices",
    ),
    Metric(
        "devices.duration.total",
        "phases",
        Kind.DURATION,
        "devices",
        "duration_us",
        Aggregate.SUM,
        {"device": "idstr", **PHASE_THREAD_SELECT},
        needs=DEVICES,
        help="load time of the selected devices together",
    ),
    Metric(
        "devices.downtime",
        "phases",
        Kind.DURATION,
        "devices",
        "downtime_us",
        Aggregate.MAX,
        {"device": "idstr", **PHASE_THREAD_SELECT},
        needs=("vmstate_downtime_load",),
        help="largest per-device downtime QEMU reported (QEMU >= 8.2)",
    ),
    Metric(
        "load_thread.name",
        "phases",
        Kind.TEXT,
        "load_thread.name",
        help="the thread that ran the incoming load (mig/dst/main when threaded)",
    ),
    Metric(
        "load_thread.role",
        "phases",
        Kind.TEXT,
        "load_thread.role",
        help="role of the load thread: load (threaded) or main (coroutine)",
    ),
    Metric(
        "outcome",
        "phases",
        Kind.TEXT,
        "outcome",
        choices=("completed", "failed", "cancelled", "paused", "incomplete"),
        help="completed, failed, cancelled, paused (postcopy) or incomplete; from both sides",
    ),
    Metric(
        "downtime.dst",
        "phases",
        Kind.DURATION,
        "downtime.dst_us",
        help="switchover downtime seen on the destination",
    ),
    Metric(
        "downtime.src",
        "phases",
        Kind.DURATION,
        "downtime.src_us",
        help="switchover downtime seen on the source (needs the source trace)",
    ),
)

TOTALS: tuple[Metric, ...] = (
    Metric(
        "total_time.dst",
        "phases",
        Kind.DURATION,
        "total_time.dst_us",
        help="incoming migration on the destination, first to last event",
    ),
    Metric(
        "total_time.src",
        "phases",
        Kind.DURATION,
        "total_time.src_us",
        help="outgoing migration on the source",
    ),
    Metric(
        "ram.iterations",
        "phases",
        Kind.COUNT,
        "ram.iterations",
        help="RAM sections loaded while the VM ran (PART; not QEMU's dirty-sync-count)",
    ),
    Metric("ram.pages", "phases", Kind.COUNT, "ram.pages", help="RAM pages loaded"),
    Metric(
        "ram.postcopy_pages",
        "phases",
        Kind.COUNT,
        "ram.postcopy_pages",
        help="RAM pages loaded during postcopy",
    ),
    Metric(
        "phases.issues",
        "phases",
        Kind.COUNT,
        "issue_counts",
        "value",
        Aggregate.SUM,
        help="timeline inconsistencies (unclosed spans, lines out of order)",
    ),
)
