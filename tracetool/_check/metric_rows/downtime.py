"""Metric rows read from ``migtrace downtime``: the guest's pause end to end, QEMU's own figure,
the critical path per device.
"""

from __future__ import annotations

from tracetool._check.metric_types import Aggregate, Kind, Metric

ROWS: tuple[Metric, ...] = (
    Metric(
        "downtime.end_to_end",
        "downtime",
        Kind.DURATION,
        "end_to_end_us",
        needs=("runstate_set",),
        help="the guest's pause: source stops the VM -> destination runs it (needs both traces)",
    ),
    Metric(
        "downtime.reported",
        "downtime",
        Kind.DURATION,
        "reported_us",
        help="QEMU's own downtime (source side), from the trace's query-migrate replies or --query-migrate",
    ),
    Metric(
        "downtime.critical",
        "downtime",
        Kind.DURATION,
        "by_device",
        "critical_us",
        Aggregate.SUM,
        {"device": "device"},
        needs=("runstate_set",),
        help="time the selected devices' save and load spent on the pause's critical path",
    ),
)
